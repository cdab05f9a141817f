"""Exact trajectory KL against a Monte-Carlo estimate of E_p[log p(tau) - log q(tau)]."""

import numpy as np
from scipy.stats import multivariate_normal

from gps_trainer.linear_gaussian import forward_pass, sample_trajectories
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)
from gps_trainer.trajectory_kl import trajectory_kl

T, dX, dU = 6, 3, 2


def _log_action_likelihood(controller, X, U):
    """sum_t log N(u_t | K_t x_t + k_t, Sigma_t) per sample (the dynamics terms cancel)."""
    total = np.zeros(X.shape[0])
    for t in range(controller.T):
        mean = X[:, t] @ controller.K[t].T + controller.k[t]
        total += multivariate_normal(np.zeros(dU), controller.covariance[t]).logpdf(U[:, t] - mean)
    return total


def test_kl_matches_monte_carlo_estimate():
    rng = np.random.default_rng(0)
    dynamics = random_stable_dynamics(rng, T, dX, dU, noise=0.05)
    x0 = random_initial_state(rng, dX)
    p = random_controller(rng, T, dX, dU)
    q = random_controller(rng, T, dX, dU, variance=0.8)
    exact = trajectory_kl(p, q, forward_pass(p, dynamics, x0))

    X, U = sample_trajectories(p, dynamics, x0, 20000, rng)
    log_ratio = _log_action_likelihood(p, X, U) - _log_action_likelihood(q, X, U)
    standard_error = log_ratio.std() / np.sqrt(log_ratio.size)
    assert abs(exact - log_ratio.mean()) < 4 * standard_error
    assert exact > 10 * standard_error  # the comparison is not vacuous


def test_kl_of_a_distribution_with_itself_is_zero():
    rng = np.random.default_rng(1)
    p = random_controller(rng, T, dX, dU)
    dynamics = random_stable_dynamics(rng, T, dX, dU)
    marginals = forward_pass(p, dynamics, random_initial_state(rng, dX))
    assert trajectory_kl(p, p, marginals) < 1e-12
