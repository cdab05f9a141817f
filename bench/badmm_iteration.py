"""One BADMM iteration of the quick CPU preset with the visuomotor CNN, on real hanger samples.

Samples: one rollout per training condition of the initial linear-Gaussian controllers in the
direct simulator, with 64x64 frames (the preset's first end-to-end iteration sees the same kind
of batch). The CNN stage's GuidedPolicySearch (config/hanger_gps_cpu.yaml: its badmm and
policy_opt sections) runs `--iterations` iterations; each inner iteration is split into the
trajectory step (LQR with the BADMM terms, all conditions), the policy step (SGD on the CNN) and
the rest (policy actions on every sample, linearisation, dual step), medians over the inner
iterations. Baseline in the same run: the trajectory step alone without the BADMM terms (the
trajectory phase's cost). Prints a table and one JSON line.

    . scripts/env.sh && python bench/badmm_iteration.py [--iterations 2] [--sgd-steps 1200]
"""

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from gps_controller.noise import exploration_noise
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import VisuomotorCNN
from gps_trainer.badmm import GuidedPolicySearch, PolicyData
from gps_trainer.policy_opt import PolicyOptimizer
from gps_trainer.rollout import rollout
from gps_trainer.sample import SampleBatch
from gps_trainer.train_gps import load_config, make_env
from gps_trainer.trajectory_phase import TrajectoryPhase

PRESET = Path(__file__).resolve().parents[1] / "config" / "hanger_gps_cpu.yaml"


class Timed:
    """Wraps a bound method and keeps the seconds of each call."""

    def __init__(self, owner, name):
        self.method, self.seconds = getattr(owner, name), []
        setattr(owner, name, self)

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        out = self.method(*args, **kwargs)
        self.seconds.append(time.perf_counter() - start)
        return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2)
    parser.add_argument("--sgd-steps", type=int, default=None,
                        help="policy SGD steps per inner iteration (default: the preset's)")
    args = parser.parse_args()
    config = load_config(PRESET)
    if args.sgd_steps is not None:
        config = replace(config, policy_opt=replace(config.policy_opt,
                                                    iterations=args.sgd_steps))
    torch.manual_seed(0)
    env = make_env(config, config.train_set)
    rng = np.random.default_rng(0)
    T, layout = env.task.episode_steps, env.layout
    x0s = [env.reset(i, seed=0)[0] for i in range(len(env.conditions))]
    phase = TrajectoryPhase(config.phase, layout, x0s, T, rng)
    policy = GaussianPolicy(VisuomotorCNN(config.network), device="cpu")
    gps = GuidedPolicySearch(config.badmm, phase, policy,
                             PolicyOptimizer(policy, config.policy_opt), rng)
    traj = Timed(gps.phase, "optimize")
    sgd = Timed(gps, "_policy_step")
    totals = []
    for iteration in range(args.iterations):
        rollouts = [rollout(env, lambda t, x, o, e, c=c: c.act(t, x, e), i,
                            exploration_noise(T, layout.dU, rng, config.phase.noise), iteration)
                    for i, c in enumerate(phase.controllers)]
        batch = SampleBatch(tuple(r.sample for r in rollouts))
        data = PolicyData(batch.obs, np.stack([r.images for r in rollouts]))
        start = time.perf_counter()
        gps.iteration(batch, data)
        totals.append(time.perf_counter() - start)
    inner = config.badmm.inner_iterations
    n = len(sgd.seconds)
    inner_total = float(np.sum(totals)) / n   # fixed per-iteration costs spread over inners
    models = gps.phase.fit_models(batch)
    plain = Timed(gps.phase, "optimize")
    for _ in range(3):
        gps.phase.optimize(models, None)
    rows = {
        "samples": len(batch), "T": T, "image": list(config.network.image_size),
        "sgd_steps_per_inner": config.policy_opt.iterations, "inner_per_iteration": inner,
        "iteration_s_median": float(np.median(totals)),
        "inner_iteration_s": float(inner_total),
        "trajectory_step_s_median": float(np.median(traj.seconds)),
        "policy_step_s_median": float(np.median(sgd.seconds)),
        "trajectory_step_without_badmm_s_median": float(np.median(plain.seconds)),
        "sgd_images_per_s": float(config.policy_opt.iterations * config.policy_opt.batch_size
                                  / np.median(sgd.seconds)),
    }
    rows["other_per_inner_s"] = rows["inner_iteration_s"] - rows["trajectory_step_s_median"] \
        - rows["policy_step_s_median"]
    for key, value in rows.items():
        print(f"{key:>40}: {value:.4g}" if isinstance(value, float) else f"{key:>40}: {value}")
    print(json.dumps({"bench": "badmm_iteration", "threads": torch.get_num_threads(), **rows}))


if __name__ == "__main__":
    main()
