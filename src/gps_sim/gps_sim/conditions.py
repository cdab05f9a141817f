"""Typed task settings and initial conditions of the coat-hanger task, read from YAML.

A condition fixes what varies between episodes: where the left arm holds the rack (bar centre
position and yaw in the robot frame), which of the hanger grasps the right gripper uses, and the
scene's look (distractor objects, colours, lighting). Training, spatial-test and visual-test sets
are lists of conditions in YAML files, so evaluation runs on any conditions file.

File format (each list is one condition set; `task` is optional):

    task: {episode_steps: 100, control_dt: 0.05, ...}        # HangerTaskConfig
    train:
      - name: train_0
        rack_position: [0.75, 0.0, -0.10]                     # m, robot (torso) frame
        rack_yaw: 0.0                                         # rad about the robot's z axis
        grasp: 0
        scene: {distractors: [...], lighting: {...}}          # SceneVariation, optional
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gps_controller.typed_config import ConfigError, from_mapping, load_yaml, read_yaml_mapping

Vec3 = tuple[float, float, float]
Rgba = tuple[float, float, float, float]

DISTRACTOR_SIZE_LENGTHS = {"box": 3, "sphere": 1, "cylinder": 2}
"""MuJoCo size semantics: box half-extents, sphere radius, cylinder radius and half-height."""


@dataclass(frozen=True)
class Distractor:
    """A visual-only primitive placed in the scene (robot frame); the hanger passes through it."""

    shape: str
    position: Vec3
    size: tuple[float, ...]
    rgba: Rgba = (0.8, 0.2, 0.2, 1.0)
    yaw: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in DISTRACTOR_SIZE_LENGTHS:
            raise ConfigError(f"distractor shape {self.shape!r} unknown; "
                              f"known: {sorted(DISTRACTOR_SIZE_LENGTHS)}")
        expected = DISTRACTOR_SIZE_LENGTHS[self.shape]
        if len(self.size) != expected or min(self.size) <= 0:
            raise ConfigError(f"distractor {self.shape} needs {expected} positive size value(s), "
                              f"got {list(self.size)}")
        _check_rgba(self.rgba, "distractor.rgba")


@dataclass(frozen=True)
class Lighting:
    """Light changes; None keeps the model's value. Positions are in the robot frame."""

    key_diffuse: Vec3 | None = None
    key_position: Vec3 | None = None
    fill_diffuse: Vec3 | None = None
    headlight_diffuse: Vec3 | None = None
    headlight_ambient: Vec3 | None = None


@dataclass(frozen=True)
class SceneVariation:
    """How a condition's scene looks: distractors, object colours and lighting (None = model's)."""

    distractors: tuple[Distractor, ...] = ()
    lighting: Lighting = Lighting()
    rack_rgba: Rgba | None = None
    hanger_rgba: Rgba | None = None
    table_rgba: Rgba | None = None
    floor_rgba: Rgba | None = None

    def __post_init__(self) -> None:
        for name in ("rack_rgba", "hanger_rgba", "table_rgba", "floor_rgba"):
            if getattr(self, name) is not None:
                _check_rgba(getattr(self, name), f"scene.{name}")


@dataclass(frozen=True)
class AppearanceRandomisation:
    """Random changes of the scene's look, drawn anew for each training episode (domain
    randomisation), so that a policy learns to find the rack and hanger whatever their colour
    and light. Every field's default leaves the look as the condition has it (off).

    colour_jitter: every RGB channel of the rack, hanger, table and floor colours moves by
    one uniform draw in [-colour_jitter, colour_jitter] per object (clipped to [0, 1]).
    light_scale: (low, high): the key light, fill light and headlight each get one brightness
    factor, uniform in [low, high], on their diffuse (and the headlight's ambient) colour.
    light_tint: each of those lights' RGB channels is further multiplied by a uniform draw in
    [1 - light_tint, 1 + light_tint] (warm or cold light).
    key_light_shift: the key light moves by a uniform draw in [-shift, shift] m per axis."""

    colour_jitter: float = 0.0
    light_scale: tuple[float, float] = (1.0, 1.0)
    light_tint: float = 0.0
    key_light_shift: float = 0.0

    def __post_init__(self) -> None:
        values = (self.colour_jitter, *self.light_scale, self.light_tint, self.key_light_shift)
        if not all(math.isfinite(v) for v in values):
            raise ConfigError(f"appearance_randomisation: expected finite numbers, got "
                              f"{self}")
        if not 0.0 <= self.colour_jitter <= 1.0:
            raise ConfigError(f"appearance_randomisation.colour_jitter: expected a value in "
                              f"[0, 1], got {self.colour_jitter}")
        if len(self.light_scale) != 2 or not 0.0 <= self.light_scale[0] <= self.light_scale[1]:
            raise ConfigError(f"appearance_randomisation.light_scale: expected [low, high] with "
                              f"0 <= low <= high, got {list(self.light_scale)}")
        if not 0.0 <= self.light_tint < 1.0:
            raise ConfigError(f"appearance_randomisation.light_tint: expected a value in "
                              f"[0, 1), got {self.light_tint}")
        if not self.key_light_shift >= 0.0:
            raise ConfigError(f"appearance_randomisation.key_light_shift: expected a distance "
                              f">= 0 (m), got {self.key_light_shift}")

    @property
    def enabled(self) -> bool:
        """Whether any field changes the look."""
        return (self.colour_jitter > 0.0 or self.light_scale != (1.0, 1.0)
                or self.light_tint > 0.0 or self.key_light_shift > 0.0)


@dataclass(frozen=True)
class HangerCondition:
    """One initial condition: rack pose held by the left arm, hanger grasp, scene look."""

    name: str
    rack_position: Vec3
    rack_yaw: float = 0.0
    grasp: int = 0
    scene: SceneVariation = SceneVariation()

    def __post_init__(self) -> None:
        if self.grasp < 0:
            raise ConfigError(f"condition {self.name!r}: grasp must be >= 0, got {self.grasp}")


@dataclass(frozen=True)
class HangerTaskConfig:
    """Timing, image settings and start pose of the hanger task (the paper's T = 100, dt = 0.05).

    The right arm starts in one pose per grasp (initial_right_arm_q[grasp]): the hanger held in
    line with the nominal rack's bar, 25 cm beyond its free end, so hanging means threading the
    bar through the hook. The start pose never depends on where the rack is.

    Shadows and 4x multisampling make images nicer but cost about 20 ms and 5 ms per frame on a
    CPU renderer (llvmpipe), so they are off by default for CPU training."""

    episode_steps: int = 100
    control_dt: float = 0.05
    physics_dt: float = 0.002
    image_size: int = 64
    render_shadows: bool = False
    render_multisampling: bool = False
    initial_right_arm_q: tuple[tuple[float, ...], ...] = (
        (-1.179, 0.554, -1.819, -1.729, 2.393, -0.668, -1.370),
        (-1.015, 0.559, -1.803, -1.419, 1.568, -1.010, -0.634),
    )
    left_arm_ik_seed: tuple[float, ...] = (0.34, 0.95, 0.81, -2.0, -0.74, -1.26, 0.99)
    initial_joint_noise_std: float = 0.0
    rack_nominal_position: Vec3 = (0.75, 0.0, -0.10)
    rack_position_range: Vec3 = (0.10, 0.10, 0.10)
    rack_yaw_range: float = 0.17

    def __post_init__(self) -> None:
        if self.episode_steps <= 0 or self.image_size <= 0:
            raise ConfigError("task: episode_steps and image_size must be positive")
        if self.physics_dt <= 0 or self.control_dt <= 0:
            raise ConfigError("task: control_dt and physics_dt must be positive")
        ratio = self.control_dt / self.physics_dt
        if abs(ratio - round(ratio)) > 1e-6:
            raise ConfigError(f"task: control_dt {self.control_dt} is not a whole number of "
                              f"physics steps of {self.physics_dt}")
        if len(self.left_arm_ik_seed) != 7:
            raise ConfigError(f"task.left_arm_ik_seed: expected 7 joint angles, "
                              f"got {len(self.left_arm_ik_seed)}")
        if not self.initial_right_arm_q:
            raise ConfigError("task.initial_right_arm_q: expected one start pose per grasp")
        for grasp, q in enumerate(self.initial_right_arm_q):
            if len(q) != 7:
                raise ConfigError(f"task.initial_right_arm_q[{grasp}]: expected 7 joint angles, "
                                  f"got {len(q)}")
        if not (math.isfinite(self.initial_joint_noise_std) and self.initial_joint_noise_std >= 0):
            raise ConfigError(f"task.initial_joint_noise_std: expected a finite number >= 0 "
                              f"(rad), got {self.initial_joint_noise_std}")

    @property
    def substeps(self) -> int:
        """Physics steps per control step (25 at 2 ms physics and 50 ms control)."""
        return int(round(self.control_dt / self.physics_dt))


@dataclass(frozen=True)
class _ConditionList:
    conditions: tuple[HangerCondition, ...] = field(default_factory=tuple)


def load_conditions(path: str | Path, section: str) -> tuple[HangerCondition, ...]:
    """Read the condition list `section` of YAML file `path`, with clear errors."""
    path = Path(path)
    data = read_yaml_mapping(path, "conditions file")
    if section not in data:
        known = [k for k in data if k != "task"]
        raise ConfigError(f"{path}: no condition set {section!r}; sets in file: {known}")
    if not isinstance(data[section], list) or not data[section]:
        raise ConfigError(f"{path}: {section} must be a non-empty list of conditions")
    conditions = from_mapping(_ConditionList, {"conditions": data[section]}, section).conditions
    names = [c.name for c in conditions]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"{path}: {section} has duplicate condition names {duplicates}")
    return conditions


def condition_sets(path: str | Path) -> list[str]:
    """The names of the condition sets in YAML file `path` (every top-level key but `task`)."""
    return [name for name in read_yaml_mapping(path, "conditions file") if name != "task"]


def load_task_config(path: str | Path) -> HangerTaskConfig:
    """Read the optional `task` section of `path`; defaults when the file has none."""
    if "task" not in read_yaml_mapping(path, "conditions file"):
        return HangerTaskConfig()
    return load_yaml(HangerTaskConfig, path, "task")


def sample_rack_pose(task: HangerTaskConfig, rng: np.random.Generator) -> tuple[Vec3, float]:
    """A random rack (position, yaw) uniformly within the task's ranges around the nominal pose."""
    offset = rng.uniform(-1.0, 1.0, 3) * np.asarray(task.rack_position_range)
    position = tuple(float(v) for v in np.asarray(task.rack_nominal_position) + offset)
    yaw = float(rng.uniform(-task.rack_yaw_range, task.rack_yaw_range))
    return position, yaw


def _check_rgba(rgba: Rgba, where: str) -> None:
    if len(rgba) != 4 or not all(0.0 <= v <= 1.0 and math.isfinite(v) for v in rgba):
        raise ConfigError(f"{where}: expected 4 values in [0, 1], got {list(rgba)}")
