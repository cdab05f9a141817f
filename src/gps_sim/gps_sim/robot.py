"""Index bookkeeping for one arm of the MuJoCo model, looked up by joint name."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class ArmIndex:
    """Where an arm's joints live in qpos/qvel, which actuator drives each, and their limits."""

    joint_names: tuple[str, ...]
    qpos_adr: np.ndarray
    dof_adr: np.ndarray
    actuator_ids: np.ndarray
    limited: np.ndarray
    ranges: np.ndarray

    @classmethod
    def from_model(cls, model: mujoco.MjModel, joint_names: tuple[str, ...]) -> ArmIndex:
        joint_ids = [named_id(model, mujoco.mjtObj.mjOBJ_JOINT, name) for name in joint_names]
        actuator_ids = []
        for name, joint_id in zip(joint_names, joint_ids):
            drivers = np.flatnonzero((model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
                                     & (model.actuator_trnid[:, 0] == joint_id))
            if len(drivers) != 1:
                raise ValueError(f"joint {name!r} needs exactly one actuator, has {len(drivers)}")
            actuator_ids.append(int(drivers[0]))
        return cls(
            joint_names=tuple(joint_names),
            qpos_adr=np.array([model.jnt_qposadr[j] for j in joint_ids]),
            dof_adr=np.array([model.jnt_dofadr[j] for j in joint_ids]),
            actuator_ids=np.array(actuator_ids),
            limited=np.array([bool(model.jnt_limited[j]) for j in joint_ids]),
            ranges=np.array([model.jnt_range[j] for j in joint_ids]),
        )

    def clip_to_range(self, q: np.ndarray) -> np.ndarray:
        """q with limited joints clipped into their ranges (continuous joints untouched)."""
        clipped = np.clip(q, self.ranges[:, 0], self.ranges[:, 1])
        return np.where(self.limited, clipped, q)


def named_id(model: mujoco.MjModel, obj: mujoco.mjtObj, name: str) -> int:
    """Id of a named model element, with an error that names what is missing."""
    index = mujoco.mj_name2id(model, obj, name)
    if index < 0:
        raise ValueError(f"model has no {obj.name.removeprefix('mjOBJ_').lower()} named {name!r}")
    return index
