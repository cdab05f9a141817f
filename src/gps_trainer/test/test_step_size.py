"""Step-size adaptation: new_mult = pred / (2 max(1e-4, pred - actual)), clipped twice."""

import numpy as np
import pytest

from gps_trainer.quadratic_cost import QuadraticCost, expected_cost
from gps_trainer.linear_gaussian import forward_pass
from gps_trainer.random_systems import (random_controller, random_initial_state,
                                        random_stable_dynamics)
from gps_trainer.step_size import (StepSizeConfig, expected_objective, kl_epsilon,
                                   update_step_mult)
from gps_trainer.traj_opt import BadmmTerms
from gps_trainer.trajectory_kl import action_kl_per_step

CONFIG = StepSizeConfig()


def test_step_grows_when_the_improvement_was_predicted_well():
    # actual == predicted: pred / (2 * 1e-4) is clipped to 5
    assert update_step_mult(CONFIG, 1.0, 2.0, 2.0) == pytest.approx(5.0)


def test_step_shrinks_when_nothing_improved():
    # actual = 0: pred / (2 pred) = 0.5
    assert update_step_mult(CONFIG, 1.0, 2.0, 0.0) == pytest.approx(0.5)


def test_step_holds_when_half_the_predicted_improvement_happened():
    assert update_step_mult(CONFIG, 1.0, 2.0, 1.0) == pytest.approx(1.0)


def test_step_shrinks_most_when_the_cost_got_worse():
    assert update_step_mult(CONFIG, 1.0, 2.0, -5.0) == pytest.approx(2.0 / (2 * 7.0))
    assert update_step_mult(CONFIG, 1.0, 2.0, -1e3) == pytest.approx(0.1)


def test_step_mult_stays_within_its_bounds():
    assert update_step_mult(CONFIG, 9.0, 1.0, 1.0) == 10.0
    assert update_step_mult(CONFIG, 0.02, 1.0, -1e6) == 0.01


def test_epsilon_is_kl_step_times_step_mult_times_horizon():
    assert kl_epsilon(StepSizeConfig(kl_step=0.2), 0.5, 100) == pytest.approx(10.0)


def test_expected_objective_adds_the_weighted_policy_kl():
    rng = np.random.default_rng(0)
    T, dX, dU = 8, 3, 2
    dynamics = random_stable_dynamics(rng, T, dX, dU)
    x0 = random_initial_state(rng, dX)
    controller, policy = random_controller(rng, T, dX, dU), random_controller(rng, T, dX, dU)
    C = np.repeat(np.eye(dX + dU)[None], T, 0)
    cost = QuadraticCost(C, np.zeros((T, dX + dU)), np.ones(T))
    nu = rng.uniform(0, 1, T)
    marginals = forward_pass(controller, dynamics, x0)
    expected = (expected_cost(cost, marginals).sum()
                + np.sum(nu * action_kl_per_step(controller, policy, marginals)))
    terms = BadmmTerms(np.zeros((T, dU)), nu, policy)
    assert expected_objective(controller, dynamics, x0, cost, terms) == pytest.approx(expected)
    assert expected_objective(controller, dynamics, x0, cost) == pytest.approx(
        expected_cost(cost, marginals).sum())
