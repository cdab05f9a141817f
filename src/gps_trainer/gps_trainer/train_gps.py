"""End-to-end guided policy search on the hanger task from the direct MuJoCo simulator.

Stages, as in the paper (Sec. 5):
  1. pose pre-training: the left arm puts the rack at random poses, one camera frame each
     (from the robot, like the samples); a CNN with the policy's vision layers regresses the
     target points; its conv layers initialise the policy;
  2. trajectory pre-training: BADMM with the small full-state network in place of the CNN
     (the trajectories learn the task from the full state); that network is saved as
     policy_full_state.pt (the policy of evaluation's pose-prediction baseline);
  3. end-to-end BADMM with the visuomotor CNN (images + configuration, never the target);
     after each iteration the CNN alone runs policy_success_trials times per training
     condition (`policy_success` in the metrics, beside the trajectory samples' `success`)
     and, with a `validation_set`, on the validation conditions
     (`policy_validation_success`); the iteration whose policy succeeds there most often (the
     latest on ties) gives the run's policy;
  4. evaluation of the run's CNN policy alone on the training and the spatial-test conditions.
Every stage writes into one run folder (config, metrics.jsonl with a `stage` per record,
every sample under samples/ before it is used, checkpoints, plots, policy.pt, evaluation
results) and a killed run resumes with --resume. The samples come from a robot
(gps_trainer.robots): the in-process simulator here, the ROS graph in the trainer node.

    python -m gps_trainer.train_gps --config config/hanger_gps_cpu.yaml --run-dir runs/gps0
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import (FullStateMLP, FullStateMLPConfig, VisuomotorCNN,
                                              VisuomotorCNNConfig)
from gps_controller.typed_config import from_mapping, to_mapping
from gps_sim.conditions import (AppearanceRandomisation, load_conditions,
                                load_task_config)
from gps_sim.env import HangerEnv
from gps_trainer import pose_pretraining
from gps_trainer.badmm import BadmmConfig, GuidedPolicySearch, PolicyData
from gps_trainer.cli import input_errors_reported
from gps_controller.noise import exploration_noise
from gps_trainer.evaluation import summary
from gps_trainer.plots import plot_training_curves
from gps_trainer.policy_opt import PolicyOptConfig, PolicyOptimizer
from gps_trainer.robots import DirectRobot, Robot
from gps_trainer.run_folder import RunFolder
from gps_trainer.sample_store import SampleStore
from gps_trainer.sample import SampleBatch
from gps_trainer.trajectory_phase import (TrajectoryPhase, TrajectoryPhaseConfig,
                                         read_run_config)

TRAJECTORY_PRETRAINING = "trajectory_pretraining"
END_TO_END = "end_to_end"


@dataclass(frozen=True)
class GpsRunConfig:
    """A full run (conditions_file and phase_file relative to the config file in YAML).
    appearance_randomisation draws each training sample's colours and lights
    (gps_sim.conditions.AppearanceRandomisation; pose_pretraining has its own for the pose
    frames): a simulator's setting (in process, or the sim node through set_condition)."""

    seed: int = 0
    conditions_file: str = "hanger_conditions.yaml"
    train_set: str = "train"
    test_set: str = "spatial_test"
    validation_set: str | None = None
    image_size: int = 64
    trajectory_pretraining_iterations: int = 15
    end_to_end_iterations: int = 4
    evaluation_trials: int = 3
    policy_success_trials: int = 1
    rack_jitter: tuple[float, float, float] = (0.0, 0.0, 0.0)
    appearance_randomisation: AppearanceRandomisation = field(
        default_factory=AppearanceRandomisation)
    device: str | None = None
    phase: TrajectoryPhaseConfig = field(default_factory=TrajectoryPhaseConfig)
    pose_pretraining: pose_pretraining.PosePretrainingConfig = field(
        default_factory=pose_pretraining.PosePretrainingConfig)
    full_state_network: FullStateMLPConfig = field(default_factory=FullStateMLPConfig)
    full_state_badmm: BadmmConfig = field(default_factory=BadmmConfig)
    full_state_policy_opt: PolicyOptConfig = field(default_factory=PolicyOptConfig)
    network: VisuomotorCNNConfig = field(default_factory=VisuomotorCNNConfig)
    badmm: BadmmConfig = field(default_factory=BadmmConfig)
    policy_opt: PolicyOptConfig = field(default_factory=PolicyOptConfig)

    def __post_init__(self) -> None:
        if len(self.rack_jitter) != 3 or not all(0.0 <= j < 0.1 for j in self.rack_jitter):
            raise ValueError(f"rack_jitter: 3 half-widths in [0, 0.1) m, got "
                             f"{list(self.rack_jitter)}")
        if tuple(self.network.image_size) != (self.image_size, self.image_size):
            raise ValueError(f"network.image_size {list(self.network.image_size)} differs from "
                             f"image_size {self.image_size}")
        if self.trajectory_pretraining_iterations < 1 or self.end_to_end_iterations < 1:
            raise ValueError("trajectory_pretraining_iterations, end_to_end_iterations: >= 1")
        if self.policy_success_trials < 0:
            raise ValueError("policy_success_trials: must be >= 0")
        if self.validation_set is not None:
            if self.validation_set in (self.train_set, self.test_set):
                raise ValueError(f"validation_set: {self.validation_set!r} must differ from the "
                                 f"training and test sets")
            if self.policy_success_trials < 1:
                raise ValueError("validation_set: needs policy_success_trials >= 1")


def load_config(path: str | Path, **overrides) -> GpsRunConfig:
    """The run config from YAML (phase_file read in, paths absolute), then overrides."""
    config = from_mapping(GpsRunConfig, read_run_config(path))
    return replace(config, **{k: v for k, v in overrides.items() if v is not None})


def make_env(config: GpsRunConfig, condition_set: str,
             render_observations: bool = True) -> HangerEnv:
    task = replace(load_task_config(config.conditions_file), image_size=config.image_size)
    return HangerEnv(load_conditions(config.conditions_file, condition_set), task,
                     render_observations)


def new_policy(network, config: GpsRunConfig) -> GaussianPolicy:
    torch.manual_seed(config.seed)
    return GaussianPolicy(network, device=config.device)


def pretrain_vision(cnn: VisuomotorCNN, config: GpsRunConfig, folder: Path, env: HangerEnv,
                    robot: Robot, log):
    """Stage 1: pose data from `robot` (rack poses within the ranges of `env`'s task, starting
    from its conditions) and the regressor on the policy's vision layers (each reused when the
    folder has it), its conv weights copied into `cnn`."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset_path = folder / pose_pretraining.DATASET_FILE
    if dataset_path.is_file():
        dataset = pose_pretraining.load_pose_dataset(dataset_path)
    else:
        dataset = pose_pretraining.collect_pose_data(
            robot, env.conditions, env.task, config.pose_pretraining,
            np.random.default_rng(config.seed), log)
        pose_pretraining.save_pose_dataset(dataset, dataset_path)
    regressor_path = folder / pose_pretraining.REGRESSOR_FILE
    if regressor_path.is_file():
        regressor, stats = pose_pretraining.load_pose_regressor(regressor_path)
    else:
        regressor, stats = pose_pretraining.train_and_save(
            dataset, config.pose_pretraining, folder, vision=config.network, log=log)
    pose_pretraining.init_policy_vision(cnn, regressor)
    return stats


FULL_STATE_POLICY_FILE = "policy_full_state.pt"


def start(config: GpsRunConfig, run: RunFolder, env: HangerEnv, robot: Robot, log) -> dict:
    """Stage 1 and the initial state of stage 2."""
    rng = np.random.default_rng(config.seed)
    x0s = [env.reset(i, seed=config.seed)[0] for i in range(len(env.conditions))]
    phase = TrajectoryPhase(config.phase, env.layout, x0s, env.task.episode_steps, rng)
    cnn = VisuomotorCNN(config.network)
    started = time.perf_counter()
    stats = pretrain_vision(cnn, config, run.path / "pose", env, robot, log)
    log(f"pose pre-training: {time.perf_counter() - started:.0f} s, target point error "
        f"{stats.train_error_cm:.2f} cm (training poses), {stats.validation_error_cm:.2f} cm "
        f"(held-out poses)")
    mlp_policy = new_policy(FullStateMLP(config.full_state_network), config)
    gps = GuidedPolicySearch(config.full_state_badmm, phase, mlp_policy,
                             PolicyOptimizer(mlp_policy, config.full_state_policy_opt), rng)
    return {"stage": TRAJECTORY_PRETRAINING, "gps": gps, "cnn": cnn, "rng": rng,
            "samples": 0, "seconds": {"pose_pretraining": time.perf_counter() - started}}


def switch_to_cnn(state: dict, config: GpsRunConfig) -> None:
    """Stage 3 begins: the trajectories carry on, the CNN policy and fresh duals take over."""
    old = state["gps"]
    policy = new_policy(state["cnn"], config)
    state["gps"] = GuidedPolicySearch(config.badmm, old.phase, policy,
                                      PolicyOptimizer(policy, config.policy_opt), state["rng"])
    state["stage"] = END_TO_END


def rack_offset(noise_seed: int, jitter) -> np.ndarray:
    """A training sample's rack offset from its condition's position: uniform in +-jitter (m)
    per axis, drawn from the sample's noise seed (so a resumed run draws the same)."""
    return np.random.default_rng([noise_seed, 1]).uniform(-1.0, 1.0, 3) * np.asarray(jitter)


def gps_iteration(state: dict, env: HangerEnv, robot: Robot, store: SampleStore,
                  iteration: int, config: GpsRunConfig) -> list[dict]:
    """Sample every condition with its trajectory controller, the rack jittered around the
    condition's position by config.rack_jitter (each sample stored before use; one already
    stored by a run that was killed is taken instead), then one BADMM iteration.

    The jitter makes each condition a small region of rack positions: the trajectories' state
    holds the EE points relative to the target, so their feedback absorbs it, and the policy
    sees how its actions should change with the rack's place in the image instead of a few
    isolated positions."""
    gps, rng = state["gps"], state["rng"]
    T, layout = env.task.episode_steps, env.layout
    rollouts, offsets = [], []
    for condition, controller in enumerate(gps.phase.controllers):
        noise_seed = int(rng.integers(2**63))
        offsets.append(rack_offset(noise_seed, config.rack_jitter))
        stored = store.load(iteration, condition, noise_seed)
        if stored is None:
            noise = exploration_noise(T, layout.dU, np.random.default_rng(noise_seed),
                                      config.phase.noise)
            stored = robot.lg_rollout(condition, controller, noise, noise_seed, iteration,
                                      offsets[-1])
            store.save(iteration, stored, noise_seed)
        rollouts.append(stored)
    batch = SampleBatch(tuple(r.sample for r in rollouts))
    if gps.policy.uses_images:
        data = PolicyData(batch.obs, np.stack([r.images for r in rollouts]))
    else:
        data = PolicyData(batch.X)
    records = gps.iteration(batch, data)
    state["samples"] += len(rollouts)
    for record, r, offset in zip(records, rollouts, offsets):
        record.update(iteration=iteration, stage=state["stage"],
                      condition_name=env.conditions[record["condition"]].name,
                      success=r.success, final_distance=r.final_distance,
                      rack_offset=offset.tolist())
    return records


def add_policy_success(records: list[dict], robot: Robot, policy, config: GpsRunConfig,
                       iteration: int) -> None:
    """The policy alone (mean actions, no target in its input) on every training condition,
    config.policy_success_trials times: its success rate per condition as `policy_success`."""
    results = robot.evaluate(policy, config.train_set, config.policy_success_trials,
                             config.seed * 1000 + iteration, None, lambda text: None)
    for record in records:
        result = results[record["condition"]]
        record["policy_success"] = result.successes / result.trials
        record["policy_final_distance"] = result.final_distance


@dataclass(frozen=True)
class KeptPolicy:
    """An end-to-end iteration's policy (a copy) and its successes on the validation set."""

    iteration: int
    successes: int
    trials: int
    policy: GaussianPolicy


def keep_best(kept: KeptPolicy | None, iteration: int, successes: int, trials: int,
              policy: GaussianPolicy) -> KeptPolicy:
    """The policy with the most validation successes so far: a copy of `policy` when it succeeds
    at least as often as `kept` (a later iteration has seen more samples, so it wins ties).

    The policy alone swings between end-to-end iterations (each policy step refits the CNN to
    moving targets), so the run keeps the best one on conditions neither trained on nor tested
    on, as one keeps the best checkpoint on a validation set."""
    if kept is not None and successes < kept.successes:
        return kept
    return KeptPolicy(iteration, successes, trials, copy.deepcopy(policy))


def check_validation(state: dict, records: list[dict], robot: Robot, config: GpsRunConfig,
                     iteration: int) -> str:
    """The policy alone on the validation set (policy_success_trials per condition): the rate
    as every record's `policy_validation_success`, the best policy so far in state["kept"];
    returns the log text."""
    policy = state["gps"].policy
    results = robot.evaluate(policy, config.validation_set, config.policy_success_trials,
                             config.seed * 1000 + iteration, None, lambda text: None)
    wins, trials = sum(r.successes for r in results), sum(r.trials for r in results)
    for record in records:
        record["policy_validation_success"] = wins / trials
    state["kept"] = keep_best(state.get("kept"), iteration, wins, trials, policy)
    return f", validation {wins}/{trials}"


def run_policy(state: dict, run: RunFolder, last_iteration: int, log
               ) -> tuple[GaussianPolicy, int]:
    """The run's policy, saved as policy.pt, and its iteration: the kept one when validation
    chose an earlier iteration (the last iteration's then goes to policy_last.pt), else the
    last."""
    policy, kept = state["gps"].policy, state.get("kept")
    if kept is not None:
        log(f"policy of iteration {kept.iteration}: {kept.successes}/{kept.trials} on the "
            f"validation set, the most of the end-to-end iterations")
        if kept.iteration < last_iteration:
            policy.save(run.path / "policy_last.pt")
            policy, last_iteration = kept.policy, kept.iteration
    policy.save(run.path / "policy.pt")
    return policy, last_iteration


def train(config: GpsRunConfig, run: RunFolder, resume: bool = False, log=print,
          robot: Robot | None = None, on_iteration=None) -> dict:
    """Run or resume every stage on `robot` (default: the in-process simulator); returns the
    evaluation summary. `on_iteration(iteration, stage, records)` is called after each
    iteration (the trainer node publishes its progress there)."""
    env = make_env(config, config.train_set)
    if robot is None:
        robot = DirectRobot(env, lambda name: make_env(config, name), config.seed,
                            config.appearance_randomisation,
                            config.pose_pretraining.appearance_randomisation)
    store = SampleStore(run.path)
    checkpoint = run.latest_checkpoint() if resume else None
    if checkpoint is not None:
        done, state = checkpoint
        run.truncate_metrics(done)
        log(f"resuming {run.path} after iteration {done} ({state['stage']})")
    else:
        if not resume:
            run.create(to_mapping(config))
        done, state = -1, start(config, run, env, robot, log)
    total = config.trajectory_pretraining_iterations + config.end_to_end_iterations
    for iteration in range(done + 1, total):
        if iteration == config.trajectory_pretraining_iterations:
            state["gps"].policy.save(run.path / FULL_STATE_POLICY_FILE)
            switch_to_cnn(state, config)
        started = time.perf_counter()
        records = gps_iteration(state, env, robot, store, iteration, config)
        seconds = time.perf_counter() - started
        state["seconds"][state["stage"]] = state["seconds"].get(state["stage"], 0.0) + seconds
        policy_note = ""
        if state["stage"] == END_TO_END and config.policy_success_trials > 0:
            checked = time.perf_counter()
            add_policy_success(records, robot, state["gps"].policy, config, iteration)
            wins = sum(r["policy_success"] for r in records) * config.policy_success_trials
            policy_note = (f"  policy alone {wins:.0f}/"
                           f"{len(records) * config.policy_success_trials}")
            if config.validation_set is not None:
                policy_note += check_validation(state, records, robot, config, iteration)
            state["seconds"]["policy_checks"] = (state["seconds"].get("policy_checks", 0.0)
                                                 + time.perf_counter() - checked)
        run.append_metrics(records)
        run.save_checkpoint(iteration, state, keep=2)
        plot_training_curves(run.read_metrics(), run.path / "training.png",
                             f"guided policy search, seed {config.seed}")
        log(f"itr {iteration:2d} {state['stage']:22s} success "
            f"{sum(r['success'] for r in records)}/{len(records)}  "
            f"cost {np.mean([r['sample_cost'] for r in records]):8.1f}  "
            f"KL(p||pi) {np.mean([r['kl_policy_traj'] for r in records]):8.2f}  "
            f"nu {np.mean([r['nu_mean'] for r in records]):.3g}{policy_note}  [{seconds:4.1f} s]")
        if on_iteration is not None:
            on_iteration(iteration, state["stage"], records)
    policy, policy_iteration = run_policy(state, run, total - 1, log)
    report = {"samples": state["samples"], "seconds": state["seconds"],
              "policy_iteration": policy_iteration}
    for name in (config.train_set, config.test_set):
        log(f"evaluating the CNN policy alone on {name!r}")
        started = time.perf_counter()
        results = robot.evaluate(policy, name, config.evaluation_trials, config.seed,
                                 run.path / "eval" / name, log)
        report[name] = summary(results)
        report["seconds"][f"evaluation_{name}"] = time.perf_counter() - started
    (run.path / "evaluation.json").write_text(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/hanger_gps_cpu.yaml")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    run = RunFolder(args.run_dir)
    with input_errors_reported(parser):
        config = (from_mapping(GpsRunConfig, run.read_config()) if args.resume
                  else load_config(args.config, seed=args.seed))
        report = train(config, run, resume=args.resume)
    for name in (config.train_set, config.test_set):
        r = report[name]
        print(f"{name}: {r['successes']}/{r['trials']} = {100 * r['success_rate']:.1f}% "
              f"(CNN policy alone)")
    print(f"robot samples: {report['samples']}; seconds per stage: "
          f"{ {k: round(v) for k, v in report['seconds'].items()} }")
    print(f"run folder: {run.path}")
    return 0


if __name__ == "__main__":
    # Run the package's module, not this __main__ copy: checkpoints pickle train_gps classes
    # (KeptPolicy) by module name and must load from the trainer node and tools too.
    from gps_trainer.train_gps import main as package_main
    sys.exit(package_main())
