"""Exploration noise and the initial LQR controller."""

import numpy as np
import pytest

from gps_controller.layout import PR2_RIGHT_ARM
from gps_trainer.init_controller import (InitControllerConfig, double_integrator_dynamics,
                                         init_lqr_controller)
from gps_controller.noise import NoiseConfig, exploration_noise
from gps_trainer.pr2 import PR2_GAINS


def test_smoothed_noise_has_unit_variance_and_gaussian_autocorrelation():
    rng = np.random.default_rng(0)
    noise = np.stack([exploration_noise(100, 7, rng) for _ in range(200)])
    np.testing.assert_allclose(noise.var(axis=1), 1.0, atol=1e-9)    # each sequence renormalised
    assert abs(noise[:, 20:80].var() - 1.0) < 0.1                       # per-step marginal too
    # White noise through a Gaussian filter of std s has autocorrelation exp(-k^2 / (4 s^2)).
    inner = noise[:, 20:80]                                             # zero mean by construction
    for lag in (1, 2, 4):
        corr = np.mean(inner[:, lag:] * inner[:, :-lag]) / np.mean(inner ** 2)
        assert corr == pytest.approx(np.exp(-lag ** 2 / 16.0), abs=0.1)


def test_unsmoothed_noise_is_white_and_seeded():
    a = exploration_noise(2000, 3, np.random.default_rng(5), NoiseConfig(smooth=False))
    b = exploration_noise(2000, 3, np.random.default_rng(5), NoiseConfig(smooth=False))
    np.testing.assert_array_equal(a, b)
    assert abs(np.mean(a[1:] * a[:-1])) < 0.1


def test_initial_controller_holds_the_pose_and_explores_with_at_most_init_var():
    layout = PR2_RIGHT_ARM
    rng = np.random.default_rng(1)
    x0 = np.zeros(layout.dX)
    x0[layout.state_slice("joint_angles")] = rng.uniform(-1, 1, 7)
    T = 50
    controller = init_lqr_controller(x0, T, InitControllerConfig(final_weight=50.0))
    for t in (0, T - 1):
        np.testing.assert_allclose(controller.act(t, x0), 0.0, atol=1e-9)
        assert np.all(np.linalg.eigvalsh(controller.covariance[t]) <= 1.0 + 1e-12)
    # From a displaced pose the closed loop on the guessed dynamics returns towards x0.
    dynamics = double_integrator_dynamics(1.0 / PR2_GAINS, 0.05, T, layout)
    q = layout.state_slice("joint_angles")
    x = x0.copy()
    x[q] += 0.2
    for t in range(T - 1):
        x = dynamics.F[t] @ np.concatenate([x, controller.act(t, x)])
    assert np.abs(x[q] - x0[q]).max() < 0.5 * 0.2


def test_initial_controller_rejects_a_wrong_state_size():
    with pytest.raises(ValueError, match="x0: expected shape"):
        init_lqr_controller(np.zeros(5), 10)
