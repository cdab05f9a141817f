"""State and observation follow gps_controller.layout; velocities and Jacobians are consistent."""

import dataclasses

import numpy as np
import pytest

from gps_controller.layout import PR2_RIGHT_ARM
from gps_sim import HangerCondition, HangerEnv, HangerTaskConfig


def test_state_blocks_are_joints_ee_minus_target_and_ee_velocities(nominal_env):
    x, obs = nominal_env.reset(0)
    x, obs = nominal_env.step(np.array([2.0, -3.0, 1.0, 2.0, 0.5, 0.3, -0.2]))
    state = nominal_env.joint_state()
    sites = nominal_env._data.site_xpos
    ee_world = sites[nominal_env._rt.ee_sites]
    target_world = sites[nominal_env._rt.target_sites]
    assert x.shape == (PR2_RIGHT_ARM.dX,)
    np.testing.assert_allclose(x[PR2_RIGHT_ARM.state_slice("joint_angles")], state.position[:7])
    np.testing.assert_allclose(x[PR2_RIGHT_ARM.state_slice("joint_velocities")], state.velocity[:7])
    np.testing.assert_allclose(x[PR2_RIGHT_ARM.state_slice("ee_points_rel_target")],
                               (ee_world - target_world).ravel(), atol=1e-12)
    np.testing.assert_allclose(x[PR2_RIGHT_ARM.state_slice("ee_point_velocities")],
                               nominal_env.ee_velocities().ravel())


def test_observation_has_ee_points_in_robot_frame_and_no_target(nominal_env):
    nominal_env.reset(0)
    _, obs = nominal_env.step(np.ones(7))
    robot = nominal_env._rt
    ee_robot = (nominal_env._data.site_xpos[robot.ee_sites] - robot.robot_pos) @ robot.robot_rot
    assert obs.config.shape == (PR2_RIGHT_ARM.dO_config,)
    np.testing.assert_allclose(obs.config[PR2_RIGHT_ARM.config_slice("ee_points")],
                               ee_robot.ravel(), atol=1e-12)
    assert obs.image is None


def test_ee_velocities_match_finite_differences_of_positions():
    # One physics step per control step. The integrator is semi-implicit Euler,
    # q' = q + h qdot', so a position difference over one step is the new velocity times h, up
    # to the kinematics' curvature over the step (below 1 %).
    task = dataclasses.replace(HangerTaskConfig(), control_dt=0.002)
    env = HangerEnv([HangerCondition("c", (0.75, 0.0, -0.10))], task, render_observations=False)
    env.reset(0)
    torque = np.array([5.0, -5.0, 3.0, 4.0, 1.0, 1.0, -1.0])
    for _ in range(50):
        env.step(torque)
    before = env.ee_points()
    env.step(torque)
    velocity = env.ee_velocities()
    np.testing.assert_allclose((env.ee_points() - before) / task.control_dt, velocity,
                               rtol=0.01, atol=1e-3)
    assert np.abs(velocity).max() > 0.3


def test_ee_jacobians_match_finite_differences(nominal_env):
    nominal_env.reset(1)
    q0 = nominal_env.joint_state().position[:7] + np.array([0.1, 0.1, -0.1, 0.2, 0.3, -0.2, 0.1])
    nominal_env.set_right_arm_state(q0)
    jacobians = nominal_env.ee_jacobians()
    assert jacobians.shape == (3, 3, 7)
    eps = 1e-6
    for j in range(7):
        dq = np.zeros(7)
        dq[j] = eps
        nominal_env.set_right_arm_state(q0 + dq)
        plus = nominal_env.ee_points()
        nominal_env.set_right_arm_state(q0 - dq)
        minus = nominal_env.ee_points()
        np.testing.assert_allclose(jacobians[:, :, j], (plus - minus) / (2 * eps), atol=1e-6)


@pytest.mark.parametrize("condition", [0, 1])
def test_joint_state_lists_both_arms(nominal_env, condition):
    nominal_env.reset(condition)
    reading = nominal_env.joint_state()
    assert reading.names[:7] == PR2_RIGHT_ARM.joints
    assert all(name.startswith("l_") for name in reading.names[7:])
    assert reading.position.shape == reading.velocity.shape == reading.effort.shape == (14,)
