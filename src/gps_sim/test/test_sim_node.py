"""The sim node over real rclpy and Fast DDS, run as a separate process.

Given the node started with `python -m gps_sim.sim_node` on the training conditions:
- its topics carry the documented types; in lock-step mode, after a reset, 100 commands give
  exactly 100 clock ticks, joint states, images and camera infos, in order, 0.05 s of sim time
  apart, and the joint states equal the direct HangerEnv API stepped with the same torques (a
  dropped or repeated step would change them);
- a command with the wrong number of joints, a NaN or an infinity is rejected with an error on
  /rosout and zero torque for that step; a command beyond the limits is applied at the limit,
  with a warning on /rosout and a WARN on /diagnostics; an unknown condition is refused with a
  message naming the known ones; a left-arm target moves the left arm;
- in real-time mode the node steps at 20 Hz of wall time on its own, with zero torque when no
  command is fresh;
- bad parameters stop the node at start-up with a message saying what is wrong.
"""

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Log
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray

from gps_controller.layout import LEFT_ARM_JOINTS, RIGHT_ARM_JOINTS
from gps_controller.messages import image_from_msg, target_pose_msg
from gps_controller.typed_config import ConfigError
from gps_msgs.msg import TargetPose
from gps_msgs.srv import SetCondition
from gps_sim import HangerEnv
from gps_sim.conditions import AppearanceRandomisation, condition_sets, load_conditions
from gps_sim.sim_client import set_condition_request
from gps_sim.sim_node import SimNodeParams, _make_env

CONFIG = Path(__file__).resolve().parents[3] / "config" / "hanger_conditions.yaml"
TIMEOUT = 20.0
DT_NS = 50_000_000
SIZE = 64
TOPIC_TYPES = {
    "/clock": "rosgraph_msgs/msg/Clock",
    "/joint_states": "sensor_msgs/msg/JointState",
    "/head_camera/image_raw": "sensor_msgs/msg/Image",
    "/head_camera/camera_info": "sensor_msgs/msg/CameraInfo",
    "/diagnostics": "diagnostic_msgs/msg/DiagnosticArray",
    "/effort_controller/commands": "std_msgs/msg/Float64MultiArray",
    "/left_arm_target": "gps_msgs/msg/TargetPose",
}


def start_sim(log_path: Path, mode: str) -> subprocess.Popen:
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "gps_sim.sim_node", "--ros-args", "-p", f"mode:={mode}",
         "-p", f"conditions_file:={CONFIG}", "-p", "condition_set:=train",
         "-p", f"image_size:={SIZE}"],
        stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())


def stop_sim(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def nanoseconds(stamp) -> int:
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def stamp_of(msg):
    return msg.clock if isinstance(msg, Clock) else msg.header.stamp


class SimClient:
    """The test's side of the node: records everything it publishes, sends commands."""

    def __init__(self, node):
        self.node = node
        self.states, self.images, self.infos, self.clocks = [], [], [], []
        self.diagnostics, self.logs = [], []
        self.since_ns = 0
        self._subs = [
            node.create_subscription(JointState, "/joint_states", self._keep(self.states), 200),
            node.create_subscription(Image, "/head_camera/image_raw", self._keep(self.images),
                                     200),
            node.create_subscription(CameraInfo, "/head_camera/camera_info",
                                     self._keep(self.infos), 200),
            node.create_subscription(Clock, "/clock", self._keep(self.clocks), 200),
            node.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50),
            node.create_subscription(Log, "/rosout", self._on_log, 200),
        ]
        self.command_pub = node.create_publisher(Float64MultiArray,
                                                 "/effort_controller/commands", 10)
        self.target_pub = node.create_publisher(TargetPose, "/left_arm_target", 10)
        self.reset_client = node.create_client(SetCondition, "/gps_sim/set_condition")

    def _keep(self, received):
        """A callback that records messages stamped at or after `since_ns`."""
        def keep(msg):
            if nanoseconds(stamp_of(msg)) >= self.since_ns:
                received.append(msg)
        return keep

    def _on_log(self, msg):
        if msg.name == "gps_sim":
            self.logs.append(msg)

    def close(self):
        for sub in self._subs:
            self.node.destroy_subscription(sub)
        self.node.destroy_publisher(self.command_pub)
        self.node.destroy_publisher(self.target_pub)
        self.node.destroy_client(self.reset_client)

    def spin_until(self, done, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return done()

    def spin_for(self, seconds):
        self.spin_until(lambda: False, seconds)

    def wait_for_node(self):
        assert self.spin_until(lambda: all(s.get_publisher_count() > 0 for s in self._subs[:5])
                               and self.command_pub.get_subscription_count() > 0
                               and self.target_pub.get_subscription_count() > 0
                               and self.reset_client.service_is_ready()), "sim node not found"

    def clear(self):
        for received in (self.states, self.images, self.infos, self.clocks):
            received.clear()

    def set_condition(self, name, rack_offset=(0.0, 0.0, 0.0), rack_yaw_offset=0.0,
                      appearance=None):
        request = set_condition_request(name, rack_offset, rack_yaw_offset, appearance)
        future = self.reset_client.call_async(request)
        assert self.spin_until(future.done), "set_condition did not answer"
        return future.result()

    def reset(self, name, rack_offset=(0.0, 0.0, 0.0), rack_yaw_offset=0.0, appearance=None):
        """Reset and return step 0's state, keeping only what was published from then on.
        Step 0 carries the latest stamp the node has published (its clock never runs back),
        so messages published before the reset but delivered after it are told apart. Retried:
        the first reset after discovery can publish before the node has matched this process's
        subscriptions."""
        for _ in range(3):
            self.clear()
            self.since_ns = 0
            assert self.set_condition(name, rack_offset, rack_yaw_offset, appearance).success
            if self.spin_until(lambda: self.states and self.images, 3.0):
                self.spin_for(0.2)
                self.since_ns = max(nanoseconds(s.header.stamp) for s in self.states)
                for received in (self.states, self.images, self.infos, self.clocks):
                    received[:] = [m for m in received
                                   if nanoseconds(stamp_of(m)) >= self.since_ns]
                return self.states[0]
        raise AssertionError("no step-0 state after reset")

    def command(self, torque):
        self.command_pub.publish(Float64MultiArray(data=[float(v) for v in torque]))

    def lockstep(self, torques):
        """Send each command after the previous step's state and image arrived."""
        for torque in torques:
            count = len(self.states)
            self.command(torque)
            assert self.spin_until(lambda: len(self.states) > count
                                   and len(self.images) > count), f"no step after {count}"
        return self.states[-len(torques):]

    def logs_at(self, level, text):
        return [log.msg for log in self.logs if log.level == level and text in log.msg]


@pytest.fixture(scope="module")
def node():
    rclpy.init()
    node = rclpy.create_node("gps_sim_node_test")
    yield node
    node.destroy_node()
    rclpy.shutdown()


@pytest.fixture(scope="class")
def lockstep(node, tmp_path_factory):
    proc = start_sim(tmp_path_factory.mktemp("sim") / "lockstep.log", "lockstep")
    client = SimClient(node)
    try:
        client.wait_for_node()
        yield client
    finally:
        client.close()
        stop_sim(proc)


@pytest.fixture(scope="class")
def realtime(node, tmp_path_factory):
    proc = start_sim(tmp_path_factory.mktemp("sim") / "realtime.log", "realtime")
    client = SimClient(node)
    try:
        client.wait_for_node()
        yield client
    finally:
        client.close()
        stop_sim(proc)


def torque_sequence(steps):
    """Small, varied torques: every step differs, so a repeated or dropped step shows."""
    k = np.arange(steps)[:, None]
    return 2.0 * np.sin(0.2 * k + np.arange(7)[None, :])


class TestLockstep:
    def test_topics_and_service_have_the_documented_types(self, lockstep, node):
        topics = dict(node.get_topic_names_and_types())
        for name, type_name in TOPIC_TYPES.items():
            assert topics.get(name) == [type_name], name
        services = dict(node.get_service_names_and_types())
        assert services["/gps_sim/set_condition"] == ["gps_msgs/srv/SetCondition"]

    def test_100_commands_give_100_states_and_images_in_order(self, lockstep):
        start = nanoseconds(lockstep.reset("train_far_left_low_g1").header.stamp)
        torques = torque_sequence(100)
        lockstep.lockstep(torques)
        lockstep.spin_for(0.5)  # nothing more may come without a command
        assert len(lockstep.states) == len(lockstep.images) == len(lockstep.infos) == 101
        assert len(lockstep.clocks) == 101
        expected = [start + k * DT_NS for k in range(101)]
        for received in (lockstep.states, lockstep.images, lockstep.infos):
            assert [nanoseconds(m.header.stamp) for m in received] == expected
        assert [nanoseconds(m.clock) for m in lockstep.clocks] == expected

        reference = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
        reference.reset("train_far_left_low_g1")
        for torque, state in zip(torques, lockstep.states[1:]):
            reference.step(torque)
            assert np.array_equal(state.position, reference.joint_state().position)
        reference.close()

    def test_messages_carry_both_arms_and_a_calibrated_image(self, lockstep):
        state = lockstep.reset("train_near_right_low_g0")
        assert list(state.name) == list(RIGHT_ARM_JOINTS + LEFT_ARM_JOINTS)
        assert len(state.position) == len(state.velocity) == len(state.effort) == 14
        image = lockstep.images[0]
        assert (image.height, image.width, image.encoding) == (SIZE, SIZE, "rgb8")
        assert image_from_msg(image).std() > 10  # a scene, not a blank frame
        info = lockstep.infos[0]
        assert info.k[4] == pytest.approx(32 / math.tan(math.radians(65 / 2)))
        assert info.header.frame_id == image.header.frame_id

    def test_malformed_commands_give_zero_torque_and_an_error(self, lockstep):
        lockstep.reset("train_near_right_low_g0")
        lockstep.logs.clear()
        ones = [1.0] * 7
        bad = [[1.0] * 6, [1.0, math.nan, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, math.inf]]
        states = lockstep.lockstep([ones] + bad + [ones])
        efforts = [list(s.effort[:7]) for s in states]
        assert efforts == [ones, [0.0] * 7, [0.0] * 7, [0.0] * 7, ones]
        assert lockstep.spin_until(lambda: len(lockstep.logs_at(Log.ERROR, "rejected")) == 3)
        errors = lockstep.logs_at(Log.ERROR, "rejected")
        assert "6 values, expected 7" in errors[0]
        assert "r_shoulder_lift_joint (nan)" in errors[1]
        assert "r_wrist_roll_joint (inf)" in errors[2]

    def test_commands_beyond_the_limits_are_clipped_and_reported(self, lockstep):
        lockstep.reset("train_near_right_low_g0")
        lockstep.diagnostics.clear()
        assert lockstep.spin_until(lambda: lockstep.diagnostics, 5.0)  # a fresh report window
        state, = lockstep.lockstep([[50.0, 0, 0, 0, 0, 0, -25.0]])
        assert list(state.effort[:7]) == [30.0, 0, 0, 0, 0, 0, -10.0]
        report = "r_shoulder_pan_joint 50 -> 30, r_wrist_roll_joint -25 -> -10"
        assert lockstep.spin_until(lambda: lockstep.logs_at(Log.WARN, report), 5.0)
        assert lockstep.spin_until(lambda: any(
            d.status[0].level == DiagnosticStatus.WARN and report in d.status[0].message
            for d in lockstep.diagnostics), 5.0)

    def test_a_rack_offset_moves_the_episode_s_rack_as_the_direct_api_does(self, lockstep):
        offset = (0.02, -0.03, 0.015)
        state = lockstep.reset("train_far_left_low_g1", offset, -0.12)
        reference = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
        reference.reset("train_far_left_low_g1", rack_offset=offset, rack_yaw_offset=-0.12)
        assert np.array_equal(state.position, reference.joint_state().position)
        moved = lockstep.lockstep([[0.0] * 7] * 3)[-1]
        for _ in range(3):
            reference.step(np.zeros(7))
        assert np.array_equal(moved.position, reference.joint_state().position)
        reference.close()
        response = lockstep.set_condition("train_far_left_low_g1", (0.0, math.nan, 0.0))
        assert not response.success and "rack_offset must be 3 finite numbers" in response.message
        response = lockstep.set_condition("train_far_left_low_g1", rack_yaw_offset=math.inf)
        assert not response.success
        assert "rack_yaw_offset must be a finite number" in response.message

    def test_a_random_look_changes_the_camera_image_and_nothing_else(self, lockstep):
        """set_condition with random_look draws the episode's colours and lights (the state is
        the plain reset's); the next plain reset shows the condition's own look again; a bad
        range is refused, naming the field."""
        looks = AppearanceRandomisation(colour_jitter=0.4, light_scale=(0.4, 1.5))
        plain = lockstep.reset("train_near_left_high_g0")
        plain_image = image_from_msg(lockstep.images[0]).astype(int)
        varied = lockstep.reset("train_near_left_high_g0", appearance=looks)
        varied_image = image_from_msg(lockstep.images[0]).astype(int)
        assert np.array_equal(varied.position, plain.position)
        assert np.abs(varied_image - plain_image).mean() > 5
        lockstep.reset("train_near_left_high_g0")
        assert np.array_equal(image_from_msg(lockstep.images[0]).astype(int), plain_image)
        request = set_condition_request("train_near_left_high_g0", appearance=looks)
        request.light_scale = [1.5, 0.4]
        future = lockstep.reset_client.call_async(request)
        assert lockstep.spin_until(future.done)
        assert not future.result().success and "light_scale" in future.result().message

    def test_an_unknown_condition_is_refused_naming_the_known_ones(self, lockstep):
        response = lockstep.set_condition("train_on_the_moon")
        assert not response.success
        assert "'train_on_the_moon'" in response.message
        assert "train_near_right_low_g0" in response.message
        assert lockstep.reset("train_near_left_high_g0").name  # still serving

    def test_a_left_arm_target_moves_the_left_arm(self, lockstep):
        start = np.array(lockstep.reset("train_near_right_low_g0").position[7:])
        still = lockstep.lockstep([[0.0] * 7] * 5)[-1]
        assert np.abs(np.array(still.position[7:]) - start).max() < 1e-3
        lockstep.target_pub.publish(target_pose_msg("moved", (0.69, -0.02, -0.15), 0.0, 0,
                                                    frame_id="torso_lift_link"))
        lockstep.spin_for(0.3)
        moved = lockstep.lockstep([[0.0] * 7] * 20)[-1]
        assert np.abs(np.array(moved.position[7:]) - start).max() > 0.01

    def test_a_bad_left_arm_target_is_ignored_with_an_error(self, lockstep):
        lockstep.reset("train_near_right_low_g0")
        lockstep.target_pub.publish(target_pose_msg("elsewhere", (0.7, 0, -0.1), 0.0, 0,
                                                    frame_id="base_link"))
        assert lockstep.spin_until(lambda: lockstep.logs_at(Log.ERROR, "'elsewhere'"), 5.0)
        assert len(lockstep.lockstep([[0.0] * 7])) == 1  # still stepping


class TestRealtime:
    def test_steps_at_20_hz_of_wall_time_with_zero_torque_without_commands(self, realtime):
        realtime.spin_until(lambda: realtime.states)
        realtime.clear()
        realtime.spin_for(2.0)
        count = len(realtime.states)
        assert 30 <= count <= 50, f"{count} states in 2 s"
        stamps = [nanoseconds(s.header.stamp) for s in realtime.states]
        assert np.all(np.diff(stamps) == DT_NS)
        assert len(realtime.images) == pytest.approx(count, abs=2)
        assert all(list(s.effort[:7]) == [0.0] * 7 for s in realtime.states)

    def test_a_command_is_held_for_one_period_then_zero(self, realtime):
        realtime.spin_until(lambda: realtime.states)
        realtime.clear()
        realtime.command([2.0] * 7)
        realtime.spin_for(0.5)
        applied = [list(s.effort[:7]) == [2.0] * 7 for s in realtime.states]
        assert 1 <= sum(applied) <= 2, applied
        assert not applied[-1]


@pytest.mark.parametrize("params, words", [
    (["mode:=fast"], "mode is 'fast'; expected one of ['lockstep', 'realtime']"),
    ([f"conditions_file:={CONFIG}", "initial_condition:=nowhere"],
     "unknown condition 'nowhere'; known: ['train_near_right_low_g0'"),
    (["conditions_file:=/no/such.yaml"], "conditions file not found: /no/such.yaml"),
])
def test_bad_parameters_stop_the_node_with_a_clear_message(params, words):
    args = [arg for param in params for arg in ("-p", param)]
    done = subprocess.run([sys.executable, "-m", "gps_sim.sim_node", "--ros-args", *args],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert done.returncode == 1
    assert words in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_the_bringup_parameter_file_starts_the_sim(tmp_path):
    """config/hanger.yaml, as launch/hanger.launch.py passes it, gives a running sim (here in
    realtime mode, which publishes without a controller)."""
    config_dir = Path(__file__).resolve().parents[3] / "config"
    section = yaml.safe_load((config_dir / "hanger.yaml").read_text())["gps_sim"]
    params = dict(section["ros__parameters"], mode="realtime")
    params["conditions_file"] = str(config_dir / params["conditions_file"])
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump({"gps_sim": {"ros__parameters": params}}))
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("bringup_params_probe", context=context)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)
    log = (tmp_path / "sim.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "gps_sim.sim_node", "--ros-args",
                             "--params-file", str(params_file)],
                            stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        states = []
        node.create_subscription(JointState, "/joint_states", states.append, 10)
        deadline = time.monotonic() + TIMEOUT
        while len(states) < 3 and time.monotonic() < deadline and proc.poll() is None:
            executor.spin_once(timeout_sec=0.1)
        assert len(states) >= 3, (tmp_path / "sim.log").read_text()
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_sim(proc)


def test_condition_set_all_offers_every_set_of_the_file():
    env = _make_env(SimNodeParams(conditions_file=str(CONFIG), condition_set="all"))
    expected = [c.name for name in condition_sets(CONFIG)
                for c in load_conditions(CONFIG, name)]
    assert [c.name for c in env.conditions] == expected
    assert {"train", "spatial_test", "validation"} <= set(condition_sets(CONFIG))
    env.close()


def test_a_condition_name_in_two_offered_sets_is_refused(tmp_path):
    conditions = tmp_path / "conditions.yaml"
    conditions.write_text(yaml.safe_dump({
        "train": [{"name": "a", "rack_position": [0.75, 0.0, -0.10], "grasp": 0}],
        "validation": [{"name": "a", "rack_position": [0.72, 0.0, -0.10], "grasp": 1}]}))
    with pytest.raises(ConfigError, match=r"condition names \['a'\] appear in more than one"):
        _make_env(SimNodeParams(conditions_file=str(conditions), condition_set="all"))
