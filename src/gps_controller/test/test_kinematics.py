"""ArmKinematics (gps_controller.kinematics) from the robot description alone gives the same
end-effector points and velocities as the simulator (gps_sim.env.HangerEnv) for any arm state and
both grasps; the velocities are the time derivative of the points along qdot; a bad description
or input is refused with a KinematicsError saying what is wrong."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gps_controller.kinematics import ArmKinematics, KinematicsError  # noqa: E402
from gps_controller.layout import RIGHT_ARM_JOINTS  # noqa: E402
from gps_sim.env import TOOL_BODY  # noqa: E402
from gps_sim.scene import MODEL_PATH  # noqa: E402

BASE = "torso_lift_link"


def random_arm_states(env, rng, n):
    """n (q, qdot) around the condition's start pose, spread over a good part of joint space."""
    q0 = env.joint_state().position[:7]
    return [(q0 + rng.uniform(-0.6, 0.6, 7), rng.normal(0.0, 1.0, 7)) for _ in range(n)]


@pytest.mark.parametrize("grasp", [0, 1])
def test_points_and_velocities_equal_the_simulator(kinematics, env, grasp):
    rng = np.random.default_rng(grasp)
    env.reset(grasp)
    tool_points = env.ee_points_in_tool()
    for q, qdot in random_arm_states(env, rng, 6):
        env.set_right_arm_state(q, qdot)
        reading = env.joint_state()   # what the controller receives on /joint_states
        points, velocities = kinematics.points(reading.position[:7], reading.velocity[:7],
                                               tool_points)
        np.testing.assert_allclose(points, env.ee_points(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(velocities, env.ee_velocities(), rtol=0, atol=1e-12)
        assert np.abs(velocities).max() > 1e-3   # a moving arm, not a trivial zero


def test_the_two_grasps_hold_the_hanger_differently(env):
    env.reset(0)
    g0 = env.ee_points_in_tool()
    env.reset(1)
    g1 = env.ee_points_in_tool()
    assert np.abs(g0 - g1).max() > 0.05  # so the grasp test above checks two geometries


@pytest.mark.parametrize("grasp", [0, 1])
def test_velocities_are_the_derivative_of_the_points_along_qdot(kinematics, env, grasp):
    rng = np.random.default_rng(10 + grasp)
    env.reset(grasp)
    tool_points = env.ee_points_in_tool()
    h = 1e-6
    for q, qdot in random_arm_states(env, rng, 4):
        _, velocities = kinematics.points(q, qdot, tool_points)
        ahead, _ = kinematics.points(q + h * qdot, qdot, tool_points)
        behind, _ = kinematics.points(q - h * qdot, qdot, tool_points)
        np.testing.assert_allclose(velocities, (ahead - behind) / (2 * h), rtol=0, atol=1e-7)


def test_points_in_any_number_and_the_tool_origin(kinematics, env):
    env.reset(0)
    q, qdot = env.joint_state().position[:7], env.joint_state().velocity[:7]
    tool_points = np.vstack([np.zeros(3), env.ee_points_in_tool()])
    points, _ = kinematics.points(q, qdot, tool_points)
    assert points.shape == (4, 3)
    np.testing.assert_allclose(points[1:], env.ee_points(), atol=1e-12)
    one, _ = kinematics.points(q, qdot, tool_points[:1])
    np.testing.assert_allclose(one, points[:1], atol=1e-15)


def test_a_missing_file_is_named(tmp_path):
    missing = tmp_path / "no_robot.xml"
    with pytest.raises(KinematicsError, match="no_robot.xml.*does not exist"):
        ArmKinematics(missing, RIGHT_ARM_JOINTS, BASE, TOOL_BODY)


def test_an_unloadable_file_is_named(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<mujoco><worldbody><body name='a'>")
    with pytest.raises(KinematicsError, match="cannot load robot description.*broken.xml"):
        ArmKinematics(broken, RIGHT_ARM_JOINTS, BASE, TOOL_BODY)


@pytest.mark.parametrize("joints, base, tool, words", [
    (RIGHT_ARM_JOINTS[:6] + ("r_elbow_joint_x",), BASE, TOOL_BODY, "joint named 'r_elbow_joint_x'"),
    (RIGHT_ARM_JOINTS, "torso", TOOL_BODY, "body named 'torso'"),
    (RIGHT_ARM_JOINTS, BASE, "r_gripper", "body named 'r_gripper'"),
])
def test_unknown_joints_and_bodies_are_named(joints, base, tool, words):
    with pytest.raises(KinematicsError, match=words):
        ArmKinematics(MODEL_PATH, joints, base, tool)


@pytest.mark.parametrize("q, qdot, points, words", [
    (np.zeros(6), np.zeros(7), np.zeros((3, 3)), r"shape \(7,\)"),
    (np.zeros(7), np.zeros((7, 1)), np.zeros((3, 3)), r"shape \(7,\)"),
    (np.zeros(7), np.zeros(7), np.zeros(9), "n x 3"),
    (np.zeros(7), np.zeros(7), np.zeros((3, 2)), "n x 3"),
    (np.r_[np.nan, np.zeros(6)], np.zeros(7), np.zeros((3, 3)), "finite"),
    (np.zeros(7), np.r_[np.zeros(6), np.inf], np.zeros((3, 3)), "finite"),
    (np.zeros(7), np.zeros(7), np.array([[0, 0, np.nan]] * 3), "finite"),
])
def test_malformed_inputs_are_refused(kinematics, q, qdot, points, words):
    with pytest.raises(KinematicsError, match=words):
        kinematics.points(q, qdot, points)
