"""Per-step linear-Gaussian dynamics fit and its GMM prior."""

import copy
import pickle

import numpy as np
import pytest

from gps_controller.typed_config import from_mapping
from gps_trainer.dynamics import DynamicsConfig, fit_dynamics, fit_initial_state
from gps_trainer.dynamics_prior import DynamicsPriorConfig, DynamicsPriorGMM, transition_points
from gps_trainer.linear_gaussian import sample_trajectories
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)

T, dX, dU = 10, 4, 2


def _system(seed, noise=0.01):
    rng = np.random.default_rng(seed)
    dynamics = random_stable_dynamics(rng, T, dX, dU, noise=noise)
    controller = random_controller(rng, T, dX, dU, variance=1.0)
    return rng, dynamics, controller, random_initial_state(rng, dX, variance=0.5)


def test_regression_recovers_a_noisy_linear_system():
    rng, truth, controller, x0 = _system(0)
    X, U = sample_trajectories(controller, truth, x0, 2000, rng)
    fit = fit_dynamics(X, U)
    np.testing.assert_allclose(fit.F, truth.F, atol=0.03)
    np.testing.assert_allclose(fit.f, truth.f, atol=0.03)
    np.testing.assert_allclose(fit.covariance, truth.covariance, atol=0.004)


def test_prior_pulls_a_few_sample_fit_towards_the_gmm():
    rng, truth, controller, x0 = _system(1)
    prior = DynamicsPriorGMM(DynamicsPriorConfig(max_samples=60), rng)
    prior.update(*sample_trajectories(controller, truth, x0, 60, rng))
    # Fewer samples (3) than regressors (dX + dU = 6): plain regression is underdetermined.
    X, U = sample_trajectories(controller, truth, x0, 3, rng)
    plain = fit_dynamics(X, U)
    with_prior = fit_dynamics(X, U, prior)
    error_plain = np.abs(plain.F - truth.F).mean()
    error_prior = np.abs(with_prior.F - truth.F).mean()
    assert error_prior < 0.5 * error_plain

    # The estimate lies closer to the GMM's own regression than the data-only estimate does.
    points = transition_points(X, U)[:: T - 1]     # the 3 tuples of t = 0
    niw = prior.evaluate(points)
    dZ = dX + dU
    F_gmm = np.linalg.solve(niw.Phi[:dZ, :dZ], niw.Phi[:dZ, dZ:]).T
    assert (np.linalg.norm(with_prior.F[0] - F_gmm) < np.linalg.norm(plain.F[0] - F_gmm))


def test_prior_keeps_the_newest_samples_and_sizes_the_mixture():
    rng, truth, controller, x0 = _system(2)
    prior = DynamicsPriorGMM(DynamicsPriorConfig(max_samples=5, min_samples_per_cluster=10), rng)
    for _ in range(3):
        prior.update(*sample_trajectories(controller, truth, x0, 4, rng))
    assert prior.X.shape[0] == 5
    assert prior.gmm.n_clusters == 5                  # max(2, min(20, 5 * 10 // 10))
    niw = prior.evaluate(transition_points(prior.X, prior.U))
    assert niw.m == 1.0 and niw.n0 == pytest.approx((45 - 2 - 10) / 45)


def test_a_prior_pickled_before_distances_were_kept_resumes_like_one_without_them():
    """A run's checkpoint from before the prior kept its E-step distances still resumes; the
    next update then computes every distance and gives the same mixture as a kept one."""
    rng, truth, controller, x0 = _system(3)
    prior = DynamicsPriorGMM(DynamicsPriorConfig(max_samples=6, min_samples_per_cluster=10), rng)
    prior.update(*sample_trajectories(controller, truth, x0, 4, rng))
    old = copy.deepcopy(prior)
    del old.__dict__["_distances"]
    restored = pickle.loads(pickle.dumps(old))
    assert restored._distances is None
    new = sample_trajectories(controller, truth, x0, 4, np.random.default_rng(9))
    prior.update(*new)
    restored.update(*new)
    np.testing.assert_allclose(restored.gmm.means, prior.gmm.means, atol=1e-10)
    np.testing.assert_allclose(restored.gmm.covariances, prior.gmm.covariances, atol=1e-10)


def test_initial_state_mean_and_floored_variance():
    x0 = np.array([[1.0, 2.0, 0.0], [3.0, 2.0, 0.0]])
    state = fit_initial_state(x0, min_variance=1e-6)
    np.testing.assert_allclose(state.mu, [2.0, 2.0, 0.0])
    np.testing.assert_allclose(np.diag(state.sigma), [1.0, 1e-6, 1e-6])


def test_dynamics_config_from_mapping():
    config = from_mapping(DynamicsConfig, {"regularization": 1e-5,
                                           "prior": {"max_clusters": 10}}, "dynamics")
    assert config.prior.max_clusters == 10 and config.prior.strength == 1.0
    assert from_mapping(DynamicsConfig, {"prior": None}).prior is None
