"""Linear-Gaussian dynamics by per-step regression with a NIW prior (paper Sec. 4).

For each t the tuples z = (x_t, u_t, x_t+1) of the N samples get a joint Gaussian with the MAP
covariance under a normal-inverse-Wishart prior (mu0, Phi, m, n0):

    Sigma = [N S + Phi + N m / (N + m) (mu - mu0)(mu - mu0)^T] / (N + n0),  mu = mean_i z_i

(S the empirical covariance; without a prior Sigma = S), plus `regularization` on the (x, u)
block. Conditioning on (x_t, u_t) gives

    F_t = Sigma_{x'z} Sigma_zz^-1,  f_t = mu_x' - F_t mu_z,  W_t = Sigma_x'x' - F_t Sigma_zz F_t^T.

All T-1 regressions are independent and run at once over a leading axis of steps, except the
solve for F_t: one LAPACK Cholesky solve (posv) per step, which beats numpy's batched LU solve.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.linalg.lapack import dposv

from gps_trainer.dynamics_prior import DynamicsPriorConfig, DynamicsPriorGMM, NIWPrior
from gps_trainer.gmm import add_gram
from gps_trainer.linear_gaussian import InitialState, LinearGaussianDynamics


@dataclass(frozen=True)
class DynamicsConfig:
    """Ridge on the (x, u) block of the joint covariance; the GMM prior (None: plain regression)."""

    regularization: float = 1e-6
    initial_state_min_variance: float = 1e-6
    prior: DynamicsPriorConfig | None = field(default_factory=DynamicsPriorConfig)

    def __post_init__(self) -> None:
        if self.regularization < 0:
            raise ValueError(f"regularization: must be non-negative, got {self.regularization}")
        if self.initial_state_min_variance <= 0:
            raise ValueError(f"initial_state_min_variance: must be positive, "
                             f"got {self.initial_state_min_variance}")


def gaussian_map_fit(points: np.ndarray, prior: NIWPrior | None,
                     out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and MAP covariance of the points (... x N x D) under an optional NIW prior (whose
    mu0, Phi carry the same leading axes; Phi symmetric). The covariance is written into `out`
    when given, which may be prior.Phi itself (a caller that owns the prior saves an array).

    N S + N m / (N + m) (mu - mu0)(mu - mu0)^T is one symmetric product R^T R per step, with
    rows z_i - mu and sqrt(N m / (N + m)) (mu - mu0) of R (numpy computes an array times its own
    transpose with syrk, so it is exactly symmetric, and so is the sum with Phi)."""
    N, D = points.shape[-2:]
    mu = points.mean(axis=-2)
    rows = np.empty(points.shape[:-2] + (N + (prior is not None), D))
    np.subtract(points, mu[..., None, :], out=rows[..., :N, :])
    if prior is not None:
        np.multiply(mu - prior.mu0, np.sqrt(N * prior.m / (N + prior.m)), out=rows[..., N, :])
    if out is None:
        sigma = rows.mT @ rows
        if prior is not None:
            sigma += prior.Phi
    else:
        sigma = out
        if prior is None:
            sigma.fill(0.0)
        elif sigma is not prior.Phi:
            sigma[...] = prior.Phi
        add_gram(sigma, rows)
    sigma /= N if prior is None else N + prior.n0
    return mu, sigma


def fit_dynamics(X: np.ndarray, U: np.ndarray, prior: DynamicsPriorGMM | None = None,
                 regularization: float = 1e-6) -> LinearGaussianDynamics:
    """p(x_t+1 | x_t, u_t) = N(F_t [x_t; u_t] + f_t, W_t) from samples X (N x T x dX), U."""
    X, U = np.asarray(X, dtype=float), np.asarray(U, dtype=float)
    if X.ndim != 3 or U.ndim != 3 or X.shape[:2] != U.shape[:2]:
        raise ValueError(f"X, U: expected (N, T, dX) and (N, T, dU) arrays, got {X.shape}, "
                         f"{U.shape}")
    dX = X.shape[2]
    dZ = dX + U.shape[2]
    points = np.concatenate([X[:, :-1], U[:, :-1], X[:, 1:]], axis=2).swapaxes(0, 1)
    niw = None if prior is None else prior.evaluate_steps(points)
    # The prior is this call's own: its Phi becomes the joint covariance (no second array).
    mu, sigma = gaussian_map_fit(points, niw, out=None if niw is None else niw.Phi)
    sigma[:, :dZ, :dZ] += regularization * np.eye(dZ)
    # Cholesky solves of Sigma_zz F^T = Sigma_zx (LAPACK posv, one call per step) in place:
    # Sigma_zz and F = Sigma_x'z are copied out once as C-ordered stacks, whose transposes are
    # the Fortran-ordered Sigma_zz (symmetric) and Sigma_zx that posv takes without a copy and
    # overwrites with the factor and F^T (the assignment is then a no-op).
    sigma_zz = np.ascontiguousarray(sigma[:, :dZ, :dZ])
    F = np.ascontiguousarray(sigma[:, dZ:, :dZ])
    for t in range(F.shape[0]):
        _, solution, info = dposv(sigma_zz[t].T, F[t].T, overwrite_a=1, overwrite_b=1)
        if info != 0:
            raise np.linalg.LinAlgError(f"Sigma_zz at step {t} is not positive definite")
        F[t] = solution.T
    f = mu[:, dZ:] - np.einsum("txz,tz->tx", F, mu[:, :dZ])
    # F Sigma_zz F^T = F Sigma_zx.
    W = sigma[:, dZ:, dZ:] - F @ sigma[:, :dZ, dZ:]
    return LinearGaussianDynamics(F, f, 0.5 * (W + W.mT))


def fit_initial_state(x0: np.ndarray, prior: NIWPrior | None = None,
                      min_variance: float = 1e-6) -> InitialState:
    """p(x_0) of one condition: mean of its x_0 and diag(max(var, min_variance)), combined with
    an optional NIW prior by the MAP formula above."""
    x0 = np.asarray(x0, dtype=float)
    N = x0.shape[0]
    mu = x0.mean(axis=0)
    sigma = np.diag(np.maximum(x0.var(axis=0), min_variance))
    if prior is not None:
        gap = mu - prior.mu0
        sigma = (N * sigma + prior.Phi + (N * prior.m / (N + prior.m)) * np.outer(gap, gap)) / (
            N + prior.n0)
    return InitialState(mu, sigma)
