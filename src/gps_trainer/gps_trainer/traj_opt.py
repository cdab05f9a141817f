"""Trajectory optimisation under a KL trust region, with the BADMM terms (paper Sec. 4, Alg. 2).

For one condition the trajectory step solves

    min_p  E_p[ sum_t l(x_t, u_t) - u_t^T lambda_t ] + sum_t nu_t E_p KL(p(u_t|x_t) || pi(u_t|x_t))
    s.t.   KL(p(tau) || p_prev(tau)) <= epsilon

through its Lagrangian with multiplier eta. Per time step that is the maximum-entropy problem
min E_p[f_t] - H(p(u_t|x_t)) with the augmented cost

    f_t = (l_t - u^T lambda_t - eta log p_prev(u|x) - nu_t log pi(u|x)) / (eta + nu_t),

solved by the LQR backward pass with value scale s_t = (eta + nu_t+1) / (eta + nu_t). With
lambda = 0 and nu = 0 this is the plain GPS cost l/eta - log p_prev(u|x). The dual search moves eta
by geometric bisection until |KL - epsilon| < tol * epsilon.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from gps_trainer.linear_gaussian import (InitialState, LinearGaussianController,
                                         LinearGaussianDynamics, forward_pass)
from gps_trainer.lqr import NotPositiveDefiniteError, lqr_backward
from gps_trainer.quadratic_cost import QuadraticCost
from gps_trainer.trajectory_kl import trajectory_kl

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrajOptConfig:
    """Dual search on eta: bounds, the first increase on a non-PD Q_uu, tolerance, passes."""

    min_eta: float = 1e-8
    max_eta: float = 1e16
    eta_increase: float = 1e-4
    kl_tolerance: float = 0.1
    max_iterations: int = 50

    def __post_init__(self) -> None:
        if not 0 < self.min_eta < self.max_eta:
            raise ValueError(f"min_eta, max_eta: need 0 < min_eta < max_eta, got "
                             f"{self.min_eta}, {self.max_eta}")
        if self.eta_increase <= 0:
            raise ValueError(f"eta_increase: must be positive, got {self.eta_increase}")
        if not 0 < self.kl_tolerance < 1:
            raise ValueError(f"kl_tolerance: must lie in (0, 1), got {self.kl_tolerance}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations: must be at least 1, got {self.max_iterations}")


@dataclass(frozen=True, eq=False)
class BadmmTerms:
    """-u^T lambda_t in the cost and nu_t KL(p(u|x) || pi(u|x)) to the linearised policy pi."""

    lagrange: np.ndarray              # lambda, T x dU
    weights: np.ndarray               # nu, T
    policy: LinearGaussianController  # pi(u|x), the policy linearised around the trajectory

    def __post_init__(self) -> None:
        T, dU = self.policy.T, self.policy.dU
        lagrange = np.asarray(self.lagrange, dtype=float)
        weights = np.asarray(self.weights, dtype=float)
        if lagrange.shape != (T, dU):
            raise ValueError(f"lagrange: expected shape {(T, dU)}, got {lagrange.shape}")
        if weights.shape != (T,):
            raise ValueError(f"weights: expected shape {(T,)}, got {weights.shape}")
        if not (np.all(np.isfinite(lagrange)) and np.all(np.isfinite(weights))):
            raise ValueError("lagrange, weights: contain non-finite values")
        if np.any(weights < 0):
            raise ValueError("weights: nu must be non-negative")
        object.__setattr__(self, "lagrange", lagrange)
        object.__setattr__(self, "weights", weights)


@dataclass(frozen=True, eq=False)
class TrajOptResult:
    """The new controller, its eta and KL(p_new || p_prev), and whether the search converged."""

    controller: LinearGaussianController
    eta: float
    kl: float
    epsilon: float
    converged: bool
    iterations: int


def negative_log_likelihood(controller: LinearGaussianController) -> QuadraticCost:
    """-log p(u|x) = 0.5 (u - Kx - k)^T P (u - Kx - k) + 0.5 log|2 pi Sigma| as a quadratic in z.

    C = [[K^T P K, -K^T P], [-P K, P]],  c = [K^T P k; -P k],
    cc = 0.5 k^T P k + 0.5 log|2 pi Sigma|.
    """
    K, k, P = controller.K, controller.k, controller.inv_covariance
    PK = P @ K
    Pk = np.einsum("tij,tj->ti", P, k)
    C = np.block([[np.swapaxes(K, 1, 2) @ PK, -np.swapaxes(PK, 1, 2)], [-PK, P]])
    c = np.concatenate([np.einsum("tux,tu->tx", K, Pk), -Pk], axis=1)
    log_det = 2.0 * np.sum(np.log(np.diagonal(controller.chol_covariance, axis1=1, axis2=2)), 1)
    cc = 0.5 * np.sum(k * Pk, axis=1) + 0.5 * (log_det + controller.dU * math.log(2 * math.pi))
    return QuadraticCost(C, c, cc)


def augmented_cost(cost: QuadraticCost, eta: float, prev: LinearGaussianController,
                   badmm: BadmmTerms | None = None) -> tuple[QuadraticCost, np.ndarray]:
    """f_t = (l_t - u^T lambda_t - eta log p_prev - nu_t log pi) / (eta + nu_t), and the value
    scale s_t = (eta + nu_t+1) / (eta + nu_t) for t = 0..T-2."""
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


def backward_pass(cost: QuadraticCost, dynamics: LinearGaussianDynamics,
                  prev: LinearGaussianController, eta: float, config: TrajOptConfig,
                  badmm: BadmmTerms | None = None) -> tuple[LinearGaussianController, float]:
    """LQR on the augmented cost; where Q_uu is not PD, retry with eta0 + delta, delta doubling."""
    eta0, delta = eta, config.eta_increase
    while True:
        try:
            augmented, scale = augmented_cost(cost, eta, prev, badmm)
            return lqr_backward(augmented, dynamics, scale), eta
        except NotPositiveDefiniteError as error:
            if eta >= config.max_eta:
                raise ValueError(
                    f"eta: no positive-definite Q_uu (first failing step {error.t}) even for "
                    f"eta = {eta:.3g} >= max_eta = {config.max_eta:.3g}; check the cost for "
                    f"negative curvature in u and the dynamics fit") from None
            eta = eta0 + delta
            delta *= 2.0


def optimize_trajectory(cost: QuadraticCost, dynamics: LinearGaussianDynamics,
                        initial_state: InitialState, prev: LinearGaussianController,
                        epsilon: float, eta: float = 1.0,
                        config: TrajOptConfig = TrajOptConfig(),
                        badmm: BadmmTerms | None = None) -> TrajOptResult:
    """Dual search on eta for KL(p_new(tau) || p_prev(tau)) = epsilon (within tolerance).

    KL < epsilon means eta is too large: max_eta <- eta, eta <- max(sqrt(min max), max / 10);
    otherwise min_eta <- eta, eta <- min(sqrt(min max), 10 min).
    """
    if not epsilon > 0:
        raise ValueError(f"epsilon: must be positive, got {epsilon}")
    min_eta, max_eta = config.min_eta, config.max_eta
    eta = float(np.clip(eta, min_eta, max_eta))
    for iteration in range(1, config.max_iterations + 1):
        controller, eta = backward_pass(cost, dynamics, prev, eta, config, badmm)
        kl = trajectory_kl(controller, prev, forward_pass(controller, dynamics, initial_state))
        result = TrajOptResult(controller, eta, kl, epsilon, False, iteration)
        if abs(kl - epsilon) < config.kl_tolerance * epsilon:
            return TrajOptResult(controller, eta, kl, epsilon, True, iteration)
        if kl < epsilon:
            max_eta = eta
            eta = max(math.sqrt(min_eta * max_eta), 0.1 * max_eta)
        else:
            min_eta = eta
            eta = min(math.sqrt(min_eta * max_eta), 10.0 * min_eta)
    if result.kl > epsilon:
        logger.warning("KL %.4g after the dual search is above epsilon %.4g (eta %.4g)",
                       result.kl, epsilon, result.eta)
    return result
