"""Initial controller: LQR holding the initial pose under guessed double-integrator dynamics.

    q_t+1 = q_t + dt qdot_t + dt^2 g * u_t,   qdot_t+1 = qdot_t + dt g * u_t   (g = 1 / PR2_GAINS)
    l_t = 0.5 (z - z0)^T C (z - z0) / init_var,  C = diag(stiffness, stiffness stiffness_vel, 0, 1)

over z = [q, qdot, other state, u], z0 = [x0, 0], the last step weighted by final_weight. The
resulting Sigma_t = Q_uu^-1 is at most init_var, so the first samples explore around the pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.layout import PR2_RIGHT_ARM, Layout

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import LinearGaussianDynamics
from gps_trainer.lqr import lqr_backward
from gps_trainer.pr2 import PR2_GAINS
from gps_trainer.quadratic_cost import QuadraticCost


@dataclass(frozen=True)
class InitControllerConfig:
    """Parameters of the initial LQR controller; gains default to 1 / PR2_GAINS."""

    init_var: float = 1.0
    stiffness: float = 1.0
    stiffness_vel: float = 0.5
    final_weight: float = 1.0
    dt: float = 0.05
    gains: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("init_var", "stiffness", "dt"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive, got {getattr(self, name)}")
        for name in ("stiffness_vel", "final_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be non-negative, got {getattr(self, name)}")


def double_integrator_dynamics(gains: np.ndarray, dt: float, T: int,
                               layout: Layout = PR2_RIGHT_ARM) -> LinearGaussianDynamics:
    """Deterministic q' = q + dt qdot + dt^2 g u, qdot' = qdot + dt g u; other state maps to 0."""
    dX, dU = layout.dX, layout.dU
    q, qdot = layout.state_slice("joint_angles"), layout.state_slice("joint_velocities")
    u = slice(dX, dX + dU)
    F = np.zeros((dX, dX + dU))
    F[q, q] = np.eye(dU)
    F[q, qdot] = dt * np.eye(dU)
    F[q, u] = dt ** 2 * np.diag(gains)
    F[qdot, qdot] = np.eye(dU)
    F[qdot, u] = dt * np.diag(gains)
    return LinearGaussianDynamics(np.repeat(F[None], T - 1, axis=0), np.zeros((T - 1, dX)),
                                  np.zeros((T - 1, dX, dX)))


def init_lqr_controller(x0: np.ndarray, T: int,
                        config: InitControllerConfig = InitControllerConfig(),
                        layout: Layout = PR2_RIGHT_ARM) -> LinearGaussianController:
    """The LQR controller that holds x0 under the double-integrator guess (see module doc)."""
    x0 = np.asarray(x0, dtype=float)
    dX, dU = layout.dX, layout.dU
    if x0.shape != (dX,):
        raise ValueError(f"x0: expected shape {(dX,)}, got {x0.shape}")
    gains = 1.0 / PR2_GAINS if config.gains is None else np.asarray(config.gains, dtype=float)
    if gains.shape != (dU,):
        raise ValueError(f"gains: expected {dU} entries, got {gains.shape}")
    weights = np.zeros(dX + dU)
    weights[layout.state_slice("joint_angles")] = config.stiffness
    weights[layout.state_slice("joint_velocities")] = config.stiffness * config.stiffness_vel
    weights[dX:] = 1.0
    C = np.diag(weights) / config.init_var
    z0 = np.concatenate([x0, np.zeros(dU)])
    step_weight = np.ones(T)
    step_weight[-1] = config.final_weight
    cost = QuadraticCost(np.repeat(C[None], T, axis=0), np.repeat((-C @ z0)[None], T, axis=0),
                         np.full(T, 0.5 * z0 @ C @ z0)).scaled(step_weight)
    return lqr_backward(cost, double_integrator_dynamics(gains, config.dt, T, layout))
