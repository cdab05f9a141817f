"""LQR backward pass for a quadratic cost under linear-Gaussian dynamics (paper Sec. 4).

With z = [x; u], cost 0.5 z^T C_t z + c_t^T z and x_t+1 = F_t z + f_t + w_t, going back in time:

    Q_t = C_t + s_t F_t^T V_t+1 F_t          q_t = c_t + s_t F_t^T (V_t+1 f_t + v_t+1)
    K_t = -Q_uu^-1 Q_ux    k_t = -Q_uu^-1 q_u    Sigma_t = Q_uu^-1
    V_t = Q_xx + Q_xu K_t                    v_t = q_x + Q_xu k_t

The controller u = K_t x + k_t minimises the expected cost; with Sigma_t = Q_uu^-1 it is also the
maximum-entropy solution p(u|x) ∝ exp(-Q_t(x, u)). s_t scales the value of the next step; it is 1
for plain LQR and (eta + nu_t+1) / (eta + nu_t) for the normalised GPS cost (see traj_opt).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from gps_trainer.linear_gaussian import LinearGaussianController, LinearGaussianDynamics
from gps_trainer.quadratic_cost import QuadraticCost


class NotPositiveDefiniteError(ValueError):
    """Q_uu of some time step is not positive definite, so no controller minimises Q there."""

    def __init__(self, t: int) -> None:
        super().__init__(f"Q_uu at time step {t} is not positive definite")
        self.t = t


def lqr_backward(cost: QuadraticCost, dynamics: LinearGaussianDynamics,
                 value_scale: np.ndarray | None = None) -> LinearGaussianController:
    """The time-varying linear-Gaussian controller K_t, k_t, Sigma_t = Q_uu^-1 of the pass above."""
    T, dX, dU = dynamics.T, dynamics.dX, dynamics.dU
    if cost.C.shape != (T, dX + dU, dX + dU):
        raise ValueError(f"cost: expected C of shape {(T, dX + dU, dX + dU)}, got {cost.C.shape}")
    scale = np.ones(T - 1) if value_scale is None else np.asarray(value_scale, dtype=float)
    if scale.shape != (T - 1,):
        raise ValueError(f"value_scale: expected shape {(T - 1,)}, got {scale.shape}")
    x, u = slice(0, dX), slice(dX, dX + dU)
    K = np.zeros((T, dU, dX))
    k = np.zeros((T, dU))
    covariance = np.zeros((T, dU, dU))
    V = np.zeros((dX, dX))
    v = np.zeros(dX)
    for t in range(T - 1, -1, -1):
        Q = cost.C[t].copy()
        q = cost.c[t].copy()
        if t < T - 1:
            F, f = dynamics.F[t], dynamics.f[t]
            Q += scale[t] * F.T @ V @ F
            q += scale[t] * F.T @ (V @ f + v)
        Q = 0.5 * (Q + Q.T)
        try:
            factor = scipy.linalg.cho_factor(Q[u, u], lower=True)
        except np.linalg.LinAlgError:
            raise NotPositiveDefiniteError(t) from None
        K[t] = -scipy.linalg.cho_solve(factor, Q[u, x])
        k[t] = -scipy.linalg.cho_solve(factor, q[u])
        covariance[t] = scipy.linalg.cho_solve(factor, np.eye(dU))
        V = Q[x, x] + Q[x, u] @ K[t]
        V = 0.5 * (V + V.T)
        v = q[x] + Q[x, u] @ k[t]
    return LinearGaussianController(K, k, 0.5 * (covariance + np.swapaxes(covariance, 1, 2)))
