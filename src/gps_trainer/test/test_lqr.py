"""LQR backward pass against an independent Riccati recursion and the discrete-time ARE."""

import numpy as np
import pytest
import scipy.linalg

from gps_trainer.linear_gaussian import LinearGaussianDynamics
from gps_trainer.lqr import NotPositiveDefiniteError, lqr_backward
from gps_trainer.quadratic_cost import QuadraticCost
from gps_trainer.random_systems import random_controller
from gps_trainer.traj_opt import TrajOptConfig, backward_pass

dX, dU = 4, 2


def _system(seed):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((dX, dX))
    A *= 1.1 / np.max(np.abs(np.linalg.eigvals(A)))  # open-loop unstable
    B = rng.standard_normal((dX, dU))
    f = 0.3 * rng.standard_normal(dX)
    M = rng.standard_normal((dX, dX))
    Q = M @ M.T + 0.1 * np.eye(dX)
    R = np.diag(rng.uniform(0.5, 2.0, dU))
    x_goal = rng.standard_normal(dX)
    return A, B, f, Q, R, x_goal


def _problem(A, B, f, Q, R, x_goal, T):
    """Cost 0.5 (x - g)^T Q (x - g) + 0.5 u^T R u as (C, c, cc), and the dynamics."""
    C = scipy.linalg.block_diag(Q, R)
    c = np.concatenate([-Q @ x_goal, np.zeros(dU)])
    cost = QuadraticCost(np.repeat(C[None], T, 0), np.repeat(c[None], T, 0),
                         np.full(T, 0.5 * x_goal @ Q @ x_goal))
    dynamics = LinearGaussianDynamics(np.repeat(np.hstack([A, B])[None], T - 1, 0),
                                      np.repeat(f[None], T - 1, 0),
                                      np.repeat(0.01 * np.eye(dX)[None], T - 1, 0))
    return cost, dynamics


def _riccati_affine(A, B, f, Q, R, x_goal, T):
    """Textbook Riccati recursion on the homogeneous state y = [x; 1], where the affine
    dynamics and the offset goal become linear: gain [K_t, k_t] = -(R + Bh' P Bh)^-1 Bh' P Ah."""
    Ah = np.block([[A, f[:, None]], [np.zeros((1, dX)), np.ones((1, 1))]])
    Bh = np.vstack([B, np.zeros((1, dU))])
    Qh = np.block([[Q, -(Q @ x_goal)[:, None]],
                   [-(Q @ x_goal)[None, :], np.array([[x_goal @ Q @ x_goal]])]])
    P = Qh
    gains = [None] * T
    gains[T - 1] = np.zeros((dU, dX + 1))
    for t in range(T - 2, -1, -1):
        gain = -np.linalg.solve(R + Bh.T @ P @ Bh, Bh.T @ P @ Ah)
        gains[t] = gain
        P = Qh + Ah.T @ P @ Ah + Ah.T @ P @ Bh @ gain
    return np.array(gains)


def test_backward_pass_reproduces_finite_horizon_lqr():
    A, B, f, Q, R, g = _system(0)
    T = 12
    cost, dynamics = _problem(A, B, f, Q, R, g, T)
    controller = lqr_backward(cost, dynamics)
    gains = _riccati_affine(A, B, f, Q, R, g, T)
    np.testing.assert_allclose(controller.K, gains[:, :, :dX], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(controller.k, gains[:, :, dX], rtol=1e-8, atol=1e-10)


def test_long_horizon_first_gain_approaches_the_algebraic_riccati_gain():
    A, B, f, Q, R, g = _system(1)
    cost, dynamics = _problem(A, B, f, Q, R, g, 200)
    P = scipy.linalg.solve_discrete_are(A, B, Q, R)
    K_inf = -np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)
    np.testing.assert_allclose(lqr_backward(cost, dynamics).K[0], K_inf, atol=1e-8)


def test_kl_augmented_pass_with_tiny_eta_is_plain_lqr():
    A, B, f, Q, R, g = _system(2)
    T = 10
    cost, dynamics = _problem(A, B, f, Q, R, g, T)
    prev = random_controller(np.random.default_rng(0), T, dX, dU)
    controller, eta = backward_pass(cost, dynamics, prev, 1e-8, TrajOptConfig())
    gains = _riccati_affine(A, B, f, Q, R, g, T)
    assert eta == 1e-8
    np.testing.assert_allclose(controller.K, gains[:, :, :dX], atol=1e-5)
    np.testing.assert_allclose(controller.k, gains[:, :, dX], atol=1e-5)
    # Sigma = (Q_uu / eta)^-1 = eta Q_uu^-1: the trajectory becomes deterministic.
    assert np.max(controller.covariance) < 1e-7


def test_non_positive_definite_q_uu_names_the_time_step():
    A, B, f, Q, R, g = _system(3)
    cost, dynamics = _problem(A, B, f, Q, -R, g, 5)
    with pytest.raises(NotPositiveDefiniteError, match="time step 4"):
        lqr_backward(cost, dynamics)
