"""The batched and vectorised paths give the per-condition, per-step answers."""

import numpy as np
import pytest
import scipy.linalg
from scipy.stats import multivariate_normal

from gps_trainer.dynamics import fit_dynamics, gaussian_map_fit
from gps_trainer.dynamics_prior import DynamicsPriorConfig, DynamicsPriorGMM
from gps_trainer.gmm import fit_gmm
from gps_trainer.linear_gaussian import forward_pass, sample_trajectories
from gps_trainer.lqr import homogeneous_cost, homogeneous_dynamics, lqr_backward_batch
from gps_trainer.quadratic_cost import QuadraticCost
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)
from gps_trainer.traj_opt import BadmmTerms, optimize_trajectories, optimize_trajectory

T, dX, dU = 15, 4, 2


def _conditions(M, shared_dynamics, seed=0):
    rng = np.random.default_rng(seed)
    shared = random_stable_dynamics(rng, T, dX, dU)
    conditions = []
    for _ in range(M):
        dynamics = shared if shared_dynamics else random_stable_dynamics(rng, T, dX, dU)
        goal = rng.standard_normal(dX + dU)
        C = np.repeat(np.diag(np.r_[np.ones(dX), 0.1 * np.ones(dU)])[None], T, 0)
        cost = QuadraticCost(C, -np.einsum("tij,j->ti", C, goal), np.zeros(T))
        conditions.append((cost, dynamics, random_initial_state(rng, dX, 0.01),
                           random_controller(rng, T, dX, dU, gain=0.1, variance=1.0)))
    return conditions


@pytest.mark.parametrize("shared_dynamics", [True, False])
def test_batched_dual_search_equals_one_condition_at_a_time(shared_dynamics):
    conditions = _conditions(4, shared_dynamics)
    policy = random_controller(np.random.default_rng(5), T, dX, dU)
    badmms = [None, BadmmTerms(0.1 * np.ones((T, dU)), np.full(T, 0.5), policy), None, None]
    epsilons, etas = [1.0, 3.0, 0.3, 2.0], [1.0, 0.1, 10.0, 1.0]
    batched = optimize_trajectories(*zip(*conditions), epsilons, etas, badmms=badmms)
    for (cost, dynamics, x0, prev), epsilon, eta, badmm, got in zip(
            conditions, epsilons, etas, badmms, batched):
        alone = optimize_trajectory(cost, dynamics, x0, prev, epsilon, eta, badmm=badmm)
        # The batched forward pass multiplies shared dynamics by all items' gains at once, so its
        # KL, and the eta interpolated from it, agree with one condition's to round-off.
        assert (got.iterations, got.converged) == (alone.iterations, alone.converged)
        np.testing.assert_allclose(got.eta, alone.eta, rtol=1e-10)
        np.testing.assert_allclose(got.kl, alone.kl, rtol=1e-10)
        for name in ("K", "k", "covariance"):
            np.testing.assert_allclose(getattr(got.controller, name),
                                       getattr(alone.controller, name), rtol=1e-10, atol=1e-12)


def test_homogeneous_cost_is_the_quadratic_in_x_1_u():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((3, dX + dU, dX + dU))
    C, c, cc = M + np.swapaxes(M, 1, 2), rng.standard_normal((3, dX + dU)), rng.standard_normal(3)
    H = homogeneous_cost(C, c, cc, dX)
    z = rng.standard_normal(dX + dU)
    y = np.concatenate([z[:dX], [1.0], z[dX:]])
    np.testing.assert_allclose(0.5 * np.einsum("i,tij,j->t", y, H, y),
                               0.5 * np.einsum("i,tij,j->t", z, C, z) + c @ z + cc)


def test_homogeneous_dynamics_maps_x_1_u_to_next_x_1():
    dynamics = random_stable_dynamics(np.random.default_rng(1), T, dX, dU)
    z = np.random.default_rng(2).standard_normal(dX + dU)
    G = homogeneous_dynamics(dynamics.F, dynamics.f)
    y_next = G[3] @ np.concatenate([z[:dX], [1.0], z[dX:]])
    np.testing.assert_allclose(y_next, np.r_[dynamics.F[3] @ z + dynamics.f[3], 1.0])


def test_batched_pass_flags_only_the_items_without_pd_q_uu():
    conditions = _conditions(3, True)
    costs = [c for c, *_ in conditions]
    C = costs[1].C.copy()
    C[6:, dX:, dX:] = -np.eye(dU)             # concave in u from step 6 on
    costs[1] = QuadraticCost(C, costs[1].c, costs[1].cc)
    H = np.stack([homogeneous_cost(c.C, c.c, c.cc, dX) for c in costs])
    G = homogeneous_dynamics(conditions[0][1].F, conditions[0][1].f)

    def add_cost(items):
        def add(t, Q):
            Q += H[items, t]
        return add

    passes = lqr_backward_batch(add_cost(slice(None)), lambda t: G[t][None], np.ones((3, T)),
                                dX, dU)
    assert passes.failed_step.tolist() == [-1, T - 1, -1]
    for i in (0, 2):
        alone = lqr_backward_batch(add_cost(slice(i, i + 1)), lambda t: G[t][None],
                                   np.ones((1, T)), dX, dU)
        np.testing.assert_allclose(passes.gains[i], alone.gains[0], rtol=1e-12, atol=1e-14)


def test_forward_pass_equals_the_joint_recursion():
    rng = np.random.default_rng(3)
    dynamics = random_stable_dynamics(rng, T, dX, dU)
    controller = random_controller(rng, T, dX, dU)
    x0 = random_initial_state(rng, dX)
    marginals = forward_pass(controller, dynamics, x0)
    mu_x, sigma_x = x0.mu, x0.sigma
    for t in range(T):
        K = controller.K[t]
        mu = np.r_[mu_x, K @ mu_x + controller.k[t]]
        sigma = np.block([[sigma_x, sigma_x @ K.T],
                          [K @ sigma_x, K @ sigma_x @ K.T + controller.covariance[t]]])
        np.testing.assert_allclose(marginals.mu[t], mu, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(marginals.sigma[t], sigma, rtol=1e-12, atol=1e-12)
        if t < T - 1:
            mu_x = dynamics.F[t] @ mu + dynamics.f[t]
            sigma_x = dynamics.F[t] @ sigma @ dynamics.F[t].T + dynamics.covariance[t]


def _samples(seed, n):
    rng = np.random.default_rng(seed)
    dynamics = random_stable_dynamics(rng, T, dX, dU)
    controller = random_controller(rng, T, dX, dU, variance=1.0)
    return rng, sample_trajectories(controller, dynamics, random_initial_state(rng, dX), n, rng)


def test_gmm_log_joint_is_the_weighted_gaussian_log_density():
    rng, (X, U) = _samples(4, 30)
    data = np.concatenate([X, U], axis=2).reshape(-1, dX + dU)
    gmm = fit_gmm(data, 3, rng, max_iterations=5)
    expected = np.stack([np.log(w) + multivariate_normal(m, S).logpdf(data)
                         for w, m, S in zip(gmm.weights, gmm.means, gmm.covariances)], axis=1)
    np.testing.assert_allclose(gmm.log_joint(data), expected, rtol=1e-10)


def test_prior_for_all_steps_equals_one_step_at_a_time_and_so_does_the_fit():
    rng, (X, U) = _samples(5, 40)
    prior = DynamicsPriorGMM(DynamicsPriorConfig(min_samples_per_cluster=50), rng)
    prior.update(X[:30], U[:30])
    X, U = X[30:], U[30:]
    points = np.concatenate([X[:, :-1], U[:, :-1], X[:, 1:]], axis=2).swapaxes(0, 1)
    steps = prior.evaluate_steps(points)
    fit = fit_dynamics(X, U, prior)
    dZ = dX + dU
    for t in range(T - 1):
        one = prior.evaluate(points[t])
        np.testing.assert_allclose(steps.mu0[t], one.mu0, rtol=1e-12)
        np.testing.assert_allclose(steps.Phi[t], one.Phi, rtol=1e-12)
        mu, sigma = gaussian_map_fit(points[t], one)
        sigma[:dZ, :dZ] += 1e-6 * np.eye(dZ)
        F = scipy.linalg.solve(sigma[:dZ, :dZ], sigma[:dZ, dZ:], assume_a="pos").T
        np.testing.assert_allclose(fit.F[t], F, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(fit.f[t], mu[dZ:] - F @ mu[:dZ], rtol=1e-8, atol=1e-10)
