"""Compile the hanger scene's MuJoCo model with a condition's visual variation applied.

The shipped MJCF (models/pr2_hanger.xml) is edited through mujoco.MjSpec before compiling:
distractor primitives are added, object colours and lights changed. The environment compiles
one model per SceneVariation, so conditions that share a look share a model.
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from gps_sim.conditions import Distractor, SceneVariation

MODEL_PATH = Path(__file__).parent / "models" / "pr2_hanger.xml"
ROBOT_BODY = "torso_lift_link"
RACK_GEOMS = ("rack_bar", "rack_post", "rack_foot")
HANGER_BODY = "hanger"

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
        spec.geom("table_top").rgba = scene.table_rgba
    if scene.floor_rgba is not None:
        spec.geom("floor").rgba = scene.floor_rgba
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
        spec.light("key_light").diffuse = lighting.key_diffuse
    if lighting.key_position is not None:
        spec.light("key_light").pos = _to_world(lighting.key_position, robot_pos, robot_quat)
    if lighting.fill_diffuse is not None:
        spec.light("fill_light").diffuse = lighting.fill_diffuse
    if lighting.headlight_diffuse is not None:
        spec.visual.headlight.diffuse = lighting.headlight_diffuse
    if lighting.headlight_ambient is not None:
        spec.visual.headlight.ambient = lighting.headlight_ambient
