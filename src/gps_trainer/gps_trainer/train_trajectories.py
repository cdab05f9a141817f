"""Trajectory optimisation on the hanger task from the full state (the trajectory phase alone).

Each iteration takes one sample per training condition from the direct MuJoCo simulator with the
current linear-Gaussian controllers and exploration noise, then runs one trajectory step
(TrajectoryPhase). Everything goes to a run folder (config, metrics, checkpoints, cost plot);
`--resume` continues a killed run from its last checkpoint.

    python -m gps_trainer.train_trajectories --config config/hanger_trajectories.yaml \
        --run-dir runs/trajectories_seed0 [--seed 0] [--iterations 15] [--resume]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from gps_controller.typed_config import from_mapping, to_mapping
from gps_sim.env import HangerEnv
from gps_controller.noise import exploration_noise
from gps_trainer.cli import input_errors_reported
from gps_trainer.plots import plot_training_curves
from gps_trainer.rollout import rollout
from gps_trainer.run_folder import RunFolder
from gps_trainer.sample import SampleBatch
from gps_trainer.trajectory_phase import (TrajectoryPhase, TrajectoryPhaseConfig,
                                         read_run_config)


@dataclass(frozen=True)
class TrajectoryRunConfig:
    """A trajectory-optimisation run (conditions_file and phase_file relative to the config
    file in YAML)."""

    seed: int = 0
    iterations: int = 15
    conditions_file: str = "hanger_conditions.yaml"
    condition_set: str = "train"
    samples_per_condition: int = 1
    phase: TrajectoryPhaseConfig = field(default_factory=TrajectoryPhaseConfig)

    def __post_init__(self) -> None:
        if self.iterations < 1 or self.samples_per_condition < 1:
            raise ValueError("iterations, samples_per_condition: must be at least 1")


def load_config(path: str | Path, **overrides) -> TrajectoryRunConfig:
    """The run config from YAML (phase_file read in, paths absolute), then overrides."""
    config = from_mapping(TrajectoryRunConfig, read_run_config(path))
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def train(config: TrajectoryRunConfig, run: RunFolder, resume: bool = False,
          log=print) -> list[dict]:
    """Run (or resume) the iterations; returns all metric records."""
    env = HangerEnv.from_yaml(config.conditions_file, config.condition_set,
                              render_observations=False)
    T, layout = env.task.episode_steps, env.layout
    names = [c.name for c in env.conditions]
    checkpoint = run.latest_checkpoint() if resume else None
    if checkpoint is not None:
        done, state = checkpoint
        phase, rng = state["phase"], state["rng"]
        run.truncate_metrics(done)
        start = done + 1
        log(f"resuming {run.path} after iteration {done}")
    else:
        if not resume:
            run.create(to_mapping(config))
        rng = np.random.default_rng(config.seed)
        x0s = [env.reset(i, seed=config.seed)[0] for i in range(len(names))]
        phase = TrajectoryPhase(config.phase, layout, x0s, T, rng)
        start = 0
    log(f"{len(names)} conditions, T = {T}, {config.samples_per_condition} sample(s) each; "
        f"run folder {run.path}")
    for iteration in range(start, config.iterations):
        started = time.perf_counter()
        rollouts = []
        for condition, controller in enumerate(phase.controllers):
            for k in range(config.samples_per_condition):
                noise = exploration_noise(T, layout.dU, rng, config.phase.noise)
                seed = (config.seed * 1000 + iteration) * 1000 + condition * 10 + k
                rollouts.append(rollout(env, _lg_policy(controller), condition, noise, seed))
        updates = phase.update(SampleBatch(tuple(r.sample for r in rollouts)))
        records = []
        for update in updates:
            mine = [r for r in rollouts if r.sample.condition == update.condition]
            records.append({
                "iteration": iteration, "condition": update.condition,
                "condition_name": names[update.condition],
                "success": all(r.success for r in mine),
                "final_distance": float(np.mean([r.final_distance for r in mine])),
                "sample_cost": update.sample_cost, "predicted_cost": update.predicted_cost,
                "kl": update.kl, "epsilon": update.epsilon, "eta": update.eta,
                "step_mult": update.step_mult, "converged": update.converged,
            })
        run.append_metrics(records)
        run.save_checkpoint(iteration, {"phase": phase, "rng": rng})
        all_records = run.read_metrics()
        plot_training_curves(all_records, run.path / "cost.png",
                             f"trajectory optimisation, seed {config.seed}")
        wins = sum(r["success"] for r in records)
        log(f"itr {iteration:2d}  success {wins}/{len(records)}  "
            f"cost {np.mean([r['sample_cost'] for r in records]):9.2f}  "
            f"dist {100 * np.mean([r['final_distance'] for r in records]):5.1f} cm  "
            f"kl/eps {np.mean([r['kl'] / r['epsilon'] for r in records]):4.2f}  "
            f"[{time.perf_counter() - started:4.1f} s]")
    return run.read_metrics()


def _lg_policy(controller):
    return lambda t, x, obs, eps: controller.act(t, x, eps)


def first_full_success(records: list[dict]) -> int | None:
    """The first iteration at which every condition's sample succeeded."""
    for iteration in sorted({r["iteration"] for r in records}):
        rows = [r for r in records if r["iteration"] == iteration]
        if rows and all(r["success"] for r in rows):
            return iteration
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/hanger_trajectories.yaml")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --run-dir from its last checkpoint")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir)
    with input_errors_reported(parser):
        if args.resume:
            config = from_mapping(TrajectoryRunConfig, run.read_config())
            if args.iterations is not None:
                config = replace(config, iterations=args.iterations)
        else:
            config = load_config(args.config, seed=args.seed, iterations=args.iterations)
        records = train(config, run, resume=args.resume)
    first = first_full_success(records)
    print(f"all {len({r['condition'] for r in records})} conditions succeed first at iteration "
          f"{first}" if first is not None else "not every condition succeeded yet")
    print(f"plots and metrics: {run.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
