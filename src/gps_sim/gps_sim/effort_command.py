"""Checking a right-arm effort command before the simulator applies it.

A command arrives as the data of a `std_msgs/Float64MultiArray` (the ros2_control
JointGroupEffortController convention: one torque per joint, in the controller's joint order,
here RIGHT_ARM_JOINTS). A command of the wrong length or with a NaN or an infinity is rejected:
the arm gets zero torque for that step, because guessing what a malformed command meant is
worse than letting the arm coast for 50 ms. A finite command beyond the effort limits is
clipped to them, and the clipped joints are reported so that the node can say so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.layout import RIGHT_ARM_EFFORT_LIMITS, RIGHT_ARM_JOINTS


class CommandError(ValueError):
    """An effort command that cannot be applied (wrong length, NaN or infinity)."""


@dataclass(frozen=True)
class EffortCommand:
    """The torque to apply (N m, RIGHT_ARM_JOINTS order), the torque that was asked for, and
    which joints were clipped to their effort limit."""

    torque: np.ndarray
    requested: np.ndarray
    clipped: np.ndarray

    @property
    def any_clipped(self) -> bool:
        return bool(np.any(self.clipped))

    def clip_report(self) -> str:
        """One line naming each clipped joint: `r_wrist_flex_joint 50 -> 10`."""
        return ", ".join(f"{RIGHT_ARM_JOINTS[i]} {self.requested[i]:.4g} -> {self.torque[i]:.4g}"
                         for i in np.flatnonzero(self.clipped))


def zero_command() -> EffortCommand:
    """Zero torque on every joint: what the arm gets without a valid command."""
    zeros = np.zeros(len(RIGHT_ARM_JOINTS))
    return EffortCommand(torque=zeros, requested=zeros, clipped=np.zeros(len(zeros), bool))


def check_effort_command(values, limits: np.ndarray = RIGHT_ARM_EFFORT_LIMITS) -> EffortCommand:
    """The command to apply for `values`, clipped to +-`limits`; raises CommandError when
    `values` is not len(limits) finite numbers."""
    requested = np.asarray(values, dtype=float).ravel()
    if requested.shape != limits.shape:
        raise CommandError(f"effort command has {requested.size} values, expected "
                           f"{limits.size} (one per joint of {list(RIGHT_ARM_JOINTS)})")
    bad = np.flatnonzero(~np.isfinite(requested))
    if bad.size:
        raise CommandError("effort command is not finite at "
                           + ", ".join(f"{RIGHT_ARM_JOINTS[i]} ({requested[i]})" for i in bad))
    torque = np.clip(requested, -limits, limits)
    return EffortCommand(torque=torque, requested=requested, clipped=torque != requested)
