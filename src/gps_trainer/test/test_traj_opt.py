"""Dual search on eta, the augmented cost, and the BADMM terms."""

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import LinearGaussianDynamics, forward_pass
from gps_trainer.quadratic_cost import QuadraticCost, expected_cost
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)
from gps_trainer.traj_opt import (BadmmTerms, EtaSearch, TrajOptConfig, backward_pass,
                                  negative_log_likelihood, optimize_trajectory)
from gps_trainer.trajectory_kl import action_kl_per_step

T, dX, dU = 20, 4, 2


def _problem(seed):
    rng = np.random.default_rng(seed)
    dynamics = random_stable_dynamics(rng, T, dX, dU, noise=0.01)
    x0 = random_initial_state(rng, dX, variance=0.01)
    C = np.diag(np.concatenate([np.ones(dX), 0.1 * np.ones(dU)]))
    cost = QuadraticCost(np.repeat(C[None], T, 0), np.zeros((T, dX + dU)), np.zeros(T))
    prev = random_controller(rng, T, dX, dU, gain=0.1, variance=1.0)
    return cost, dynamics, x0, prev


def test_negative_log_likelihood_is_minus_the_gaussian_log_density():
    rng = np.random.default_rng(0)
    controller = random_controller(rng, T, dX, dU)
    nll = negative_log_likelihood(controller)
    z = rng.standard_normal(dX + dU)
    x, u = z[:dX], z[dX:]
    for t in (0, 7):
        value = 0.5 * z @ nll.C[t] @ z + nll.c[t] @ z + nll.cc[t]
        density = multivariate_normal(controller.K[t] @ x + controller.k[t],
                                      controller.covariance[t])
        np.testing.assert_allclose(value, -density.logpdf(u))


@pytest.mark.parametrize("seed, epsilon", [(1, 2.0), (2, 10.0), (3, 0.5)])
def test_dual_search_meets_the_kl_bound_within_ten_percent(seed, epsilon):
    cost, dynamics, x0, prev = _problem(seed)
    result = optimize_trajectory(cost, dynamics, x0, prev, epsilon)
    assert result.converged
    assert abs(result.kl - epsilon) < 0.1 * epsilon
    assert result.iterations <= 50


def test_eta_search_finds_the_root_of_a_power_law_in_two_passes():
    """Given KL = c / eta^2 (the large-eta regime) and KL < epsilon at the start, the first step's
    slope -2 lands on the root."""
    search = EtaSearch(epsilon=1.0, eta=100.0, config=TrajOptConfig())
    while not search.done:
        search.record(search.next_eta, 400.0 / search.next_eta ** 2)
    assert search.converged and search.iterations == 2
    assert abs(search.eta - 20.0) < 1.0


def test_eta_search_takes_two_passes_at_the_same_eta():
    """Two passes can run at one eta (a backward pass that raised eta for a PD Q_uu lands where
    another pass ran): the search goes on from the other passes (a hanger run, seed 2, divided by
    zero here)."""
    search = EtaSearch(epsilon=1.0, eta=1.0, config=TrajOptConfig())
    for eta, kl in ((1.0, 4.0), (2.0, 0.5), (2.0, 0.5)):
        search.record(eta, kl)
    assert not search.done and 1.0 < search.next_eta < 2.0
    while not search.done:
        search.record(search.next_eta, 4.0 / search.next_eta ** 3)
    assert search.converged


def test_eta_search_stops_at_min_eta_when_the_constraint_is_inactive():
    """Given an epsilon above the KL reachable at any eta, the search ends at min_eta at once
    instead of spending its 50 passes there."""
    cost, dynamics, x0, prev = _problem(6)
    config = TrajOptConfig()
    result = optimize_trajectory(cost, dynamics, x0, prev, 1e6, config=config)
    assert not result.converged and result.kl < 1e6
    assert result.eta == config.min_eta and result.iterations < 10


def test_a_larger_step_lowers_the_expected_cost_more():
    cost, dynamics, x0, prev = _problem(4)
    costs = [expected_cost(cost, forward_pass(optimize_trajectory(
        cost, dynamics, x0, prev, eps).controller, dynamics, x0)).sum() for eps in (0.5, 5.0)]
    prev_cost = expected_cost(cost, forward_pass(prev, dynamics, x0)).sum()
    assert prev_cost > costs[0] > costs[1]


def test_zero_badmm_terms_change_nothing():
    cost, dynamics, x0, prev = _problem(5)
    policy = random_controller(np.random.default_rng(9), T, dX, dU)
    zero = BadmmTerms(lagrange=np.zeros((T, dU)), weights=np.zeros(T), policy=policy)
    plain, _ = backward_pass(cost, dynamics, prev, 0.3, TrajOptConfig())
    with_terms, _ = backward_pass(cost, dynamics, prev, 0.3, TrajOptConfig(), zero)
    np.testing.assert_allclose(with_terms.K, plain.K, atol=1e-12)
    np.testing.assert_allclose(with_terms.k, plain.k, atol=1e-12)
    np.testing.assert_allclose(with_terms.covariance, plain.covariance, atol=1e-12)


def test_policy_weight_pulls_the_trajectory_towards_the_policy():
    cost, dynamics, x0, prev = _problem(6)
    policy = random_controller(np.random.default_rng(10), T, dX, dU, gain=0.2, variance=0.3)

    def kl_to_policy(nu):
        terms = BadmmTerms(np.zeros((T, dU)), np.full(T, nu), policy)
        controller, _ = backward_pass(cost, dynamics, prev, 1.0, TrajOptConfig(), terms)
        return action_kl_per_step(controller, policy,
                                  forward_pass(controller, dynamics, x0)).sum()

    assert kl_to_policy(0.0) > kl_to_policy(1.0) > kl_to_policy(100.0)


def test_lagrange_multiplier_shifts_the_mean_action_along_lambda():
    """-u^T lambda rewards actions along lambda: with no state cost and a unit quadratic action
    cost at eta -> 0, the mean action becomes lambda itself."""
    _, dynamics, x0, prev = _problem(7)
    C = np.zeros((T, dX + dU, dX + dU))
    C[:, dX:, dX:] = np.eye(dU)
    cost = QuadraticCost(C, np.zeros((T, dX + dU)), np.zeros(T))
    lagrange = np.random.default_rng(11).standard_normal((T, dU))
    terms = BadmmTerms(lagrange, np.zeros(T), prev)
    controller, _ = backward_pass(cost, dynamics, prev, 1e-8, TrajOptConfig(), terms)
    np.testing.assert_allclose(controller.k, lagrange, atol=1e-6)
    np.testing.assert_allclose(controller.K, 0.0, atol=1e-6)


def test_non_pd_cost_raises_eta_until_the_pass_succeeds():
    cost, dynamics, x0, prev = _problem(8)
    C = cost.C.copy()
    C[:, dX:, dX:] = -0.5 * np.eye(dU)          # concave in u: needs eta * Sigma_prev^-1 > 0.5
    concave = QuadraticCost(C, cost.c, cost.cc)
    controller, eta = backward_pass(concave, dynamics, prev, 1e-3, TrajOptConfig())
    assert eta > 1e-3 + 1e-4
    assert np.all(np.linalg.eigvalsh(controller.covariance) > 0)


def test_impossible_pd_solution_raises_a_clear_error():
    cost, dynamics, x0, prev = _problem(8)
    C = cost.C.copy()
    C[:, dX:, dX:] = -1e3 * np.eye(dU)
    with pytest.raises(ValueError, match="no positive-definite Q_uu .* even for eta"):
        backward_pass(QuadraticCost(C, cost.c, cost.cc), dynamics, prev, 1e-3,
                      TrajOptConfig(max_eta=10.0))


def test_badmm_terms_validation_names_the_field():
    policy = LinearGaussianController(np.zeros((T, dU, dX)), np.zeros((T, dU)),
                                      np.repeat(np.eye(dU)[None], T, 0))
    with pytest.raises(ValueError, match="lagrange: expected shape"):
        BadmmTerms(np.zeros((T, dU + 1)), np.zeros(T), policy)
    with pytest.raises(ValueError, match="weights: nu must be non-negative"):
        BadmmTerms(np.zeros((T, dU)), -np.ones(T), policy)


@pytest.mark.parametrize("eta", [1e-3, 1.0, 1e6])
def test_without_a_cost_the_step_returns_p_prev_even_with_large_gains(eta):
    # With l = 0 the augmented cost is -log p_prev(u|x) alone, whose minimiser is p_prev itself
    # at every eta. Here, as on the hanger, p_prev has large gains (about 20) and a stable closed
    # loop (A + B K = 0.5 R, R a rotation): round-off that the pass once let grow (from an
    # unsymmetrised value matrix, by |K|^2 |B|^2 per step) gave gains off by their own size.
    rng = np.random.default_rng(4)
    steps, n = 40, 4
    A = 20.0 * rng.standard_normal((n, n)) / np.sqrt(n)
    rotation = np.linalg.qr(rng.standard_normal((n, n)))[0]
    dynamics = LinearGaussianDynamics(np.repeat(np.hstack([A, np.eye(n)])[None], steps - 1, 0),
                                      np.zeros((steps - 1, n)),
                                      np.repeat(0.01 * np.eye(n)[None], steps - 1, 0))
    prev = LinearGaussianController(np.repeat((0.5 * rotation - A)[None], steps, 0),
                                    rng.standard_normal((steps, n)),
                                    np.repeat(0.1 * np.eye(n)[None], steps, 0))
    zero = QuadraticCost(np.zeros((steps, 2 * n, 2 * n)), np.zeros((steps, 2 * n)),
                         np.zeros(steps))
    new, _ = backward_pass(zero, dynamics, prev, eta, TrajOptConfig())
    scale = np.abs(prev.K).max()
    np.testing.assert_allclose(new.K, prev.K, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(new.k, prev.k, rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(new.covariance, prev.covariance, rtol=0, atol=1e-12)
