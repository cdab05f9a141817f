"""KL divergence between linear-Gaussian trajectory distributions sharing dynamics (paper Sec. 4).

When p(tau) and q(tau) share p(x_0) and p(x_t+1 | x_t, u_t), the dynamics terms cancel and

    KL(p(tau) || q(tau)) = sum_t E_{p(x_t)} [ KL(p(u_t | x_t) || q(u_t | x_t)) ]

For p(u|x) = N(K_p x + k_p, S_p), q(u|x) = N(K_q x + k_q, S_q), x ~ N(mu, Sigma), dK = K_p - K_q,
dk = k_p - k_q, P = S_q^-1:

    E_x KL = 0.5 [ tr(P S_p) - dU + log|S_q| - log|S_p|
                   + (dK mu + dk)^T P (dK mu + dk) + tr(dK^T P dK Sigma) ]
"""

from __future__ import annotations

import numpy as np

from gps_trainer.linear_gaussian import LinearGaussianController, TrajectoryMarginals


def _log_det(chol: np.ndarray) -> np.ndarray:
    return 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def action_kl_per_step(p: LinearGaussianController, q: LinearGaussianController,
                       marginals: TrajectoryMarginals) -> np.ndarray:
    """E_{p(x_t)} KL(p(u_t|x_t) || q(u_t|x_t)) for each t, with p(x_t) taken from `marginals`."""
    if (p.T, p.dU, p.dX) != (q.T, q.dU, q.dX):
        raise ValueError(f"q: shape (T, dU, dX) = {(q.T, q.dU, q.dX)} differs from p's "
                         f"{(p.T, p.dU, p.dX)}")
    dX = marginals.dX
    mu_x = marginals.mu[:, :dX]
    sigma_x = marginals.sigma[:, :dX, :dX]
    P = q.inv_covariance
    dK = p.K - q.K
    mean_gap = np.einsum("tux,tx->tu", dK, mu_x) + p.k - q.k
    kl = 0.5 * (np.einsum("tij,tji->t", P, p.covariance) - p.dU
                + _log_det(q.chol_covariance) - _log_det(p.chol_covariance)
                + np.einsum("ti,tij,tj->t", mean_gap, P, mean_gap)
                + np.einsum("tux,tuv,tvy,txy->t", dK, P, dK, sigma_x, optimize=True))
    # Each term is a KL and so non-negative; clipping only removes round-off below zero.
    return np.maximum(kl, 0.0)


def trajectory_kl(p: LinearGaussianController, q: LinearGaussianController,
                  marginals: TrajectoryMarginals) -> float:
    """KL(p(tau) || q(tau)) = sum_t E_{p(x_t)} KL(p(u_t|x_t) || q(u_t|x_t))."""
    return float(np.sum(action_kl_per_step(p, q, marginals)))
