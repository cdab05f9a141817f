"""The left arm holds the rack at the condition's pose."""

import numpy as np

from gps_sim.conditions import sample_rack_pose

POSITION_TOLERANCE = 0.003
"""m between the rack bar's measured centre and the condition's."""
YAW_TOLERANCE = np.deg2rad(1.0)


def test_rack_sits_at_every_training_pose_and_stays_there(train_env):
    for index, condition in enumerate(train_env.conditions):
        train_env.reset(index)
        for _ in range(20):
            train_env.step(np.zeros(7))
        centre, yaw = train_env.rack_pose()
        assert np.linalg.norm(centre - condition.rack_position) < POSITION_TOLERANCE, condition.name
        assert abs(yaw - condition.rack_yaw) < YAW_TOLERANCE, condition.name


def test_move_rack_drives_the_left_arm_to_a_new_pose(nominal_env):
    nominal_env.reset(0)
    goal, goal_yaw = np.array([0.70, 0.06, -0.15]), 0.1
    nominal_env.move_rack(goal, goal_yaw)
    for _ in range(40):
        nominal_env.step(np.zeros(7))
    centre, yaw = nominal_env.rack_pose()
    assert np.linalg.norm(centre - goal) < POSITION_TOLERANCE
    assert abs(yaw - goal_yaw) < YAW_TOLERANCE


def test_rack_offset_moves_this_episode_s_rack_and_its_targets(nominal_env):
    nominal_env.reset(0)
    targets = nominal_env.target_points()
    offset = np.array([0.03, -0.04, 0.025])
    nominal_env.reset(0, rack_offset=offset)
    centre, yaw = nominal_env.rack_pose()
    np.testing.assert_allclose(centre, np.add((0.75, 0.0, -0.10), offset), atol=POSITION_TOLERANCE)
    assert abs(yaw) < YAW_TOLERANCE
    np.testing.assert_allclose(nominal_env.target_points(), targets + offset,
                               atol=POSITION_TOLERANCE)
    assert nominal_env.condition.name == "nominal_g0"
    nominal_env.reset(0)
    np.testing.assert_allclose(nominal_env.target_points(), targets, atol=1e-12)


def test_rack_yaw_offset_turns_this_episode_s_rack_and_its_targets_about_z(nominal_env):
    nominal_env.reset(0)
    centre0 = nominal_env.rack_pose()[0]
    targets = nominal_env.target_points()
    nominal_env.reset(0, rack_offset=(0.01, 0.02, 0.0), rack_yaw_offset=0.15)
    centre, yaw = nominal_env.rack_pose()
    assert abs(yaw - 0.15) < YAW_TOLERANCE
    c, s = np.cos(0.15), np.sin(0.15)
    turned = (targets - centre0) @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
    np.testing.assert_allclose(nominal_env.target_points(), centre + turned,
                               atol=POSITION_TOLERANCE)
    np.testing.assert_allclose(centre, centre0 + (0.01, 0.02, 0.0), atol=POSITION_TOLERANCE)


def test_targets_are_the_rack_target_sites(nominal_env):
    nominal_env.reset(0)
    robot = nominal_env._rt
    expected = (nominal_env._data.site_xpos[robot.target_sites] - robot.robot_pos) @ robot.robot_rot
    np.testing.assert_allclose(nominal_env.target_points(), expected, atol=1e-12)


def test_random_rack_poses_stay_in_the_configured_ranges_and_are_reachable(nominal_env):
    task = nominal_env.task
    rng = np.random.default_rng(0)
    nominal_env.reset(0)
    for _ in range(5):
        position, yaw = sample_rack_pose(task, rng)
        offset = np.abs(np.asarray(position) - task.rack_nominal_position)
        assert np.all(offset <= np.asarray(task.rack_position_range))
        assert abs(yaw) <= task.rack_yaw_range
        nominal_env.move_rack(position, yaw)
