"""Linear-Gaussian dynamics by per-step regression with a NIW prior (paper Sec. 4).

For each t the tuples z = (x_t, u_t, x_t+1) of the N samples get a joint Gaussian with the MAP
covariance under a normal-inverse-Wishart prior (mu0, Phi, m, n0):

    Sigma = [N S + Phi + N m / (N + m) (mu - mu0)(mu - mu0)^T] / (N + n0),  mu = mean_i z_i

(S the empirical covariance; without a prior Sigma = S), plus `regularization` on the (x, u)
block. Conditioning on (x_t, u_t) gives

    F_t = Sigma_{x'z} Sigma_zz^-1,  f_t = mu_x' - F_t mu_z,  W_t = Sigma_x'x' - F_t Sigma_zz F_t^T.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from gps_trainer.dynamics_prior import DynamicsPriorConfig, DynamicsPriorGMM, NIWPrior
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


def gaussian_map_fit(points: np.ndarray,
                     prior: NIWPrior | None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and MAP covariance of the points (N x D) under an optional NIW prior."""
    N = points.shape[0]
    mu = points.mean(axis=0)
    diff = points - mu
    sigma = diff.T @ diff                                   # N S
    if prior is None:
        sigma = sigma / N
    else:
        gap = mu - prior.mu0
        sigma = (sigma + prior.Phi + (N * prior.m / (N + prior.m)) * np.outer(gap, gap)) / (
            N + prior.n0)
    return mu, 0.5 * (sigma + sigma.T)


def fit_dynamics(X: np.ndarray, U: np.ndarray, prior: DynamicsPriorGMM | None = None,
                 regularization: float = 1e-6) -> LinearGaussianDynamics:
    """p(x_t+1 | x_t, u_t) = N(F_t [x_t; u_t] + f_t, W_t) from samples X (N x T x dX), U."""
    X, U = np.asarray(X, dtype=float), np.asarray(U, dtype=float)
    if X.ndim != 3 or U.ndim != 3 or X.shape[:2] != U.shape[:2]:
        raise ValueError(f"X, U: expected (N, T, dX) and (N, T, dU) arrays, got {X.shape}, "
                         f"{U.shape}")
    N, T, dX = X.shape
    dZ = dX + U.shape[2]
    F = np.zeros((T - 1, dX, dZ))
    f = np.zeros((T - 1, dX))
    W = np.zeros((T - 1, dX, dX))
    for t in range(T - 1):
        points = np.concatenate([X[:, t], U[:, t], X[:, t + 1]], axis=1)
        niw = None if prior is None else prior.evaluate(points)
        mu, sigma = gaussian_map_fit(points, niw)
        sigma[:dZ, :dZ] += regularization * np.eye(dZ)
        factor = scipy.linalg.cho_factor(sigma[:dZ, :dZ], lower=True)
        F[t] = scipy.linalg.cho_solve(factor, sigma[:dZ, dZ:]).T
        f[t] = mu[dZ:] - F[t] @ mu[:dZ]
        W[t] = sigma[dZ:, dZ:] - F[t] @ sigma[:dZ, :dZ] @ F[t].T
        W[t] = 0.5 * (W[t] + W[t].T)
    return LinearGaussianDynamics(F, f, W)


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
