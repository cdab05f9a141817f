"""Evaluating a trained policy alone (paper Sec. 6, Table I): no trajectory controller, no target
in its input, on any conditions file.

For every condition, `trials` episodes of the policy's mean action (or with its noise) from the
condition's start; the task's success test decides each trial. The start is the condition's arm
pose exactly (task.initial_joint_noise_std, 0 in the shipped conditions file), so mean-action
trials repeat one outcome; `--start-noise` perturbs each trial's start pose (each right-arm joint,
Gaussian, radians, its own seed per trial) to see how far a policy's success holds off the poses
it was trained from. A few camera frames with the policy's learned feature points drawn on them
are saved (the paper's Fig. 5/6).

`--random-looks CONFIG` draws each trial's colours and lights (its own seed per trial) from the
`appearance_randomisation` of a run config (gps_sim.conditions.AppearanceRandomisation), to see
how a policy holds up beyond the looks it was trained on.

`--pose-regressor` runs Table I's "pose prediction" baseline: a full-state policy (the one
trajectory pre-training leaves) whose target points come from the pose pre-training regressor on
the episode's first camera frame (the arm at its start pose, as in the pose data) instead of the
simulator: x = [q, qdot, p_ee - p_target, pdot_ee] with the predicted p_target.

    python -m gps_trainer.evaluation --policy runs/x/policy.pt \
        --conditions config/hanger_conditions.yaml --set spatial_test --trials 3 --out runs/x/eval
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from gps_controller.layout import Layout
from gps_controller.policies.gaussian_policy import GaussianPolicy, PolicyFileError
from gps_controller.policies.networks import PoseRegressionCNN
from gps_controller.typed_config import ConfigError, from_mapping, to_mapping
from gps_sim.conditions import AppearanceRandomisation, load_conditions, load_task_config
from gps_sim.env import HangerEnv
from gps_trainer.cli import input_errors_reported
from gps_trainer.pose_pretraining import load_pose_regressor
from gps_trainer.rollout import target_distance
from gps_trainer.trajectory_phase import read_run_config


@dataclass(frozen=True)
class ConditionResult:
    """One condition's trials: successes and each trial's final mean EE-target distance (m)."""
    name: str
    successes: int
    final_distances: tuple[float, ...]

    @property
    def trials(self) -> int:
        return len(self.final_distances)

    @property
    def final_distance(self) -> float:
        return float(np.mean(self.final_distances))

    @property
    def rate(self) -> float:
        return self.successes / self.trials


def estimated_state(layout: Layout, config: np.ndarray, target_points: np.ndarray) -> np.ndarray:
    """The state x = [q, qdot, p_ee - p_target, pdot_ee] from the configuration
    [q, qdot, p_ee, pdot_ee] and target points (3 x 3, robot frame) from elsewhere."""
    def part(name):
        return config[layout.config_slice(name)]
    return layout.assemble_state(part("joint_angles"), part("joint_velocities"),
                                 part("ee_points").reshape(-1, 3),
                                 part("ee_point_velocities").reshape(-1, 3), target_points)


def predicted_targets(regressor: PoseRegressionCNN, image: np.ndarray) -> np.ndarray:
    """The regressor's target points for one camera frame (H x W x 3 uint8): 3 x 3, metres."""
    with torch.inference_mode():
        return regressor(torch.from_numpy(image[None])).double().numpy().reshape(-1, 3)


def run_policy_episode(env: HangerEnv, policy: GaussianPolicy, condition: int, seed: int,
                       noise: bool = False, pose_regressor: PoseRegressionCNN | None = None,
                       appearance: AppearanceRandomisation | None = None
                       ) -> tuple[bool, float, np.ndarray]:
    """One episode of the policy alone (a full-state one with its target from
    `pose_regressor`: module doc), its look drawn from `appearance` (None: the condition's);
    returns (success, final mean EE-target distance in m, the camera frames T x H x W x 3)."""
    rng = np.random.default_rng(seed)
    layout = env.layout
    x, obs = env.reset(condition, seed, appearance=appearance)
    targets = None if pose_regressor is None else predicted_targets(pose_regressor, obs.image)
    frames = []
    for _ in range(env.task.episode_steps):
        if targets is not None:
            inputs = estimated_state(layout, obs.config, targets)
        else:
            inputs = obs.config if policy.uses_images else x
        frames.append(obs.image)
        eps = rng.standard_normal(layout.dU) if noise else None
        x, obs = env.step(policy.act(inputs, obs.image if policy.uses_images else None, eps))
    return bool(env.success()), target_distance(layout, x), np.stack(frames)


def evaluate(env: HangerEnv, policy: GaussianPolicy, trials: int, seed: int = 0,
             noise: bool = False, frames_dir: Path | None = None, log=print,
             pose_regressor: PoseRegressionCNN | None = None,
             appearance: AppearanceRandomisation | None = None) -> list[ConditionResult]:
    """Success of `policy` (with `pose_regressor`: the pose-prediction baseline, module doc) on
    every condition of `env`, `trials` episodes each, each trial's look drawn from `appearance`
    (None: the conditions' own)."""
    if pose_regressor is not None and policy.uses_images:
        raise ValueError("policy: the pose-prediction baseline runs a full-state policy, this "
                         "one takes images")
    sizes = {}
    if policy.uses_images:
        sizes["policy"] = policy.architecture["image_size"]
    if pose_regressor is not None:
        sizes["pose regressor"] = pose_regressor.config.image_size
    for who, size in sizes.items():
        if tuple(size) != (env.task.image_size, env.task.image_size):
            raise ValueError(f"{who}: takes {size[0]}x{size[1]} images, the environment renders "
                             f"{env.task.image_size}x{env.task.image_size} (task.image_size)")
    results = []
    for condition, spec in enumerate(env.conditions):
        wins, distances = 0, []
        for trial in range(trials):
            success, distance, frames = run_policy_episode(
                env, policy, condition, seed * 10_000 + condition * 100 + trial, noise,
                pose_regressor, appearance)
            wins += success
            distances.append(distance)
            if frames_dir is not None and trial == 0 and policy.uses_images:
                save_feature_point_frames(policy, frames, frames_dir / f"{spec.name}.png")
        results.append(ConditionResult(spec.name, wins, tuple(distances)))
        log(condition_line(results[-1]))
    return results


def condition_line(result: ConditionResult) -> str:
    """`name  wins/trials  final distance` (mean, and the range over trials when they differ)."""
    line = f"  {result.name:28s} {result.successes}/{result.trials}  final distance " \
           f"{100 * result.final_distance:4.1f} cm"
    low, high = min(result.final_distances), max(result.final_distances)
    return line + (f" ({100 * low:.1f}-{100 * high:.1f})" if high > low else "")


def save_feature_point_frames(policy: GaussianPolicy, frames: np.ndarray, path: Path,
                              steps: tuple[int, ...] = (0, 33, 66, 99), scale: int = 4) -> None:
    """Frames at `steps` side by side, enlarged, with the policy's feature points drawn."""
    steps = tuple(t for t in steps if t < len(frames))
    with torch.inference_mode():
        images = torch.from_numpy(frames[list(steps)]).to(policy.device)
        points = policy.network.vision.feature_points_pixels(images).cpu().numpy()
    tiles = []
    for image, pts in zip(frames[list(steps)], points):
        big = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
        for i, (col, row) in enumerate(pts):
            hue = int(180 * i / len(pts))
            colour = cv2.cvtColor(np.uint8([[[hue, 255, 255]]]), cv2.COLOR_HSV2RGB)[0, 0]
            cv2.circle(big, (int(scale * col), int(scale * row)), 3,
                       tuple(int(c) for c in colour), -1)
        tiles.append(big)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(np.concatenate(tiles, axis=1), cv2.COLOR_RGB2BGR))


def summary(results: list[ConditionResult]) -> dict:
    total = sum(r.successes for r in results)
    trials = sum(r.trials for r in results)
    return {"success_rate": total / trials, "successes": total, "trials": trials,
            "conditions": {r.name: {"successes": r.successes, "trials": r.trials,
                                    "final_distance": r.final_distance,
                                    "final_distances": list(r.final_distances)}
                           for r in results}}


def random_looks(config_path: str | Path) -> AppearanceRandomisation:
    """The appearance_randomisation of run config `config_path` (base_file followed); a
    ConfigError when it sets none that changes the look."""
    mapping = read_run_config(config_path).get("appearance_randomisation")
    appearance = from_mapping(AppearanceRandomisation, mapping, "appearance_randomisation")
    if not appearance.enabled:
        raise ConfigError(f"{config_path}: sets no appearance_randomisation that changes the "
                          f"look")
    return appearance


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True, help="a policy file (GaussianPolicy.save)")
    parser.add_argument("--conditions", default="config/hanger_conditions.yaml")
    parser.add_argument("--set", default="train", help="condition set in the conditions file")
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", action="store_true", help="sample the policy's noise")
    parser.add_argument("--start-noise", type=float, metavar="RAD",
                        help="std of Gaussian noise on each right-arm joint's start angle "
                             "(default: the conditions file's task.initial_joint_noise_std)")
    parser.add_argument("--pose-regressor", metavar="FILE",
                        help="the pose-prediction baseline: a full-state --policy with its target "
                             "from this pose regressor (a run's pose/pose_regressor.pt)")
    parser.add_argument("--random-looks", metavar="CONFIG",
                        help="draw each trial's colours and lights from this run config's "
                             "appearance_randomisation (e.g. "
                             "config/hanger_gps_randomised_looks.yaml)")
    parser.add_argument("--out", help="folder for results.json and feature-point frames")
    args = parser.parse_args(argv)
    with input_errors_reported(parser, PolicyFileError):
        policy = GaussianPolicy.load(args.policy, device="cpu")
        regressor = None if args.pose_regressor is None else load_pose_regressor(
            args.pose_regressor)[0]
        if regressor is not None and policy.uses_images:
            parser.error(f"--pose-regressor needs a full-state --policy; {args.policy} takes "
                         f"images")
        task = load_task_config(args.conditions)
        if policy.uses_images:                  # render at the size the policy was trained on
            task = replace(task, image_size=int(policy.architecture["image_size"][0]))
        if regressor is not None:
            task = replace(task, image_size=int(regressor.config.image_size[0]))
        if args.start_noise is not None:
            task = replace(task, initial_joint_noise_std=args.start_noise)
        appearance = None if args.random_looks is None else random_looks(args.random_looks)
        env = HangerEnv(load_conditions(args.conditions, args.set), task,
                        render_observations=policy.uses_images or regressor is not None)
    out = Path(args.out) if args.out else None
    print(f"evaluating {args.policy} on {len(env.conditions)} conditions of {args.set!r}, "
          f"start-pose noise {task.initial_joint_noise_std:g} rad"
          + ("" if appearance is None else f", random looks from {args.random_looks}"))
    results = evaluate(env, policy, args.trials, args.seed, args.noise,
                       out / "frames" if out else None, pose_regressor=regressor,
                       appearance=appearance)
    report = summary(results)
    report["start_noise_std"] = task.initial_joint_noise_std
    report["pose_regressor"] = args.pose_regressor
    report["random_looks"] = None if appearance is None else to_mapping(appearance)
    print(f"success {report['successes']}/{report['trials']} = {100 * report['success_rate']:.1f}%")
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
