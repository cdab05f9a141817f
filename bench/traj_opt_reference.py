"""The per-step reference implementation that bench/traj_opt.py times the fast paths against.

This is the trajectory update and dynamics fit as first written in gps_trainer: one LQR step, one
forward step, one regression and one GMM query at a time, with the same equations as the package
modules (see their docstrings). It shares the package's data classes so that both paths take the
same inputs; the answers must agree to round-off.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg
from scipy.special import logsumexp

from gps_trainer.dynamics_prior import NIWPrior
from gps_trainer.gmm import GaussianMixture
from gps_trainer.linear_gaussian import (LinearGaussianController, LinearGaussianDynamics,
                                         TrajectoryMarginals)
from gps_trainer.quadratic_cost import QuadraticCost
from gps_trainer.traj_opt import EtaSearch, TrajOptResult


def lqr_backward(cost, dynamics, scale):
    """Q_t = C_t + s_t F^T V F, K = -Q_uu^-1 Q_ux, k = -Q_uu^-1 q_u, one step at a time."""
    T, dX, dU = dynamics.T, dynamics.dX, dynamics.dU
    x, u = slice(0, dX), slice(dX, dX + dU)
    K, k, covariance = np.zeros((T, dU, dX)), np.zeros((T, dU)), np.zeros((T, dU, dU))
    V, v = np.zeros((dX, dX)), np.zeros(dX)
    for t in range(T - 1, -1, -1):
        Q, q = cost.C[t].copy(), cost.c[t].copy()
        if t < T - 1:
            F, f = dynamics.F[t], dynamics.f[t]
            Q += scale[t] * F.T @ V @ F
            q += scale[t] * F.T @ (V @ f + v)
        Q = 0.5 * (Q + Q.T)
        try:
            factor = scipy.linalg.cho_factor(Q[u, u], lower=True)
        except np.linalg.LinAlgError:
            return None
        K[t] = -scipy.linalg.cho_solve(factor, Q[u, x])
        k[t] = -scipy.linalg.cho_solve(factor, q[u])
        covariance[t] = scipy.linalg.cho_solve(factor, np.eye(dU))
        V = Q[x, x] + Q[x, u] @ K[t]
        V = 0.5 * (V + V.T)
        v = q[x] + Q[x, u] @ k[t]
    return LinearGaussianController(K, k, 0.5 * (covariance + np.swapaxes(covariance, 1, 2)))


def negative_log_likelihood(controller):
    """-log p(u|x) as a quadratic in z = [x; u]."""
    K, k, P = controller.K, controller.k, controller.inv_covariance
    PK = P @ K
    Pk = np.einsum("tij,tj->ti", P, k)
    C = np.block([[np.swapaxes(K, 1, 2) @ PK, -np.swapaxes(PK, 1, 2)], [-PK, P]])
    c = np.concatenate([np.einsum("tux,tu->tx", K, Pk), -Pk], axis=1)
    log_det = 2.0 * np.sum(np.log(np.diagonal(controller.chol_covariance, axis1=1, axis2=2)), 1)
    cc = 0.5 * np.sum(k * Pk, axis=1) + 0.5 * (log_det + controller.dU * math.log(2 * math.pi))
    return QuadraticCost(C, c, cc)


def augmented_cost(cost, eta, prev, badmm):
    """(l - u^T lambda - eta log p_prev - nu log pi) / (eta + nu) and s_t."""
    T, dX, dU = prev.T, prev.dX, prev.dU
    total = cost + negative_log_likelihood(prev).scaled(eta)
    nu = np.zeros(T)
    if badmm is not None:
        nu = badmm.weights
        lagrange = np.zeros((T, dX + dU))
        lagrange[:, dX:] = -badmm.lagrange
        total = total + QuadraticCost(np.zeros_like(cost.C), lagrange, np.zeros(T))
        total = total + negative_log_likelihood(badmm.policy).scaled(nu)
    return total.scaled(1.0 / (eta + nu)), (eta + nu[1:]) / (eta + nu[:-1])


def backward_pass(cost, dynamics, prev, eta, config, badmm=None):
    """LQR on the augmented cost, raising eta0 + delta (delta doubling) while Q_uu is not PD."""
    eta0, delta = eta, config.eta_increase
    while True:
        augmented, scale = augmented_cost(cost, eta, prev, badmm)
        controller = lqr_backward(augmented, dynamics, scale)
        if controller is not None:
            return controller, eta
        if eta >= config.max_eta:
            raise ValueError(f"eta: no positive-definite Q_uu even for eta = {eta:.3g}")
        eta = eta0 + delta
        delta *= 2.0


def forward_pass(controller, dynamics, initial_state):
    """mu_t, S_t of p(x_t, u_t), one step at a time."""
    T, dX, dU = controller.T, controller.dX, controller.dU
    mu, sigma = np.zeros((T, dX + dU)), np.zeros((T, dX + dU, dX + dU))
    mu_x, sigma_x = initial_state.mu, initial_state.sigma
    for t in range(T):
        K = controller.K[t]
        mu[t] = np.concatenate([mu_x, K @ mu_x + controller.k[t]])
        sigma[t, :dX, :dX] = sigma_x
        sigma[t, :dX, dX:] = sigma_x @ K.T
        sigma[t, dX:, :dX] = K @ sigma_x
        sigma[t, dX:, dX:] = K @ sigma_x @ K.T + controller.covariance[t]
        if t < T - 1:
            F = dynamics.F[t]
            mu_x = F @ mu[t] + dynamics.f[t]
            sigma_x = F @ sigma[t] @ F.T + dynamics.covariance[t]
            sigma_x = 0.5 * (sigma_x + sigma_x.T)
    return TrajectoryMarginals(mu=mu, sigma=sigma, dX=dX)


def _log_det(chol):
    return 2.0 * np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)


def trajectory_kl(p, q, marginals):
    """sum_t E_p(x_t) KL(p(u_t|x_t) || q(u_t|x_t)), each term clipped at zero."""
    dX = marginals.dX
    mu_x, sigma_x = marginals.mu[:, :dX], marginals.sigma[:, :dX, :dX]
    P, dK = q.inv_covariance, p.K - q.K
    gap = np.einsum("tux,tx->tu", dK, mu_x) + p.k - q.k
    kl = 0.5 * (np.einsum("tij,tji->t", P, p.covariance) - p.dU
                + _log_det(q.chol_covariance) - _log_det(p.chol_covariance)
                + np.einsum("ti,tij,tj->t", gap, P, gap)
                + np.einsum("tux,tuv,tvy,txy->t", dK, P, dK, sigma_x, optimize=True))
    return float(np.sum(np.maximum(kl, 0.0)))


def optimize_trajectory(cost, dynamics, initial_state, prev, epsilon, eta, config, badmm=None):
    """The dual search's eta rule (gps_trainer.traj_opt.EtaSearch), one pass at a time."""
    search = EtaSearch(epsilon, eta, config)
    while not search.done:
        controller, eta = backward_pass(cost, dynamics, prev, search.next_eta, config, badmm)
        search.record(eta, trajectory_kl(controller, prev,
                                         forward_pass(controller, dynamics, initial_state)))
    return TrajOptResult(controller, search.eta, search.kl, epsilon, search.converged,
                         search.iterations)


def log_joint(gmm, points):
    """log w_k + log N(z_n | mu_k, Sigma_k), one Cholesky and triangular solve per cluster."""
    N, D = points.shape
    out = np.empty((N, gmm.n_clusters))
    for k in range(gmm.n_clusters):
        chol = np.linalg.cholesky(gmm.covariances[k])
        white = scipy.linalg.solve_triangular(chol, (points - gmm.means[k]).T, lower=True)
        log_det = 2.0 * np.sum(np.log(np.diag(chol)))
        out[:, k] = -0.5 * (np.sum(white ** 2, axis=0) + log_det + D * np.log(2 * np.pi))
    return out + np.log(gmm.weights)


def moments(gmm, w):
    """Mixture mean and covariance re-weighted by w."""
    mu = w @ gmm.means
    diff = gmm.means - mu
    sigma = np.einsum("k,kij->ij", w, gmm.covariances) + np.einsum("k,ki,kj->ij", w, diff, diff)
    return mu, 0.5 * (sigma + sigma.T)


def maximise(data, resp, rng, reg):
    """M-step with the (K, N, D) einsum for the covariances."""
    N, D = data.shape
    K = resp.shape[1]
    mass = resp.sum(axis=0)
    dead = mass < 1e-4 / K * N
    if np.any(dead):
        resp = resp.copy()
        for k in np.flatnonzero(dead):
            resp[:, k] = 0.0
            resp[rng.integers(N), k] = 1.0
        mass = resp.sum(axis=0)
    means = (resp.T @ data) / mass[:, None]
    diff = data[None] - means[:, None]
    covariances = np.einsum("kn,kni,knj->kij", resp.T, diff, diff, optimize=True)
    covariances = covariances / mass[:, None, None] + reg * np.eye(D)
    covariances = 0.5 * (covariances + np.swapaxes(covariances, 1, 2))
    if np.any(dead):
        covariances[dead] = np.cov(data.T, bias=True).reshape(D, D) + reg * np.eye(D)
    return GaussianMixture(mass / mass.sum(), means, covariances)


def fit_gmm(data, mixture, rng, max_iterations=100, tolerance=1e-5, regularization=1e-6):
    """EM from a given mixture (the warm start of a prior update)."""
    previous_ll = -np.inf
    for _ in range(max_iterations):
        lj = log_joint(mixture, data)
        log_norm = logsumexp(lj, axis=1, keepdims=True)
        ll = float(np.sum(log_norm))
        if ll < previous_ll:
            return previous
        if abs(ll - previous_ll) <= tolerance * abs(ll):
            return mixture
        previous_ll, previous = ll, mixture
        mixture = maximise(data, np.exp(lj - log_norm), rng, regularization)
    return mixture


def niw_prior(gmm, points, n_points, strength):
    """NIW prior for one step's tuples from the mean responsibilities."""
    lj = log_joint(gmm, points)
    weights = np.exp(lj - logsumexp(lj, axis=1, keepdims=True)).mean(axis=0)
    mu0, Phi = moments(gmm, weights)
    n0 = strength * (n_points - 2 - points.shape[1]) / n_points
    return NIWPrior(mu0, strength * Phi, strength, n0)


def fit_dynamics(X, U, gmm, n_points, strength, regularization):
    """Per-step MAP regression with the NIW prior, one time step at a time."""
    N, T, dX = X.shape
    dZ = dX + U.shape[2]
    F, f, W = np.zeros((T - 1, dX, dZ)), np.zeros((T - 1, dX)), np.zeros((T - 1, dX, dX))
    for t in range(T - 1):
        points = np.concatenate([X[:, t], U[:, t], X[:, t + 1]], axis=1)
        prior = niw_prior(gmm, points, n_points, strength)
        mu = points.mean(axis=0)
        diff = points - mu
        gap = mu - prior.mu0
        sigma = (diff.T @ diff + prior.Phi + (N * prior.m / (N + prior.m)) * np.outer(gap, gap)
                 ) / (N + prior.n0)
        sigma = 0.5 * (sigma + sigma.T)
        sigma[:dZ, :dZ] += regularization * np.eye(dZ)
        factor = scipy.linalg.cho_factor(sigma[:dZ, :dZ], lower=True)
        F[t] = scipy.linalg.cho_solve(factor, sigma[:dZ, dZ:]).T
        f[t] = mu[dZ:] - F[t] @ mu[:dZ]
        W[t] = sigma[dZ:, dZ:] - F[t] @ sigma[:dZ, :dZ] @ F[t].T
        W[t] = 0.5 * (W[t] + W[t].T)
    return LinearGaussianDynamics(F, f, W)
