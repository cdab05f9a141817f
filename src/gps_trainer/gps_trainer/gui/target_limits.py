"""Where the left arm may hold the rack: the task's box of rack poses around the nominal pose
(rack_nominal_position +- rack_position_range, yaw within +- rack_yaw_range). The same box
bounds the random poses of pose pre-training; every pose in it is within the left arm's reach
(test_gui_condition_file checks its corners with the arm's IK)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gps_sim.conditions import HangerTaskConfig

AXES = ("x", "y", "z")
TOLERANCE = 1e-9
"""Slack on each bound, so that a pose reached by adding up steps is not refused at the edge."""


@dataclass(frozen=True)
class TargetLimits:
    """Bounds of the rack pose in the robot frame: position in metres, yaw in radians."""

    low: tuple[float, float, float]
    high: tuple[float, float, float]
    yaw_max: float

    @classmethod
    def from_task(cls, task: HangerTaskConfig) -> TargetLimits:
        nominal, spread = task.rack_nominal_position, task.rack_position_range
        return cls(low=tuple(n - s for n, s in zip(nominal, spread)),
                   high=tuple(n + s for n, s in zip(nominal, spread)),
                   yaw_max=task.rack_yaw_range)

    def check(self, position, yaw: float) -> None:
        """Raise ValueError naming the first coordinate that is not finite or out of bounds."""
        for axis, value, low, high in zip(AXES, position, self.low, self.high):
            if not math.isfinite(value) or not low - TOLERANCE <= value <= high + TOLERANCE:
                raise ValueError(f"{axis} = {value:.4f} m is out of the reach limits "
                                 f"[{low:.3f}, {high:.3f}] m")
        if not math.isfinite(yaw) or abs(yaw) > self.yaw_max + TOLERANCE:
            raise ValueError(f"yaw = {yaw:.4f} rad is out of the reach limits "
                             f"[{-self.yaw_max:.3f}, {self.yaw_max:.3f}] rad")

    def as_dict(self) -> dict:
        return {"low": list(self.low), "high": list(self.high), "yaw_max": self.yaw_max}
