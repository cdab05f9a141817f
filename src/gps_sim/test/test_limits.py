"""The right arm obeys the PR2's effort limits and joint ranges."""

import numpy as np

from gps_controller.layout import RIGHT_ARM_EFFORT_LIMITS, RIGHT_ARM_JOINTS

JOINT_LIMIT_SLACK = 0.03
"""rad a joint may press into its limit when driven into it at full torque from the start pose
(MuJoCo limits are soft constraints, at their stiffest for 2 ms steps)."""


def test_model_actuators_match_layout_effort_limits(nominal_env):
    nominal_env.reset(0)
    model, right = nominal_env._rt.model, nominal_env._rt.right
    assert nominal_env._rt.right.joint_names == RIGHT_ARM_JOINTS
    np.testing.assert_allclose(model.actuator_ctrlrange[right.actuator_ids, 1],
                               RIGHT_ARM_EFFORT_LIMITS)
    np.testing.assert_allclose(model.actuator_gear[right.actuator_ids, 0], 1.0)


def test_torque_beyond_the_limit_is_clipped(nominal_env):
    nominal_env.reset(0)
    nominal_env.step(3.0 * RIGHT_ARM_EFFORT_LIMITS * np.array([1, -1, 1, -1, 1, -1, 1]))
    effort = nominal_env.joint_state().effort[:len(RIGHT_ARM_JOINTS)]
    np.testing.assert_allclose(effort, RIGHT_ARM_EFFORT_LIMITS * np.array([1, -1, 1, -1, 1, -1, 1]))


def test_joints_stay_in_range_under_maximum_torque(nominal_env):
    right = nominal_env._rt.right
    for sign in (1.0, -1.0):
        nominal_env.reset(0)
        for _ in range(40):
            nominal_env.step(sign * RIGHT_ARM_EFFORT_LIMITS)
            q = nominal_env.joint_state().position[:len(RIGHT_ARM_JOINTS)]
            limited = right.limited
            assert np.all(q[limited] >= right.ranges[limited, 0] - JOINT_LIMIT_SLACK)
            assert np.all(q[limited] <= right.ranges[limited, 1] + JOINT_LIMIT_SLACK)


def test_with_zero_torque_the_arm_moves_as_its_dynamics_predict(nominal_env):
    """The arm links are counterbalanced (as the PR2's springs do); the hanger is not, so with
    zero torque the arm starts to fall under the hanger's weight: over one 50 ms control step
    q moves by 0.5 a dt^2 with a = M^-1 (-bias), the bias being that weight's torque."""
    x, _ = nominal_env.reset(0)
    acceleration = np.linalg.solve(nominal_env.right_arm_mass_matrix(),
                                   -nominal_env.right_arm_bias_torque())
    assert np.abs(acceleration).max() > 1.0
    x1, _ = nominal_env.step(np.zeros(len(RIGHT_ARM_JOINTS)))
    predicted = 0.5 * acceleration * nominal_env.task.control_dt ** 2
    moved = x1[:len(RIGHT_ARM_JOINTS)] - x[:len(RIGHT_ARM_JOINTS)]
    np.testing.assert_allclose(moved, predicted, atol=0.1 * np.abs(predicted).max())
