"""Linearising the neural-network policy around the trajectory samples (paper Sec. 4.2, BADMM).

The trajectory step needs pi(u_t | x_t) as a linear-Gaussian controller. For each time step the
pairs (x_ti, pi(o_ti)) of the samples are fitted by a Gaussian with a normal-inverse-Wishart prior
from a GMM over such pairs pooled over time, conditions and recent iterations (the policy prior),
and conditioned on x:

    K_t = Sigma_ux Sigma_xx^-1,   k_t = mu_u - K_t mu_x,
    cov_t = Sigma_pi + (Sigma_uu - K_t Sigma_xx K_t^T)

where Sigma_pi is the policy's own (state-independent) covariance and the second term the
spread of the network's mean actions around the linear fit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.dynamics import gaussian_map_fit
from gps_trainer.dynamics_prior import niw_prior_steps
from gps_trainer.gmm import GaussianMixture, fit_gmm


@dataclass(frozen=True)
class PolicyPriorConfig:
    """GMM over (x, pi(o)) of the last `max_samples` trajectories; strength in pseudo-points."""

    max_clusters: int = 20
    min_samples_per_cluster: int = 40
    max_samples: int = 20
    strength: float = 1.0
    regularization: float = 1e-6

    def __post_init__(self) -> None:
        if self.max_clusters < 1 or self.min_samples_per_cluster < 1 or self.max_samples < 1:
            raise ValueError("max_clusters, min_samples_per_cluster, max_samples: must be >= 1")
        if self.strength <= 0 or self.regularization < 0:
            raise ValueError("strength: must be positive; regularization: non-negative")


class PolicyPriorGMM:
    """Keeps the recent (x_t, pi(o_t)) pairs and the GMM over them."""

    def __init__(self, config: PolicyPriorConfig, rng: np.random.Generator) -> None:
        self.config = config
        self.rng = rng
        self.points: np.ndarray | None = None   # N x T x (dX + dU)
        self.gmm: GaussianMixture | None = None

    def update(self, X: np.ndarray, U_policy: np.ndarray) -> None:
        """Add trajectories' states (N x T x dX) and policy mean actions (N x T x dU)."""
        points = np.concatenate([X, U_policy], axis=2)
        if self.points is not None:
            points = np.concatenate([self.points, points])
        self.points = points[-self.config.max_samples:]
        N, T, D = self.points.shape
        n_clusters = max(1, min(self.config.max_clusters,
                                N * T // self.config.min_samples_per_cluster))
        self.gmm = fit_gmm(self.points.reshape(-1, D), n_clusters, self.rng, init=self.gmm)

    def linearize(self, X: np.ndarray, U_policy: np.ndarray,
                  policy_covariance: np.ndarray) -> LinearGaussianController:
        """pi_lin(u_t | x_t) for one condition's samples X (N x T x dX), U_policy (N x T x dU)."""
        if self.gmm is None:
            raise ValueError("gmm: the policy prior has no data yet; call update first")
        dX = X.shape[2]
        points = np.concatenate([X, U_policy], axis=2).swapaxes(0, 1)     # T x N x D
        n_points = self.points.shape[0] * self.points.shape[1]
        niw = niw_prior_steps(self.gmm, points, self.config.strength, n_points)
        mu, sigma = gaussian_map_fit(points, niw)
        sigma_xx = sigma[:, :dX, :dX] + self.config.regularization * np.eye(dX)
        K = np.linalg.solve(sigma_xx, sigma[:, :dX, dX:]).mT
        k = mu[:, dX:] - np.einsum("tux,tx->tu", K, mu[:, :dX])
        residual = sigma[:, dX:, dX:] - K @ sigma_xx @ K.mT
        covariance = policy_covariance[None] + 0.5 * (residual + residual.mT)
        return LinearGaussianController(K, k, covariance)
