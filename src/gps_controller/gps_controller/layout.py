"""The one definition of the state, action and observation layouts.

Every package (sim, controller, trainer, tests) takes dimensions and index ranges from here, so
no index is typed twice.

Full state (trajectory optimisation, paper Sec. 4):
    x = [q (7), qdot (7), p_ee - p_target (3 points x 3), pdot_ee (3 points x 3)]   dX = 32
Observation (policy input, never the target):
    o = [image (C x H x W), q (7), qdot (7), p_ee in the robot frame (9), pdot_ee (9)]
    the configuration part has dO_config = 32 entries, as the paper's CNN expects.
Action: u = right-arm joint torques (7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RIGHT_ARM_JOINTS: tuple[str, ...] = (
    "r_shoulder_pan_joint",
    "r_shoulder_lift_joint",
    "r_upper_arm_roll_joint",
    "r_elbow_flex_joint",
    "r_forearm_roll_joint",
    "r_wrist_flex_joint",
    "r_wrist_roll_joint",
)
LEFT_ARM_JOINTS: tuple[str, ...] = tuple("l_" + name[2:] for name in RIGHT_ARM_JOINTS)

# Effort limits of the PR2 right arm in N m (PR2 URDF), in RIGHT_ARM_JOINTS order.
RIGHT_ARM_EFFORT_LIMITS = np.array([30.0, 30.0, 30.0, 30.0, 30.0, 10.0, 10.0])

N_EE_POINTS = 3


@dataclass(frozen=True)
class Block:
    """A named, contiguous slice of a flat vector."""

    name: str
    start: int
    size: int

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


def _blocks(spec: list[tuple[str, int]]) -> tuple[Block, ...]:
    blocks, start = [], 0
    for name, size in spec:
        blocks.append(Block(name, start, size))
        start += size
    return tuple(blocks)


@dataclass(frozen=True)
class Layout:
    """Index bookkeeping for x, u and the configuration part of o."""

    joints: tuple[str, ...] = RIGHT_ARM_JOINTS
    n_ee_points: int = N_EE_POINTS
    state_blocks: tuple[Block, ...] = field(init=False)
    config_blocks: tuple[Block, ...] = field(init=False)

    def __post_init__(self) -> None:
        n_q, n_p = len(self.joints), 3 * self.n_ee_points
        object.__setattr__(
            self,
            "state_blocks",
            _blocks([("joint_angles", n_q), ("joint_velocities", n_q),
                     ("ee_points_rel_target", n_p), ("ee_point_velocities", n_p)]),
        )
        object.__setattr__(
            self,
            "config_blocks",
            _blocks([("joint_angles", n_q), ("joint_velocities", n_q),
                     ("ee_points", n_p), ("ee_point_velocities", n_p)]),
        )

    @property
    def dX(self) -> int:
        return sum(b.size for b in self.state_blocks)

    @property
    def dU(self) -> int:
        return len(self.joints)

    @property
    def dO_config(self) -> int:
        return sum(b.size for b in self.config_blocks)

    def state_slice(self, name: str) -> slice:
        return _find(self.state_blocks, name).slice

    def config_slice(self, name: str) -> slice:
        return _find(self.config_blocks, name).slice

    @property
    def state_names(self) -> list[str]:
        return [b.name for b in self.state_blocks]

    @property
    def config_names(self) -> list[str]:
        return [b.name for b in self.config_blocks]

    def assemble_state(self, q, qdot, ee_points, ee_velocities, target_points) -> np.ndarray:
        """x = [q, qdot, p_ee - p_target, pdot_ee]; points are (n_ee_points, 3) arrays."""
        return np.concatenate([
            np.asarray(q, float), np.asarray(qdot, float),
            (np.asarray(ee_points, float) - np.asarray(target_points, float)).ravel(),
            np.asarray(ee_velocities, float).ravel(),
        ])

    def assemble_config(self, q, qdot, ee_points, ee_velocities) -> np.ndarray:
        """Configuration part of o = [q, qdot, p_ee, pdot_ee] (robot frame, no target)."""
        return np.concatenate([
            np.asarray(q, float), np.asarray(qdot, float),
            np.asarray(ee_points, float).ravel(), np.asarray(ee_velocities, float).ravel(),
        ])


def _find(blocks: tuple[Block, ...], name: str) -> Block:
    for block in blocks:
        if block.name == name:
            return block
    raise KeyError(f"no block named {name!r}; known: {[b.name for b in blocks]}")


PR2_RIGHT_ARM = Layout()
