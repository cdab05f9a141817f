"""Inverse kinematics: move a set of sites onto world points with one arm's joints.

Minimises the stacked site position errors (three non-collinear sites fix a full pose) over the
arm's joint angles within their ranges, by bounded nonlinear least squares (scipy's trust-region
reflective method) with the analytic site Jacobians from mj_jacSite. Used to place the rack with
the left arm and, for the feasibility demonstration, the hanger with the right arm.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from scipy.optimize import least_squares

from gps_sim.robot import ArmIndex


@dataclass(frozen=True)
class IkResult:
    """Joint angles found and the largest remaining site position error (m)."""

    q: np.ndarray
    max_error: float


def solve_site_positions(model: mujoco.MjModel, scratch: mujoco.MjData, arm: ArmIndex,
                         site_ids: list[int], targets: np.ndarray, q_init: np.ndarray,
                         tolerance: float = 1e-7) -> IkResult:
    """Joint angles of `arm` putting sites `site_ids` on `targets` (k x 3, world frame).

    `scratch` is an MjData whose other joints are already where they should be; its arm joints
    are overwritten. Limited joints stay inside their ranges; continuous joints are free.
    """
    targets = np.asarray(targets, float).reshape(len(site_ids), 3)
    lower = np.where(arm.limited, arm.ranges[:, 0], -np.inf)
    upper = np.where(arm.limited, arm.ranges[:, 1], np.inf)
    jacp = np.zeros((3, model.nv))

    def residual(q: np.ndarray) -> np.ndarray:
        _set_arm(model, scratch, arm, q)
        return (scratch.site_xpos[site_ids] - targets).ravel()

    def jacobian(q: np.ndarray) -> np.ndarray:
        _set_arm(model, scratch, arm, q)
        rows = []
        for site_id in site_ids:
            mujoco.mj_jacSite(model, scratch, jacp, None, site_id)
            rows.append(jacp[:, arm.dof_adr].copy())
        return np.concatenate(rows)

    q_start = np.clip(np.asarray(q_init, float), lower, upper)
    solution = least_squares(residual, q_start, jac=jacobian, bounds=(lower, upper),
                             method="trf", xtol=tolerance, ftol=tolerance, gtol=tolerance)
    return IkResult(q=solution.x, max_error=float(np.abs(residual(solution.x)).max()))


def _set_arm(model: mujoco.MjModel, scratch: mujoco.MjData, arm: ArmIndex, q: np.ndarray) -> None:
    scratch.qpos[arm.qpos_adr] = q
    mujoco.mj_kinematics(model, scratch)
    mujoco.mj_comPos(model, scratch)
