"""Forward kinematics of the controlled arm: end-effector points and their velocities from joint
angles, as the controller needs them to build the state and the observation.

The robot description is any model MuJoCo loads (MJCF, or the robot's URDF on a real arm); only
the kinematic chain from the base frame to the tool frame is used. The end-effector points are
rigid in the tool frame (they move with the grasp, so each trial names them), and

    p_i = R_tool p_i^tool + o_tool,        pdot_i = J_i(q) qdot,

both expressed in the base frame (the robot frame of gps_controller.layout).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np


class KinematicsError(ValueError):
    """The robot description lacks what the controller needs, or an input is malformed."""


class ArmKinematics:
    """Forward kinematics of `joints` between `base_body` and `tool_body` of a robot model."""

    def __init__(self, model_file: str | Path, joints: tuple[str, ...], base_body: str,
                 tool_body: str) -> None:
        path = Path(model_file)
        if not path.is_file():
            raise KinematicsError(f"robot description {str(path)!r} does not exist")
        try:
            self.model = mujoco.MjModel.from_xml_path(str(path))
        except ValueError as exc:
            raise KinematicsError(f"cannot load robot description {str(path)!r}: {exc}") from None
        self.data = mujoco.MjData(self.model)
        self.joints = tuple(joints)
        ids = [self._id(mujoco.mjtObj.mjOBJ_JOINT, name) for name in self.joints]
        self.qpos_adr = np.array([self.model.jnt_qposadr[j] for j in ids])
        self.dof_adr = np.array([self.model.jnt_dofadr[j] for j in ids])
        self.base = self._id(mujoco.mjtObj.mjOBJ_BODY, base_body)
        self.tool = self._id(mujoco.mjtObj.mjOBJ_BODY, tool_body)
        self._jacp = np.zeros((3, self.model.nv))

    def points(self, q, qdot, tool_points) -> tuple[np.ndarray, np.ndarray]:
        """Positions and velocities (n x 3 each, base frame) of the n points `tool_points`
        (n x 3, tool frame) at joint angles q and velocities qdot."""
        n = len(self.joints)
        q, qdot = np.asarray(q, float), np.asarray(qdot, float)
        tool_points = np.asarray(tool_points, float)
        if q.shape != (n,) or qdot.shape != (n,):
            raise KinematicsError(f"q and qdot must have shape ({n},), got {q.shape}, "
                                  f"{qdot.shape}")
        if tool_points.ndim != 2 or tool_points.shape[1] != 3:
            raise KinematicsError(f"tool points must be n x 3, got shape {tool_points.shape}")
        if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qdot))
                and np.all(np.isfinite(tool_points))):
            raise KinematicsError("q, qdot and the tool points must be finite")
        data = self.data
        data.qpos[self.qpos_adr] = q
        mujoco.mj_kinematics(self.model, data)
        mujoco.mj_comPos(self.model, data)
        world = tool_points @ data.xmat[self.tool].reshape(3, 3).T + data.xpos[self.tool]
        base_rot = data.xmat[self.base].reshape(3, 3)
        velocities = np.empty_like(world)
        for i, point in enumerate(world):
            mujoco.mj_jac(self.model, data, self._jacp, None, point, self.tool)
            velocities[i] = self._jacp[:, self.dof_adr] @ qdot
        return (world - data.xpos[self.base]) @ base_rot, velocities @ base_rot

    def _id(self, obj: mujoco.mjtObj, name: str) -> int:
        index = mujoco.mj_name2id(self.model, obj, name)
        if index < 0:
            kind = obj.name.removeprefix("mjOBJ_").lower()
            raise KinematicsError(f"robot description has no {kind} named {name!r}")
        return index
