"""The sim node's ROS-free parts: effort command checks, the stepping session and the message
conversions. The node itself over real DDS is tested in test_sim_node.py."""

import math

import numpy as np
import pytest

from gps_controller.layout import LEFT_ARM_JOINTS, RIGHT_ARM_EFFORT_LIMITS, RIGHT_ARM_JOINTS
from gps_controller.message_validation import MessageError
from gps_controller.messages import target_pose_msg
from gps_sim import HangerEnv
from gps_sim.effort_command import CommandError, check_effort_command
from gps_sim.sim_messages import (camera_info_msg, head_camera_fovy, joint_state_msg,
                                  rack_pose_from_msg, to_time)
from gps_sim.sim_session import SimSession

DT = 0.05


@pytest.fixture
def session(conditions_file):
    env = HangerEnv.from_yaml(conditions_file, "train", render_observations=False)
    yield SimSession(env, seed=0, image_size=32)
    env.close()


# Effort commands ------------------------------------------------------------------------------

def test_command_within_limits_is_applied_unchanged():
    command = check_effort_command([1.0, -2.0, 3.0, 0.0, 0.5, -9.9, 9.9])
    assert command.torque.tolist() == [1.0, -2.0, 3.0, 0.0, 0.5, -9.9, 9.9]
    assert not command.any_clipped


def test_command_beyond_the_limits_is_clipped_and_reported():
    # Limits: 30 N m on the first five joints, 10 N m on the wrist flex and roll.
    command = check_effort_command([50.0, 0.0, 0.0, 0.0, 0.0, 0.0, -12.0])
    assert command.torque.tolist() == [30.0, 0.0, 0.0, 0.0, 0.0, 0.0, -10.0]
    assert command.clipped.tolist() == [True, False, False, False, False, False, True]
    assert command.clip_report() == "r_shoulder_pan_joint 50 -> 30, r_wrist_roll_joint -12 -> -10"


@pytest.mark.parametrize("values, words", [
    ([0.0] * 6, "has 6 values, expected 7"),
    ([0.0] * 8, "has 8 values, expected 7"),
    ([0.0, math.nan, 0, 0, 0, 0, 0], "not finite at r_shoulder_lift_joint (nan)"),
    ([0, 0, 0, 0, 0, 0, -math.inf], "not finite at r_wrist_roll_joint (-inf)"),
])
def test_malformed_commands_are_rejected_with_the_reason(values, words):
    with pytest.raises(CommandError) as err:
        check_effort_command(values)
    assert words in str(err.value)


# Session ---------------------------------------------------------------------------------------

def test_steps_advance_the_clock_by_control_dt_and_it_keeps_running_across_resets(session):
    assert session.reset("train_near_right_low_g0").stamp == 0.0
    stamps = [session.step().stamp for _ in range(3)]
    assert stamps == pytest.approx([DT, 2 * DT, 3 * DT])
    after = session.reset("train_far_left_low_g1")
    assert (after.step_index, after.stamp) == (0, pytest.approx(4 * DT))
    assert session.step().stamp == pytest.approx(5 * DT)


def test_outputs_carry_both_arms_and_an_image_of_the_requested_size(session):
    out = session.reset(0)
    assert out.joints.names == RIGHT_ARM_JOINTS + LEFT_ARM_JOINTS
    assert out.image.shape == (32, 32, 3) and out.image.dtype == np.uint8
    assert out.condition == "train_near_right_low_g0"


def test_a_rejected_command_gives_the_same_step_as_zero_torque(session, conditions_file):
    session.reset(0)
    command, rejected = session.check([math.nan] * 7)
    assert "not finite" in rejected and session.counts.rejected == 1
    got = session.step(command)
    reference = HangerEnv.from_yaml(conditions_file, "train", render_observations=False)
    reference.reset(0)
    reference.step(np.zeros(7))
    assert np.array_equal(got.joints.position, reference.joint_state().position)
    assert np.all(got.joints.effort[:7] == 0.0)
    reference.close()


def test_clipped_commands_apply_the_limit_and_are_counted(session):
    session.reset(0)
    command, rejected = session.check([100.0] * 7)
    out = session.step(command)
    assert rejected == "" and session.counts.clipped == 1
    assert out.joints.effort[:7] == pytest.approx(RIGHT_ARM_EFFORT_LIMITS)


def test_an_unknown_condition_names_the_known_ones(session):
    with pytest.raises(ValueError, match="unknown condition 'nope'.*train_near_right_low_g0"):
        session.reset("nope")


def test_a_diverged_simulation_restarts_the_condition(session, monkeypatch):
    session.reset("train_far_right_high_g1")
    session.step()

    def diverge(torque):
        raise RuntimeError("simulation diverged (non-finite joint state)")

    monkeypatch.setattr(session.env, "step", diverge)
    out = session.step()
    assert out.step_index == 0 and out.condition == "train_far_right_high_g1"
    assert "diverged" in out.restarted and session.counts.restarts == 1
    assert out.stamp == pytest.approx(2 * DT)


# Messages --------------------------------------------------------------------------------------

def test_camera_info_rays_at_the_image_edge_span_half_the_field_of_view():
    fovy = head_camera_fovy()
    assert fovy == 65.0
    info = camera_info_msg(64, fovy, 1.25)
    fx, cx, fy, cy = info.k[0], info.k[2], info.k[4], info.k[5]
    assert (cx, cy) == (32.0, 32.0) and fx == fy
    assert math.degrees(2 * math.atan(cy / fy)) == pytest.approx(65.0)
    assert (info.width, info.height, info.p[0], info.p[6]) == (64, 64, fx, cy)
    assert (info.header.stamp.sec, info.header.stamp.nanosec) == (1, 250_000_000)


def test_time_rounds_to_the_nanosecond():
    stamp = to_time(0.1 + 0.2)
    assert (stamp.sec, stamp.nanosec) == (0, 300_000_000)


def test_joint_state_message_carries_position_velocity_and_effort(session):
    reading = session.reset(0).joints
    msg = joint_state_msg(reading, 0.05)
    assert list(msg.name) == list(RIGHT_ARM_JOINTS + LEFT_ARM_JOINTS)
    assert np.array_equal(msg.position, reading.position)
    assert len(msg.velocity) == len(msg.effort) == 14
    assert msg.header.stamp.nanosec == 50_000_000


def test_target_pose_in_the_robot_frame_gives_the_rack_pose():
    msg = target_pose_msg("moved", (0.7, 0.05, -0.1), 0.12, 0, frame_id="torso_lift_link")
    position, yaw = rack_pose_from_msg(msg)
    assert position.tolist() == pytest.approx([0.7, 0.05, -0.1])
    assert yaw == pytest.approx(0.12)


def test_target_pose_in_another_frame_or_tilted_is_refused():
    with pytest.raises(MessageError, match="frame_id.*torso_lift_link"):
        rack_pose_from_msg(target_pose_msg("a", (0.7, 0.0, -0.1), 0.0, 0, frame_id="base_link"))
    tilted = target_pose_msg("b", (0.7, 0.0, -0.1), 0.0, 0, frame_id="")
    q = tilted.pose.pose.orientation
    q.x, q.w = math.sin(0.1), math.cos(0.1)
    with pytest.raises(MessageError, match="only a rotation about z"):
        rack_pose_from_msg(tilted)
    with pytest.raises(MessageError, match="not finite"):
        rack_pose_from_msg(target_pose_msg("c", (math.nan, 0.0, 0.0), 0.0, 0, frame_id=""))
