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

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import TrajectoryMarginals


def log_det(chol: np.ndarray) -> np.ndarray:
    """log |S| = 2 sum_i log L_ii from the Cholesky factor L of S (any leading axes)."""
    return 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def expected_action_kl(dK: np.ndarray, dk: np.ndarray, P: np.ndarray, S_p: np.ndarray,
                       log_det_ratio: np.ndarray, mu_x: np.ndarray,
                       dK_sigma_x: np.ndarray) -> np.ndarray:
    """The formula above over any leading axes, from log_det_ratio = log|S_q| - log|S_p| and
    dK Sigma (not Sigma itself: tr(dK^T P dK Sigma) = sum_ux (P dK)_ux (dK Sigma)_ux). Each term
    is clipped at zero (it is a KL, so only round-off can make it negative)."""
    gap = np.einsum("...ux,...x->...u", dK, mu_x) + dk
    kl = 0.5 * (np.sum(P * np.swapaxes(S_p, -1, -2), axis=(-2, -1)) - dK.shape[-2]
                + log_det_ratio
                + np.einsum("...i,...i->...", gap, np.einsum("...ij,...j->...i", P, gap))
                + np.sum((P @ dK) * dK_sigma_x, axis=(-2, -1)))
    return np.maximum(kl, 0.0)


def action_kl_per_step(p: LinearGaussianController, q: LinearGaussianController,
                       marginals: TrajectoryMarginals) -> np.ndarray:
    """E_{p(x_t)} KL(p(u_t|x_t) || q(u_t|x_t)) for each t, with p(x_t) taken from `marginals`."""
    if (p.T, p.dU, p.dX) != (q.T, q.dU, q.dX):
        raise ValueError(f"q: shape (T, dU, dX) = {(q.T, q.dU, q.dX)} differs from p's "
                         f"{(p.T, p.dU, p.dX)}")
    dX = marginals.dX
    dK = p.K - q.K
    return expected_action_kl(dK, p.k - q.k, q.inv_covariance, p.covariance,
                              log_det(q.chol_covariance) - log_det(p.chol_covariance),
                              marginals.mu[:, :dX], dK @ marginals.sigma[:, :dX, :dX])


def trajectory_kl(p: LinearGaussianController, q: LinearGaussianController,
                  marginals: TrajectoryMarginals) -> float:
    """KL(p(tau) || q(tau)) = sum_t E_{p(x_t)} KL(p(u_t|x_t) || q(u_t|x_t))."""
    return float(np.sum(action_kl_per_step(p, q, marginals)))
