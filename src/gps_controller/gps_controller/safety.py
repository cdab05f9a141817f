"""What stands between a policy's output and the robot: every torque the controller publishes
passes through `safe_torque`.

- a non-finite action (NaN or infinity from a diverged policy) becomes zero torque, with the
  reason, and ends the trial;
- a finite action is clipped to the joints' effort limits, so the robot never receives a torque
  outside them whatever the policy computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SafeTorque:
    """The torque to publish, whether any joint was clipped, and why it was zeroed (empty when
    the action was finite)."""

    torque: np.ndarray
    clipped: bool
    fault: str = ""


def safe_torque(action, limits: np.ndarray) -> SafeTorque:
    """The command for `action` under effort limits `limits` (both dU; limits positive)."""
    action = np.asarray(action, dtype=float)
    if action.shape != limits.shape:
        return SafeTorque(np.zeros_like(limits), False,
                          f"policy gave {action.shape} torques, the arm takes {limits.shape}")
    if not np.all(np.isfinite(action)):
        bad = np.flatnonzero(~np.isfinite(action)).tolist()
        return SafeTorque(np.zeros_like(limits), False,
                          f"policy gave non-finite torques at joints {bad}")
    torque = np.clip(action, -limits, limits)
    return SafeTorque(torque, bool(np.any(torque != action)))


def zero_torque(limits: np.ndarray) -> np.ndarray:
    return np.zeros_like(limits)
