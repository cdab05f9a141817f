"""Pose-regression pre-training of the policy's vision layers (the paper's Sec. 4.3 and 5).

The paper initialises the visuomotor policy's convolutions by pose regression: "the left arm
moves the target object through random poses while camera frames and the 3D target points are
recorded; a CNN with the policy's vision layers and one linear layer on the feature points
regresses the target points; its conv weights initialise the policy". Its Table II reports the
pose error of this network (softmax + feature points) on the real robot as 1.14 cm on the
training set and 1.30 cm on held-out poses.

Here the left arm puts the rack at poses drawn uniformly within the task's ranges around the
nominal pose and one camera frame is recorded per pose (`collect_pose_data`), from a
`PoseSource`: the simulator in this process (`EnvPoseSource`) or the robot over ROS (the sim
node's set_condition with the pose as offsets, the frame from the camera topic:
gps_trainer.ros_robot.RosRobot.pose_frame). `train_pose_regressor` fits a
`PoseRegressionCNN` to the 3 target points (whitened, Adam), and `init_policy_vision` copies its
vision layers into the policy. Dataset (npz) and regressor (torch, loadable with
weights_only=True) are saved in one folder, so a later run reuses them:

    python -m gps_trainer.pose_pretraining --out runs/pose_pretraining \
        [--config config/pose_pretraining.yaml] [--conditions config/hanger_conditions.yaml] \
        [--condition-set train] [--n-poses 400] [--image-size 64] [--sgd-steps 3000] \
        [--seed 0] [--device cuda] [--recollect] [--retrain]

A folder that already holds a dataset or a regressor is reused: collection and training are
skipped unless --recollect / --retrain. `--evaluate REGRESSOR` measures a saved regressor
instead: --n-poses new random rack poses of the conditions' set, each in its condition's own
look (the visual-test scenes, say), the error per condition and overall (and, with --out, as
pose_evaluation.json there):

    python -m gps_trainer.pose_pretraining --evaluate runs/gps0/pose/pose_regressor.pt \
        --conditions config/visual_test_conditions.yaml --condition-set visual_test --n-poses 120
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from gps_controller.policies.networks import (PoseRegressionCNN, PoseRegressionConfig,
                                              VisionConfig, VisuomotorCNN, copy_vision_weights)
from gps_controller.typed_config import ConfigError, from_mapping, load_yaml, to_mapping
from gps_sim.conditions import (AppearanceRandomisation, HangerCondition, HangerTaskConfig,
                                load_conditions, load_task_config, sample_rack_pose)
from gps_sim.env import HangerEnv
from gps_trainer.cli import input_errors_reported

CONFIG_SECTION = "pose_pretraining"
DATASET_FILE = "pose_dataset.npz"
REGRESSOR_FILE = "pose_regressor.pt"
CHECKPOINT_FILE = "pose_regressor_training.pt"
"""The regressor's training state while it trains (train_and_save): removed once the regressor
is saved."""
MAX_REJECTED_PER_POSE = 1.0
"""Collection gives up when more poses were rejected than this many per requested pose: the
task's rack ranges then lie mostly outside the left arm's reach."""
EVAL_BATCH = 256
EVALUATION_STREAM = 1
"""--evaluate draws its poses from numpy's seed sequence [seed, EVALUATION_STREAM]: never the
poses that collection draws from the same seed."""
EVALUATION_FILE = "pose_evaluation.json"
LR_SCHEDULES = ("constant", "cosine")

Log = Callable[[str], None]


@dataclass(frozen=True)
class PosePretrainingConfig:
    """Pose data collection and the regressor's SGD.

    Collection: n_poses random rack poses, one frame each, at image_size (None: the task's;
    only the in-process source renders at a chosen size, the robot's camera has its own), each
    frame's colours and lights drawn from appearance_randomisation (by the simulator, in this
    process or the sim node over ROS; off by default).
    Training: validation_fraction of the poses are held out; Adam with lr and weight_decay for
    sgd_steps minibatches of batch_size frames, the learning rate constant or, with
    lr_schedule "cosine", decayed from lr to zero along a half cosine over the steps
    (torch.optim.lr_scheduler.CosineAnnealingLR). device None picks CUDA when present. Every
    checkpoint_every steps the training state goes to a checkpoint file (train_and_save), so a
    killed run resumes there."""

    n_poses: int = 400
    image_size: int | None = None
    validation_fraction: float = 0.2
    sgd_steps: int = 3000
    batch_size: int = 25
    lr: float = 1e-3
    weight_decay: float = 0.0
    lr_schedule: str = "constant"
    seed: int = 0
    device: str | None = None
    progress_every: int = 100
    checkpoint_every: int = 500
    appearance_randomisation: AppearanceRandomisation = field(
        default_factory=AppearanceRandomisation)

    def __post_init__(self) -> None:
        positive = {"n_poses": self.n_poses, "sgd_steps": self.sgd_steps,
                    "batch_size": self.batch_size,
                    "progress_every": self.progress_every,
                    "checkpoint_every": self.checkpoint_every}
        if self.image_size is not None:
            positive["image_size"] = self.image_size
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ConfigError(f"{CONFIG_SECTION}.{name}: expected a positive integer, "
                                  f"got {value!r}")
        if not self.lr > 0.0:
            raise ConfigError(f"{CONFIG_SECTION}.lr: must be positive, got {self.lr!r}")
        if not self.weight_decay >= 0.0:
            raise ConfigError(f"{CONFIG_SECTION}.weight_decay: must be >= 0, "
                              f"got {self.weight_decay!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"{CONFIG_SECTION}.lr_schedule: expected one of {LR_SCHEDULES}, "
                              f"got {self.lr_schedule!r}")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ConfigError(f"{CONFIG_SECTION}.validation_fraction: must lie in (0, 1), "
                              f"got {self.validation_fraction!r}")

    def resolved_device(self) -> torch.device:
        """The configured device, or CUDA when available, else the CPU."""
        if self.device is not None:
            return torch.device(self.device)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass(frozen=True)
class PoseDataset:
    """Recorded frames: images (N x H x W x 3 uint8), targets (N x 9: the 3 target points,
    point after point, metres, robot frame) and per frame the commanded rack pose
    (rack_positions N x 3, rack_yaws N), grasp, condition and pose index (frames of one pose
    share it; the train/validation split keeps them together). rejected_unreachable counts the
    poses dropped because the left arm's IK found no solution; seconds is the collection's
    wall time."""

    images: np.ndarray
    targets: np.ndarray
    rack_positions: np.ndarray
    rack_yaws: np.ndarray
    grasps: np.ndarray
    conditions: np.ndarray
    pose_index: np.ndarray
    rejected_unreachable: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[3] != 3:
            raise ValueError(f"images: expected uint8 N x H x W x 3, got {self.images.dtype} "
                             f"{self.images.shape}")
        if self.targets.shape != (n, 9):
            raise ValueError(f"targets: expected shape ({n}, 9), got {self.targets.shape}")
        for name in ("rack_positions", "rack_yaws", "grasps", "conditions", "pose_index"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name}: expected {n} rows, got {len(getattr(self, name))}")

    @property
    def n_frames(self) -> int:
        return len(self.images)

    @property
    def n_poses(self) -> int:
        return len(np.unique(self.pose_index))

    @property
    def image_size(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    @property
    def seconds_per_pose(self) -> float:
        return self.seconds / max(self.n_poses, 1)


@dataclass(frozen=True)
class PoseTrainingStats:
    """How the regressor did: mean Euclidean error per target point (cm) on the training and
    validation frames, and of predicting the training mean (the baseline), as in Table II."""

    train_error_cm: float
    validation_error_cm: float
    baseline_validation_error_cm: float
    n_train: int
    n_validation: int
    sgd_steps: int
    seconds: float
    device: str
    target_mean: tuple[float, ...]
    target_scale: tuple[float, ...]
    history: tuple[dict, ...] = field(default_factory=tuple)


# Collection -----------------------------------------------------------------------------------

class PoseSource(Protocol):
    def pose_frame(self, condition: int, rack_position, rack_yaw: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Start `condition` (index) with the rack at `rack_position` (m) and `rack_yaw` (rad),
        robot frame; return the head camera's frame (H x W x 3 uint8) and the rack's 3 target
        points (3 x 3, m). Raises ValueError when the pose is out of the left arm's reach."""


class EnvPoseSource:
    """Pose frames from a HangerEnv in this process, rendered at `image_size` (None: the
    task's), the look of the n-th frame drawn from `appearance` with seed n (None: the
    condition's own look)."""

    def __init__(self, env: HangerEnv, image_size: int | None = None,
                 appearance: AppearanceRandomisation | None = None) -> None:
        self.env = env
        self.image_size = image_size
        self.appearance = appearance
        self._frames = 0

    def pose_frame(self, condition: int, rack_position, rack_yaw: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        offset, yaw_offset = rack_pose_offsets(self.env.conditions[condition], rack_position,
                                               rack_yaw)
        seed, self._frames = self._frames, self._frames + 1
        self.env.reset(condition, seed, rack_offset=offset, rack_yaw_offset=yaw_offset,
                       appearance=self.appearance)
        return self.env.render(self.image_size), self.env.target_points()


def rack_pose_offsets(condition: HangerCondition, rack_position, rack_yaw: float
                      ) -> tuple[np.ndarray, float]:
    """The (position, yaw) offsets from `condition`'s rack pose that put the rack at
    (rack_position, rack_yaw): what a reset (HangerEnv.reset, SetCondition) takes."""
    return (np.subtract(rack_position, condition.rack_position),
            float(rack_yaw - condition.rack_yaw))


def collect_pose_data(source: PoseSource, conditions: tuple[HangerCondition, ...],
                      task: HangerTaskConfig, config: PosePretrainingConfig,
                      rng: np.random.Generator, log: Log = print) -> PoseDataset:
    """Record config.n_poses random reachable rack poses, one frame each, from `source`.

    Each pose starts a random one of `conditions` (so grasps and scene looks vary as the
    conditions do) with the rack at a pose drawn uniformly within the task's ranges
    (gps_sim.conditions.sample_rack_pose). Unreachable poses are redrawn and counted."""
    frames: list[tuple] = []
    unreachable = 0
    started = time.perf_counter()
    while len(frames) < config.n_poses:
        if unreachable > MAX_REJECTED_PER_POSE * config.n_poses:
            raise RuntimeError(f"{unreachable} unreachable rack poses for {len(frames)} good "
                               f"ones: the task's rack ranges lie mostly outside the left arm's "
                               f"reach")
        condition = int(rng.integers(len(conditions)))
        position, yaw = sample_rack_pose(task, rng)
        try:
            image, targets = source.pose_frame(condition, position, yaw)
        except ValueError:
            unreachable += 1
            continue
        frames.append((image, np.reshape(targets, -1), position, yaw,
                       conditions[condition].grasp, condition))
        pose = len(frames)
        if pose % config.progress_every == 0 or pose == config.n_poses:
            elapsed = time.perf_counter() - started
            log(f"pose {pose}/{config.n_poses}  {1000 * elapsed / pose:.1f} ms/pose  "
                f"rejected {unreachable} unreachable")
    columns = list(zip(*frames))
    return PoseDataset(
        images=np.stack(columns[0]), targets=np.stack(columns[1]),
        rack_positions=np.asarray(columns[2], float), rack_yaws=np.asarray(columns[3], float),
        grasps=np.asarray(columns[4], int), conditions=np.asarray(columns[5], int),
        pose_index=np.arange(len(frames)), rejected_unreachable=unreachable,
        seconds=time.perf_counter() - started)


# Training -------------------------------------------------------------------------------------

def regression_config(vision: VisionConfig) -> PoseRegressionConfig:
    """The pose-regression network on the vision layers of `vision` (e.g. the policy's config)."""
    return PoseRegressionConfig(**vision.vision_fields())


def split_poses(dataset: PoseDataset, validation_fraction: float, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (train, validation), split by pose so no pose is seen in both."""
    poses = rng.permutation(np.unique(dataset.pose_index))
    n_validation = int(round(validation_fraction * len(poses)))
    if not 0 < n_validation < len(poses):
        raise ValueError(f"{len(poses)} poses cannot be split into train and validation with "
                         f"validation_fraction {validation_fraction}")
    held_out = np.isin(dataset.pose_index, poses[:n_validation])
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def point_error_cm(predicted: np.ndarray, targets: np.ndarray) -> float:
    """Mean Euclidean distance between predicted and true target points, in cm (Table II)."""
    return float(frame_errors_cm(predicted, targets).mean())


def frame_errors_cm(predicted: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per frame, the mean Euclidean distance of its predicted target points to the true
    ones, in cm."""
    diff = (np.asarray(predicted) - np.asarray(targets)).reshape(len(targets), -1, 3)
    return 100.0 * np.linalg.norm(diff, axis=-1).mean(axis=1)


def train_pose_regressor(dataset: PoseDataset, config: PosePretrainingConfig,
                         vision: VisionConfig | None = None, log: Log = print,
                         checkpoint: Path | None = None
                         ) -> tuple[PoseRegressionCNN, PoseTrainingStats]:
    """Fit a PoseRegressionCNN on `vision`'s layers (default: the paper's layers at the
    dataset's image size) to the target points, with Adam on the squared error of the whitened
    targets (t - mean) / scale. The whitening is folded into the last layer afterwards, so the
    returned network predicts metres.

    With `checkpoint`, the training state (network, Adam, schedule, minibatch generator, history)
    is written there every config.checkpoint_every steps, and training resumes from it when it
    holds a state of the same settings and dataset: the result is the uninterrupted run's."""
    vision = VisionConfig(image_size=dataset.image_size) if vision is None else vision
    if tuple(vision.image_size) != dataset.image_size:
        raise ValueError(f"the vision layers take {list(vision.image_size)} images, the dataset "
                         f"holds {list(dataset.image_size)}")
    rng = np.random.default_rng(config.seed)
    train_idx, val_idx = split_poses(dataset, config.validation_fraction, rng)
    mean = dataset.targets[train_idx].mean(axis=0)
    scale = np.maximum(dataset.targets[train_idx].std(axis=0), 1e-3)
    device = config.resolved_device()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        network = PoseRegressionCNN(regression_config(vision)).to(device)
    images = torch.as_tensor(dataset.images, device=device)
    whitened = torch.as_tensor((dataset.targets - mean) / scale, dtype=torch.float32,
                               device=device)
    optimiser = torch.optim.Adam(network.parameters(), lr=config.lr,
                                 weight_decay=config.weight_decay)
    schedule = (torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=config.sgd_steps)
                if config.lr_schedule == "cosine" else None)
    training = _TrainingState(network, optimiser, schedule, rng,
                              _checkpoint_key(dataset, config, vision))
    if checkpoint is not None:
        training.resume(checkpoint, log)
    history, started = training.history, time.perf_counter() - training.seconds
    for step in range(training.step + 1, config.sgd_steps + 1):
        batch = torch.as_tensor(rng.choice(train_idx, size=config.batch_size), device=device)
        loss = torch.mean((network(images[batch]) - whitened[batch]) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        if step % config.progress_every == 0 or step == config.sgd_steps:
            batch_loss = loss.item()
            val_cm = point_error_cm(_predict(network, images[val_idx]) * scale + mean,
                                    dataset.targets[val_idx])
            history.append({"step": step, "loss": batch_loss, "validation_error_cm": val_cm,
                            "lr": optimiser.param_groups[0]["lr"]})
            log(f"step {step}/{config.sgd_steps}  loss {batch_loss:.4f}  "
                f"validation {val_cm:.2f} cm  [{time.perf_counter() - started:.1f} s]")
        if checkpoint is not None and step % config.checkpoint_every == 0:
            training.save(checkpoint, step, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    _fold_whitening(network, mean, scale)
    stats = PoseTrainingStats(
        train_error_cm=point_error_cm(_predict(network, images[train_idx]),
                                      dataset.targets[train_idx]),
        validation_error_cm=point_error_cm(_predict(network, images[val_idx]),
                                           dataset.targets[val_idx]),
        baseline_validation_error_cm=point_error_cm(
            np.broadcast_to(mean, (len(val_idx), len(mean))), dataset.targets[val_idx]),
        n_train=len(train_idx), n_validation=len(val_idx), sgd_steps=config.sgd_steps,
        seconds=seconds, device=str(device), target_mean=tuple(mean.tolist()),
        target_scale=tuple(scale.tolist()), history=tuple(history))
    return network.cpu(), stats


def train_and_save(dataset: PoseDataset, config: PosePretrainingConfig, folder: Path,
                   vision: VisionConfig | None = None, log: Log = print
                   ) -> tuple[PoseRegressionCNN, PoseTrainingStats]:
    """train_pose_regressor with its checkpoint in `folder` (resumed when there), the regressor
    saved to folder/REGRESSOR_FILE, then the checkpoint removed."""
    checkpoint = folder / CHECKPOINT_FILE
    regressor, stats = train_pose_regressor(dataset, config, vision, log, checkpoint)
    save_pose_regressor(regressor, stats, folder / REGRESSOR_FILE)
    checkpoint.unlink(missing_ok=True)
    return regressor, stats


def _checkpoint_key(dataset: PoseDataset, config: PosePretrainingConfig,
                    vision: VisionConfig) -> dict:
    """What a checkpoint must share with a training to be resumed by it: the SGD settings, the
    vision layers and the dataset (its frame count and a digest of its targets)."""
    names = ("validation_fraction", "sgd_steps", "batch_size", "lr", "weight_decay",
             "lr_schedule", "seed")
    key = {name: getattr(config, name) for name in names}
    key.update(vision=to_mapping(vision), n_frames=dataset.n_frames,
               targets=hashlib.sha256(np.ascontiguousarray(dataset.targets).tobytes()).hexdigest())
    return key


class _TrainingState:
    """The regressor's training state between SGD steps, to and from a checkpoint file."""

    def __init__(self, network, optimiser, schedule, rng: np.random.Generator, key: dict):
        self.network, self.optimiser, self.schedule, self.rng = network, optimiser, schedule, rng
        self.key = key
        self.step, self.seconds, self.history = 0, 0.0, []

    def save(self, path: Path, step: int, seconds: float) -> None:
        """Write the state after `step` through a temporary file (a kill leaves the last one)."""
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"key": self.key, "step": step, "seconds": seconds,
                    "history": list(self.history),
                    "network": self.network.state_dict(),
                    "optimiser": self.optimiser.state_dict(),
                    "schedule": None if self.schedule is None else self.schedule.state_dict(),
                    "rng": self.rng.bit_generator.state}, tmp)
        os.replace(tmp, path)

    def resume(self, path: Path, log: Log) -> None:
        """Load the state at `path` when it is there and of this training's key."""
        if not path.is_file():
            return
        saved = torch.load(path, map_location=next(self.network.parameters()).device,
                           weights_only=True)
        if saved["key"] != self.key:
            log(f"not resuming from {path}: it was made with other settings or data")
            return
        self.network.load_state_dict(saved["network"])
        self.optimiser.load_state_dict(saved["optimiser"])
        if self.schedule is not None:
            self.schedule.load_state_dict(saved["schedule"])
        self.rng.bit_generator.state = saved["rng"]
        self.step, self.seconds = saved["step"], saved["seconds"]
        self.history = list(saved["history"])
        log(f"resuming the regressor's training after step {self.step} from {path}")


def _predict(network: PoseRegressionCNN, images: torch.Tensor) -> np.ndarray:
    """The network's outputs for `images`, in batches, as float64 numpy."""
    with torch.no_grad():
        return np.concatenate([network(images[i:i + EVAL_BATCH]).double().cpu().numpy()
                               for i in range(0, len(images), EVAL_BATCH)])


def _fold_whitening(network: PoseRegressionCNN, mean: np.ndarray, scale: np.ndarray) -> None:
    """Turn the last layer's whitened output y into metres: W <- diag(s) W, b <- s b + mean."""
    layer = network.pose
    with torch.no_grad():
        s = torch.as_tensor(scale, dtype=layer.weight.dtype, device=layer.weight.device)
        m = torch.as_tensor(mean, dtype=layer.bias.dtype, device=layer.bias.device)
        layer.weight.mul_(s[:, None])
        layer.bias.mul_(s).add_(m)


def init_policy_vision(policy_network: VisuomotorCNN, regressor: PoseRegressionCNN) -> None:
    """Initialise the policy's conv layers (and softmax temperature) with the pre-trained ones."""
    copy_vision_weights(regressor, policy_network)


# Files ----------------------------------------------------------------------------------------

def save_pose_dataset(dataset: PoseDataset, path: str | Path) -> Path:
    """Write the dataset to a compressed npz file (through a temporary file, then renamed)."""
    path = Path(path)
    arrays = {f.name: np.asarray(getattr(dataset, f.name)) for f in dataclasses.fields(dataset)}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_pose_dataset(path: str | Path) -> PoseDataset:
    """Read a dataset written by save_pose_dataset."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pose dataset at {path}")
    with np.load(path, allow_pickle=False) as data:
        names = [f.name for f in dataclasses.fields(PoseDataset)]
        missing = sorted(set(names) - set(data.files))
        if missing:
            raise ValueError(f"{path}: not a pose dataset (missing {missing})")
        values = {name: data[name] for name in names}
    values["rejected_unreachable"] = int(values["rejected_unreachable"])
    values["seconds"] = float(values["seconds"])
    return PoseDataset(**values)


def save_pose_regressor(regressor: PoseRegressionCNN, stats: PoseTrainingStats,
                        path: str | Path) -> Path:
    """Write the regressor's architecture, weights and training stats (plain data and tensors,
    so torch.load(weights_only=True) reads it)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"architecture": to_mapping(regressor.config),
                "state_dict": {k: v.cpu() for k, v in regressor.state_dict().items()},
                "stats": to_mapping(stats)}, tmp)
    os.replace(tmp, path)
    return path


def load_pose_regressor(path: str | Path) -> tuple[PoseRegressionCNN, PoseTrainingStats]:
    """Read a regressor written by save_pose_regressor (on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no pose regressor at {path}")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    regressor = PoseRegressionCNN(from_mapping(PoseRegressionConfig, saved["architecture"],
                                               "architecture"))
    regressor.load_state_dict(saved["state_dict"])
    stats = saved["stats"]
    stats.update(target_mean=tuple(stats["target_mean"]),
                 target_scale=tuple(stats["target_scale"]), history=tuple(stats["history"]))
    return regressor, PoseTrainingStats(**stats)


# Command line ---------------------------------------------------------------------------------

def load_config(path: str | Path, **overrides) -> PosePretrainingConfig:
    """The `pose_pretraining` section of `path`, then the overrides that are not None."""
    config = load_yaml(PosePretrainingConfig, path, CONFIG_SECTION)
    return dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})


def run(config: PosePretrainingConfig, env: HangerEnv, out: Path, recollect: bool = False,
        retrain: bool = False, log: Log = print) -> tuple[PoseDataset, PoseTrainingStats]:
    """Collect (or reuse) the dataset and train (or reuse) the regressor in folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    dataset_path, regressor_path = out / DATASET_FILE, out / REGRESSOR_FILE
    if dataset_path.is_file() and not recollect:
        dataset = load_pose_dataset(dataset_path)
        log(f"reusing {dataset_path}: {dataset.n_frames} frames of {dataset.n_poses} poses")
    else:
        source = EnvPoseSource(env, config.image_size, config.appearance_randomisation)
        dataset = collect_pose_data(source, env.conditions, env.task, config,
                                    np.random.default_rng(config.seed), log)
        save_pose_dataset(dataset, dataset_path)
        retrain = True
        log(f"collected {dataset.n_poses} poses in {dataset.seconds:.1f} s "
            f"({1000 * dataset.seconds_per_pose:.1f} ms/pose) -> {dataset_path}")
    if regressor_path.is_file() and not retrain:
        _, stats = load_pose_regressor(regressor_path)
        log(f"reusing {regressor_path}")
    else:
        if retrain:
            (out / CHECKPOINT_FILE).unlink(missing_ok=True)
        _, stats = train_and_save(dataset, config, out, log=log)
        log(f"trained on {stats.device} in {stats.seconds:.1f} s -> {regressor_path}")
    return dataset, stats


def evaluate_regressor(regressor: PoseRegressionCNN, env: HangerEnv,
                       config: PosePretrainingConfig, log: Log = print) -> dict:
    """The regressor's error (cm) on config.n_poses new random rack poses of `env`'s
    conditions, each in its condition's own look: overall and per condition (Table II's
    measure)."""
    dataset = collect_pose_data(EnvPoseSource(env), env.conditions, env.task, config,
                                np.random.default_rng([config.seed, EVALUATION_STREAM]), log)
    errors = frame_errors_cm(_predict(regressor, torch.as_tensor(dataset.images)),
                             dataset.targets)
    by_condition = {env.conditions[c].name: float(errors[dataset.conditions == c].mean())
                    for c in np.unique(dataset.conditions)}
    return {"poses": len(errors), "error_cm": float(errors.mean()),
            "by_condition": by_condition}


def _evaluate_command(args, regressor: PoseRegressionCNN, env: HangerEnv,
                      config: PosePretrainingConfig) -> int:
    try:
        report = evaluate_regressor(regressor, env, config)
    finally:
        env.close()
    report.update(regressor=str(args.evaluate), conditions_file=str(args.conditions),
                  condition_set=args.condition_set)
    for name, error in report["by_condition"].items():
        print(f"  {name:28s} {error:5.2f} cm")
    print(f"pose error on {report['poses']} poses of {args.condition_set!r}: "
          f"{report['error_cm']:.2f} cm")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / EVALUATION_FILE).write_text(json.dumps(report, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the dataset and the regressor (required "
                                      "unless --evaluate)")
    parser.add_argument("--evaluate", metavar="REGRESSOR",
                        help="measure this saved regressor on new poses of --condition-set")
    parser.add_argument("--config", default="config/pose_pretraining.yaml",
                        help=f"YAML file with a {CONFIG_SECTION!r} section")
    parser.add_argument("--conditions", default="config/hanger_conditions.yaml")
    parser.add_argument("--condition-set", default="train")
    parser.add_argument("--n-poses", type=int)
    parser.add_argument("--image-size", type=int)
    parser.add_argument("--sgd-steps", type=int)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--device")
    parser.add_argument("--recollect", action="store_true", help="collect even if saved")
    parser.add_argument("--retrain", action="store_true", help="train even if saved")
    args = parser.parse_args(argv)
    if args.out is None and args.evaluate is None:
        parser.error("--out is required (or --evaluate REGRESSOR)")
    with input_errors_reported(parser):
        config = load_config(args.config, n_poses=args.n_poses, image_size=args.image_size,
                             sgd_steps=args.sgd_steps, seed=args.seed, device=args.device)
        if args.evaluate:             # rendered at the size the regressor takes
            regressor = load_pose_regressor(args.evaluate)[0]
            task = dataclasses.replace(load_task_config(args.conditions),
                                       image_size=int(regressor.config.image_size[0]))
            env = HangerEnv(load_conditions(args.conditions, args.condition_set), task,
                            render_observations=False)
        else:
            env = HangerEnv.from_yaml(args.conditions, args.condition_set,
                                      render_observations=False)
    if args.evaluate:
        return _evaluate_command(args, regressor, env, config)
    try:
        _, stats = run(config, env, Path(args.out), args.recollect, args.retrain)
    finally:
        env.close()
    print(f"pose error: train {stats.train_error_cm:.2f} cm, validation "
          f"{stats.validation_error_cm:.2f} cm (predicting the mean: "
          f"{stats.baseline_validation_error_cm:.2f} cm)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
