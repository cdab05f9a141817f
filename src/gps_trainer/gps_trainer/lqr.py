"""LQR backward pass for a quadratic cost under linear-Gaussian dynamics (paper Sec. 4).

With z = [x; u], cost 0.5 z^T C_t z + c_t^T z and x_t+1 = F_t z + f_t + w_t, going back in time:

    Q_t = C_t + s_t F_t^T V_t+1 F_t          q_t = c_t + s_t F_t^T (V_t+1 f_t + v_t+1)
    K_t = -Q_uu^-1 Q_ux    k_t = -Q_uu^-1 q_u    Sigma_t = Q_uu^-1
    V_t = Q_xx + Q_xu K_t                    v_t = q_x + Q_xu k_t

The controller u = K_t x + k_t minimises the expected cost; with Sigma_t = Q_uu^-1 it is also the
maximum-entropy solution p(u|x) ∝ exp(-Q_t(x, u)). s_t scales the value of the next step; it is 1
for plain LQR and (eta + nu_t+1) / (eta + nu_t) for the normalised GPS cost (see traj_opt).

How it is computed:
- Homogeneous coordinates y = [x; 1; u]: the cost is 0.5 y^T H_t y with
  H = [[C_xx, c_x, C_xu], [c_x^T, 2 cc, c_u^T], [C_ux, c_u, C_uu]], the dynamics are linear,
  [x'; 1] = G_t y with G = [[A, f, B], [0, 1, 0]] (F = [A B]), and one product G^T V G gives Q
  and q together; [K_t k_t] = -Q_uu^-1 Q_u,[x;1].
- Unnormalised values: with weights w_t, w_t+1 = s_t w_t, the pass on H~_t = w_t H_t with s = 1
  gives Q~_t = w_t Q_t, the same gains, and Sigma_t = w_t Q~_uu^-1. The GPS cost (l + eta ...) /
  (eta + nu_t) then needs no division at all: H~ = H_l + eta H_prev, w_t = eta + nu_t.
- Batches: every step is a few matrix products over a leading axis of B problems (conditions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gps_controller.policies.linear_gaussian import LinearGaussianController, is_positive_definite
from gps_trainer.linear_gaussian import LinearGaussianDynamics
from gps_trainer.quadratic_cost import QuadraticCost


class NotPositiveDefiniteError(ValueError):
    """Q_uu of some time step is not positive definite, so no controller minimises Q there."""

    def __init__(self, t: int) -> None:
        super().__init__(f"Q_uu at time step {t} is not positive definite")
        self.t = t


def homogeneous_cost(C: np.ndarray, c: np.ndarray, cc: np.ndarray, dX: int,
                     out: np.ndarray | None = None) -> np.ndarray:
    """H = [[C_xx, c_x, C_xu], [c_x^T, 2 cc, c_u^T], [C_ux, c_u, C_uu]], so that
    0.5 [x; 1; u]^T H [x; 1; u] = 0.5 z^T C z + c^T z + cc (any leading axes), written block by
    block into `out` when given."""
    n = C.shape[-1]
    H = np.empty(C.shape[:-2] + (n + 1, n + 1)) if out is None else out
    x, u = slice(0, dX), slice(dX + 1, n + 1)
    H[..., x, x] = C[..., :dX, :dX]
    H[..., x, u] = C[..., :dX, dX:]
    H[..., u, x] = C[..., dX:, :dX]
    H[..., u, u] = C[..., dX:, dX:]
    H[..., x, dX] = c[..., :dX]
    H[..., u, dX] = c[..., dX:]
    H[..., dX, x] = c[..., :dX]
    H[..., dX, u] = c[..., dX:]
    H[..., dX, dX] = 2.0 * cc
    return H


def homogeneous_dynamics(F: np.ndarray, f: np.ndarray) -> np.ndarray:
    """G = [[A, f, B], [0, 1, 0]] for F = [A B], so that [x'; 1] = G [x; 1; u]."""
    dX, dZ = F.shape[-2:]
    G = np.zeros(F.shape[:-2] + (dX + 1, dZ + 1))
    G[..., :dX, :dX] = F[..., :dX]
    G[..., :dX, dX] = f
    G[..., :dX, dX + 1:] = F[..., dX:]
    G[..., dX, dX] = 1.0
    return G


@dataclass(frozen=True, eq=False)
class BatchedControllers:
    """Result of a batched pass: gains [K_t k_t], Q_uu and Sigma_t = Q_uu^-1 for each batch item,
    and per item the first step (going back) whose Q_uu was not PD, or -1 where none was."""

    gains: np.ndarray           # B x T x dU x (dX+1)
    precision: np.ndarray       # B x T x dU x dU, Q_uu
    covariance: np.ndarray      # B x T x dU x dU, Q_uu^-1
    chol_precision: np.ndarray  # B x T x dU x dU, lower Cholesky factor of Q_uu (valid items)
    failed_step: np.ndarray     # B, int

    def controller(self, i: int) -> LinearGaussianController:
        """Item i as a LinearGaussianController (u = K x + k + L eps, L L^T = Q_uu^-1)."""
        if self.failed_step[i] >= 0:
            raise NotPositiveDefiniteError(int(self.failed_step[i]))
        return LinearGaussianController(self.gains[i, :, :, :-1], self.gains[i, :, :, -1],
                                        self.covariance[i])


def lqr_backward_batch(add_cost: Callable[[int, np.ndarray], None],
                       step_dynamics: Callable[[int], np.ndarray], weight: np.ndarray,
                       dX: int, dU: int) -> BatchedControllers:
    """The unnormalised pass for B problems at once:

        Q~_t = H~_t + G_t^T V~_t+1 G_t,  [K_t k_t] = -Q~_uu^-1 Q~_u,[x;1],
        V~_t = Q~_[x;1],[x;1] - Q~_[x;1],u Q~_uu^-1 Q~_u,[x;1],  Sigma_t = w_t Q~_uu^-1,

    with add_cost(t, Q) adding H~_t (B x n x n, n = dX+dU+1) to Q in place, G_t =
    step_dynamics(t) (B or 1 x dX+1 x n) and the weights w (B x T). Q~_uu and V~ are symmetrised;
    the rest of Q~ is used as computed (its asymmetry is the round-off of one step). V~ must be:
    the gains use Q~_ux and V~ uses Q~_xu, so an antisymmetric part N of V~_t+1 returns in V~_t
    as A_cl^T N A_cl - K^T B^T N B K, which grows by a factor of order |K|^2 |B|^2 per step
    (twice per step on the hanger, with gains of 70: gains off by 15 after 80 steps). Items whose
    Q_uu is not PD at some step are reported in failed_step (their other outputs are
    meaningless); the others come out as if each ran alone. The work arrays are allocated once
    per pass; the symmetrised 2 Q~_uu is inverted as it is (scaling by 2 is exact, so the gains
    are those of Q~_uu^-1).
    """
    B, T = weight.shape
    nx = dX + 1
    n = nx + dU
    gains = np.empty((B, T, dU, nx))
    twice = np.empty((B, T, dU, dU))         # Q~_uu + Q~_uu^T
    inverses = [None] * T                    # (Q~_uu + Q~_uu^T)^-1
    Q = np.zeros((B, n, n))
    V = np.empty((B, nx, nx))
    VG = np.empty((B, nx, n))
    with np.errstate(all="ignore"):          # failed items may overflow; they are discarded
        for t in range(T - 1, -1, -1):
            if t < T - 1:
                G = step_dynamics(t)
                np.matmul(V, G, out=VG)
                np.matmul(G.mT, VG, out=Q)
            add_cost(t, Q)
            Q_uu = Q[:, nx:, nx:]
            np.add(Q_uu, Q_uu.mT, out=twice[:, t])
            inverses[t] = inverse = _inverse(twice[:, t])
            np.matmul(inverse, Q[:, nx:, :nx], out=gains[:, t])
            gains[:, t] *= -2.0
            # V~ unsymmetrised in VG's first columns (free until the next step), then V.
            np.matmul(Q[:, :nx, nx:], gains[:, t], out=VG[:, :, :nx])
            VG[:, :, :nx] += Q[:, :nx, :nx]
            np.add(VG[:, :, :nx], VG[:, :, :nx].mT, out=V)
            V *= 0.5
    precision = 0.5 * twice
    chol, failed_step = _cholesky_last_failure(precision)
    w = weight[:, :, None, None]
    inverse = np.stack(inverses, axis=1)
    covariance = inverse + inverse.mT        # = 0.5 (Q~_uu^-1 + Q~_uu^-T)
    covariance *= w
    precision /= w
    chol /= np.sqrt(w)
    return BatchedControllers(gains, precision, covariance, chol, failed_step)


def _inverse(matrices: np.ndarray) -> np.ndarray:
    """Batched inverse; exactly singular matrices (never PD) give NaN instead of stopping all."""
    try:
        return np.linalg.inv(matrices)
    except np.linalg.LinAlgError:
        out = np.full_like(matrices, np.nan)
        for i, matrix in enumerate(matrices):
            try:
                out[i] = np.linalg.inv(matrix)
            except np.linalg.LinAlgError:
                pass
        return out


def _cholesky_last_failure(precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cholesky factors of B x T stacks, and per item the last t whose matrix is not PD (-1: none).

    The pass runs backward, so that t is where the one-at-a-time pass would have stopped."""
    failed = np.full(precision.shape[0], -1)
    try:
        return np.linalg.cholesky(precision), failed
    except np.linalg.LinAlgError:
        pass
    for i, stack in enumerate(precision):
        bad = [t for t, matrix in enumerate(stack) if not is_positive_definite(matrix)]
        failed[i] = max(bad, default=-1)
    ok = failed < 0
    chol = np.zeros_like(precision)
    chol[ok] = np.linalg.cholesky(precision[ok])
    return chol, failed


def lqr_backward(cost: QuadraticCost, dynamics: LinearGaussianDynamics,
                 value_scale: np.ndarray | None = None) -> LinearGaussianController:
    """The time-varying linear-Gaussian controller K_t, k_t, Sigma_t = Q_uu^-1 of the pass above
    (run unnormalised with w_0 = 1, w_t+1 = s_t w_t)."""
    T, dX, dU = dynamics.T, dynamics.dX, dynamics.dU
    if cost.C.shape != (T, dX + dU, dX + dU):
        raise ValueError(f"cost: expected C of shape {(T, dX + dU, dX + dU)}, got {cost.C.shape}")
    scale = np.ones(T - 1) if value_scale is None else np.asarray(value_scale, dtype=float)
    if scale.shape != (T - 1,):
        raise ValueError(f"value_scale: expected shape {(T - 1,)}, got {scale.shape}")
    weight = np.cumprod(np.concatenate([[1.0], scale]))
    H = weight[:, None, None] * homogeneous_cost(cost.C, cost.c, cost.cc, dX)
    G = homogeneous_dynamics(dynamics.F, dynamics.f)

    def add_cost(t: int, Q: np.ndarray) -> None:
        Q += H[t]

    passes = lqr_backward_batch(add_cost, lambda t: G[t][None], weight[None], dX, dU)
    return passes.controller(0)
