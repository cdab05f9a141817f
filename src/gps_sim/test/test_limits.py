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
