"""safe_torque (gps_controller.safety): what reaches the robot is zero for a non-finite or
mis-shaped action, the action clipped to the effort limits otherwise, and never beyond them."""

import math

import numpy as np
import pytest

from gps_controller.layout import RIGHT_ARM_EFFORT_LIMITS
from gps_controller.safety import safe_torque, zero_torque

LIMITS = RIGHT_ARM_EFFORT_LIMITS


@pytest.mark.parametrize("bad, joints", [
    ({0: math.nan}, [0]),
    ({3: math.inf}, [3]),
    ({1: -math.inf, 6: math.nan}, [1, 6]),
])
def test_a_non_finite_action_gives_zero_torque_and_names_the_joints(bad, joints):
    action = np.full(7, 5.0)
    for index, value in bad.items():
        action[index] = value
    command = safe_torque(action, LIMITS)
    assert np.array_equal(command.torque, np.zeros(7))
    assert not command.clipped
    assert "non-finite" in command.fault
    assert f"joints {joints}" in command.fault


def test_a_mis_shaped_action_gives_zero_torque_with_the_shapes():
    command = safe_torque(np.ones(6), LIMITS)
    assert np.array_equal(command.torque, np.zeros(7))
    assert "(6,)" in command.fault and "(7,)" in command.fault


def test_within_the_limits_the_action_passes_unchanged():
    action = np.array([29.9, -30.0, 0.0, 1.5, -12.0, 10.0, -9.99])
    command = safe_torque(action, LIMITS)
    assert np.array_equal(command.torque, action)
    assert not command.clipped and command.fault == ""


def test_beyond_the_limits_each_joint_is_clipped_to_its_own_limit():
    action = np.array([31.0, -100.0, 0.5, 30.0, -30.5, 10.5, -1e6])
    command = safe_torque(action, LIMITS)
    assert np.array_equal(command.torque, [30.0, -30.0, 0.5, 30.0, -30.0, 10.0, -10.0])
    assert command.clipped and command.fault == ""


def test_random_actions_of_any_size_never_exceed_the_limits():
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-3, 300, 5000)
    actions = rng.standard_normal((5000, 7)) * scales[:, None]
    for action in actions:
        command = safe_torque(action, LIMITS)
        assert command.fault == ""
        assert np.all(np.abs(command.torque) <= LIMITS)
        inside = np.abs(action) <= LIMITS
        assert np.array_equal(command.torque[inside], action[inside])
        assert np.array_equal(command.torque[~inside], np.sign(action[~inside]) * LIMITS[~inside])
        assert command.clipped == bool(np.any(~inside))


def test_the_float_extremes_are_clipped():
    for value in (np.finfo(float).max, -np.finfo(float).max, np.finfo(float).tiny):
        command = safe_torque(np.full(7, value), LIMITS)
        assert np.all(np.abs(command.torque) <= LIMITS) and command.fault == ""


def test_zero_torque_has_the_arm_size():
    assert np.array_equal(zero_torque(LIMITS), np.zeros(7))
