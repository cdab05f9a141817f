"""Linear-Gaussian controller / dynamics: validation, acting, and the forward pass."""

import numpy as np
import pytest

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import (InitialState, LinearGaussianDynamics,
                                         forward_pass, sample_trajectories)
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)


T, dX, dU = 5, 3, 2


def _controller(**overrides):
    fields = dict(K=np.zeros((T, dU, dX)), k=np.zeros((T, dU)),
                  covariance=np.repeat(np.eye(dU)[None], T, axis=0))
    fields.update(overrides)
    return LinearGaussianController(**fields)


def test_controller_derives_cholesky_and_inverse():
    controller = random_controller(np.random.default_rng(0), T, dX, dU)
    L = controller.chol_covariance
    np.testing.assert_allclose(L @ np.swapaxes(L, 1, 2), controller.covariance, atol=1e-12)
    np.testing.assert_allclose(controller.inv_covariance @ controller.covariance,
                               np.repeat(np.eye(dU)[None], T, axis=0), atol=1e-10)


def test_act_is_mean_plus_cholesky_times_noise():
    controller = random_controller(np.random.default_rng(1), T, dX, dU)
    x, eps = np.ones(dX), np.array([0.5, -1.0])
    expected = controller.K[2] @ x + controller.k[2] + controller.chol_covariance[2] @ eps
    np.testing.assert_allclose(controller.act(2, x, eps), expected)
    np.testing.assert_allclose(controller.act(2, x), controller.K[2] @ x + controller.k[2])


@pytest.mark.parametrize("overrides, message", [
    (dict(k=np.zeros((T, dU + 1))), "k: expected shape"),
    (dict(covariance=np.zeros((T, dU, dU + 1))), "covariance: expected shape"),
    (dict(K=np.full((T, dU, dX), np.nan)), "K: contains non-finite"),
    (dict(K=np.zeros((dU, dX))), "K: expected shape"),
])
def test_controller_validation_names_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        _controller(**overrides)


def test_controller_rejects_a_covariance_that_is_not_positive_definite():
    covariance = np.repeat(np.eye(dU)[None], T, axis=0)
    covariance[3] = np.diag([1.0, -1.0])
    with pytest.raises(ValueError, match=r"covariance\[3\]: not positive definite"):
        _controller(covariance=covariance)


def test_dynamics_and_initial_state_validation_names_the_field():
    with pytest.raises(ValueError, match="f: expected shape"):
        LinearGaussianDynamics(np.zeros((T - 1, dX, dX + dU)), np.zeros((T, dX)),
                               np.zeros((T - 1, dX, dX)))
    with pytest.raises(ValueError, match="sigma"):
        InitialState(np.zeros(dX), -np.eye(dX))


def test_forward_pass_matches_sample_moments():
    rng = np.random.default_rng(2)
    dynamics = random_stable_dynamics(rng, T, dX, dU, noise=0.05)
    controller = random_controller(rng, T, dX, dU)
    x0 = random_initial_state(rng, dX)
    marginals = forward_pass(controller, dynamics, x0)
    X, U = sample_trajectories(controller, dynamics, x0, 40000, rng)
    Z = np.concatenate([X, U], axis=2)
    np.testing.assert_allclose(Z.mean(axis=0), marginals.mu, atol=0.05)
    for t in range(T):
        np.testing.assert_allclose(np.cov(Z[:, t].T), marginals.sigma[t], atol=0.08)


def test_forward_pass_rejects_mismatched_parts():
    rng = np.random.default_rng(3)
    dynamics = random_stable_dynamics(rng, T + 1, dX, dU)
    with pytest.raises(ValueError, match="controller: T"):
        forward_pass(random_controller(rng, T, dX, dU), dynamics, random_initial_state(rng, dX))
