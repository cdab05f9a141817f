"""Compile the hanger scene's MuJoCo model with a condition's visual variation applied.

The shipped MJCF (models/pr2_hanger.xml) is edited through mujoco.MjSpec before compiling:
distractor primitives are added, object colours and lights changed. The environment compiles
one model per SceneVariation, so conditions that share a look share a model. A training
episode's random look (gps_sim.conditions.AppearanceRandomisation) is written into the compiled
model instead (SceneLook), since colours and lights need no recompilation.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mujoco
import numpy as np

from gps_sim.conditions import AppearanceRandomisation, Distractor, SceneVariation
from gps_sim.robot import named_id

MODEL_PATH = Path(__file__).parent / "models" / "pr2_hanger.xml"
ROBOT_BODY = "torso_lift_link"
RACK_GEOMS = ("rack_bar", "rack_post", "rack_foot")
HANGER_BODY = "hanger"
TABLE_GEOM = "table_top"
FLOOR_GEOM = "floor"
KEY_LIGHT, FILL_LIGHT = "key_light", "fill_light"

_SHAPES = {
    "box": mujoco.mjtGeom.mjGEOM_BOX,
    "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
    "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
}


def build_model(scene: SceneVariation, physics_dt: float | None = None) -> mujoco.MjModel:
    """The hanger model with `scene` applied; `physics_dt` overrides the MJCF timestep."""
    spec = mujoco.MjSpec.from_file(str(MODEL_PATH))
    robot_pos, robot_quat = _robot_pose(spec)
    for index, distractor in enumerate(scene.distractors):
        _add_distractor(spec, index, distractor, robot_pos, robot_quat)
    _apply_lighting(spec, scene, robot_pos, robot_quat)
    if scene.rack_rgba is not None:
        for name in RACK_GEOMS:
            spec.geom(name).rgba = scene.rack_rgba
    if scene.hanger_rgba is not None:
        for geom in spec.body(HANGER_BODY).geoms:
            geom.rgba = scene.hanger_rgba
    if scene.table_rgba is not None:
        spec.geom(TABLE_GEOM).rgba = scene.table_rgba
    if scene.floor_rgba is not None:
        spec.geom(FLOOR_GEOM).rgba = scene.floor_rgba
    if physics_dt is not None:
        spec.option.timestep = physics_dt
    return spec.compile()


def _robot_pose(spec: mujoco.MjSpec) -> tuple[np.ndarray, np.ndarray]:
    """World pose of the robot frame; the torso is a direct, fixed child of the world."""
    body = spec.body(ROBOT_BODY)
    return np.array(body.pos, float), np.array(body.quat, float)


def _to_world(point, robot_pos: np.ndarray, robot_quat: np.ndarray) -> np.ndarray:
    rotated = np.zeros(3)
    mujoco.mju_rotVecQuat(rotated, np.asarray(point, float), robot_quat)
    return robot_pos + rotated


def _add_distractor(spec: mujoco.MjSpec, index: int, distractor: Distractor,
                    robot_pos: np.ndarray, robot_quat: np.ndarray) -> None:
    yaw_quat = np.array([np.cos(distractor.yaw / 2), 0.0, 0.0, np.sin(distractor.yaw / 2)])
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, robot_quat, yaw_quat)
    size = np.zeros(3)
    size[:len(distractor.size)] = distractor.size
    spec.worldbody.add_geom(
        name=f"distractor_{index}", type=_SHAPES[distractor.shape], size=size,
        pos=_to_world(distractor.position, robot_pos, robot_quat), quat=quat,
        rgba=distractor.rgba, contype=0, conaffinity=0,
    )


def _apply_lighting(spec: mujoco.MjSpec, scene: SceneVariation,
                    robot_pos: np.ndarray, robot_quat: np.ndarray) -> None:
    lighting = scene.lighting
    if lighting.key_diffuse is not None:
        spec.light(KEY_LIGHT).diffuse = lighting.key_diffuse
    if lighting.key_position is not None:
        spec.light(KEY_LIGHT).pos = _to_world(lighting.key_position, robot_pos, robot_quat)
    if lighting.fill_diffuse is not None:
        spec.light(FILL_LIGHT).diffuse = lighting.fill_diffuse
    if lighting.headlight_diffuse is not None:
        spec.visual.headlight.diffuse = lighting.headlight_diffuse
    if lighting.headlight_ambient is not None:
        spec.visual.headlight.ambient = lighting.headlight_ambient


@dataclass(frozen=True)
class SceneLook:
    """The look of a compiled model that AppearanceRandomisation changes, as compiled: the
    colours of the rack, hanger, table and floor geoms (one group each), the key and fill
    lights' diffuse colours, the key light's position and the headlight."""

    colour_groups: tuple[np.ndarray, ...]
    geom_rgba: np.ndarray
    lights: np.ndarray
    light_diffuse: np.ndarray
    key_light_pos: np.ndarray
    headlight_diffuse: np.ndarray
    headlight_ambient: np.ndarray

    @classmethod
    def of(cls, model: mujoco.MjModel) -> SceneLook:
        geom = partial(named_id, model, mujoco.mjtObj.mjOBJ_GEOM)
        hanger = named_id(model, mujoco.mjtObj.mjOBJ_BODY, HANGER_BODY)
        lights = np.array([named_id(model, mujoco.mjtObj.mjOBJ_LIGHT, name)
                           for name in (KEY_LIGHT, FILL_LIGHT)])
        return cls(
            colour_groups=(np.array([geom(name) for name in RACK_GEOMS]),
                           np.flatnonzero(model.geom_bodyid == hanger),
                           np.array([geom(TABLE_GEOM)]), np.array([geom(FLOOR_GEOM)])),
            geom_rgba=model.geom_rgba.copy(),
            lights=lights,
            light_diffuse=model.light_diffuse[lights].copy(),
            key_light_pos=model.light_pos[lights[0]].copy(),
            headlight_diffuse=model.vis.headlight.diffuse.copy(),
            headlight_ambient=model.vis.headlight.ambient.copy(),
        )

    def apply(self, model: mujoco.MjModel, randomisation: AppearanceRandomisation | None,
              rng: np.random.Generator) -> None:
        """Write a look drawn from `randomisation` with `rng` into `model`, or the compiled
        look when `randomisation` is None or changes nothing. Lights take effect at the next
        mj_forward."""
        model.geom_rgba[:] = self.geom_rgba
        model.light_diffuse[self.lights] = self.light_diffuse
        model.light_pos[self.lights[0]] = self.key_light_pos
        model.vis.headlight.diffuse = self.headlight_diffuse
        model.vis.headlight.ambient = self.headlight_ambient
        if randomisation is None or not randomisation.enabled:
            return
        jitter = randomisation.colour_jitter
        for group in self.colour_groups:
            shift = rng.uniform(-jitter, jitter, 3)
            model.geom_rgba[group, :3] = np.clip(self.geom_rgba[group, :3] + shift, 0.0, 1.0)
        low, high = randomisation.light_scale
        tint = randomisation.light_tint
        factors = (rng.uniform(low, high, (3, 1))
                   * rng.uniform(1.0 - tint, 1.0 + tint, (3, 3)))
        model.light_diffuse[self.lights] = np.clip(self.light_diffuse * factors[:2], 0.0, 1.0)
        model.vis.headlight.diffuse = np.clip(self.headlight_diffuse * factors[2], 0.0, 1.0)
        model.vis.headlight.ambient = np.clip(self.headlight_ambient * factors[2], 0.0, 1.0)
        shift = randomisation.key_light_shift
        model.light_pos[self.lights[0]] = self.key_light_pos + rng.uniform(-shift, shift, 3)
