"""Every gps_msgs interface crosses a process boundary over the real rclpy and Fast DDS intact.

Given an echo process (echo_node.py) that republishes what it receives, when this process
publishes a fully populated message of each type, then the message it gets back equals the one
it sent, array contents included. The RunTrial action round trip returns progress feedback in
order and a sample computed from the goal. Samples with 100 camera frames at 64x64 and 240x240
arrive with every pixel intact.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.action import ActionClient
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from gps_msgs.action import RunTrial
from gps_msgs.msg import (LinearGaussianController, PolicyUpdate, PolicyWeights,
                          SampleTrajectory, TargetPose, Tensor, TrainingProgress)
from sensor_msgs.msg import Image

sys.path.insert(0, str(Path(__file__).parent))
from echo_node import trial_arrays  # noqa: E402

QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
RNG = np.random.default_rng(7)


@pytest.fixture(scope="module")
def echo_process():
    proc = subprocess.Popen([sys.executable, str(Path(__file__).parent / "echo_node.py")],
                            stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    line = proc.stdout.readline()
    assert line.strip() == "READY", f"echo process did not start: {line!r}"
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture(scope="module")
def node(echo_process):
    rclpy.init()
    node = Node("gps_msgs_transport_test")
    yield node
    node.destroy_node()
    rclpy.shutdown()


def spin_until(node, done, timeout):
    deadline = time.monotonic() + timeout
    while not done() and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
    return done()


def echo(node, msg, timeout=30.0):
    """Publish `msg` to the echo process and return what comes back."""
    name = type(msg).__name__
    received = []
    sub = node.create_subscription(type(msg), f"/gps_test/{name}/out", received.append, QOS)
    pub = node.create_publisher(type(msg), f"/gps_test/{name}/in", QOS)
    try:
        assert spin_until(node, lambda: pub.get_subscription_count() > 0
                          and sub.get_publisher_count() > 0, timeout), "echo not discovered"
        pub.publish(msg)
        assert spin_until(node, lambda: received, timeout), f"no {name} came back"
        return received[0]
    finally:
        node.destroy_subscription(sub)
        node.destroy_publisher(pub)


def image(height, width):
    msg = Image()
    msg.height, msg.width, msg.encoding, msg.step = height, width, "rgb8", 3 * width
    msg.data = RNG.integers(0, 256, (height, width, 3), dtype=np.uint8).tobytes()
    return msg


def tensor(name, shape):
    msg = Tensor()
    msg.name, msg.shape = name, list(shape)
    msg.data = RNG.standard_normal(shape).astype(np.float32).ravel()
    return msg


def linear_gaussian(T=100, dX=32, dU=7):
    msg = LinearGaussianController()
    msg.t, msg.dim_x, msg.dim_u = T, dX, dU
    msg.gains = RNG.standard_normal(T * dU * dX)
    msg.offsets = RNG.standard_normal(T * dU)
    msg.covariance_cholesky = np.tril(RNG.standard_normal((T, dU, dU))).ravel()
    return msg


def policy_weights():
    msg = PolicyWeights()
    msg.architecture = json.dumps({"kind": "visuomotor_cnn", "image_size": [64, 64]})
    msg.tensors = [tensor("conv1.weight", (64, 3, 7, 7)), tensor("conv1.bias", (64,)),
                   tensor("fc.weight", (40, 96))]
    msg.obs_mean, msg.obs_scale = RNG.standard_normal(32), RNG.uniform(0.5, 2, 32)
    msg.covariance = np.eye(7).ravel() * 0.3
    return msg


def sample(T=100, frame=(8, 8)):
    msg = SampleTrajectory()
    msg.condition, msg.iteration, msg.trial_id = 3, 2, 11
    msg.policy_version, msg.noise_seed, msg.t, msg.dt = 9, 1234, T, 0.05
    msg.state_names, msg.state_sizes = ["joint_angles", "joint_velocities"], [7, 7]
    msg.action_names = [f"j{i}" for i in range(7)]
    msg.config_names, msg.config_sizes = ["joint_angles"], [7]
    msg.dim_x, msg.dim_u, msg.dim_o = 14, 7, 7
    msg.x, msg.u = RNG.standard_normal(T * 14), RNG.standard_normal(T * 7)
    msg.noise, msg.obs_config = RNG.standard_normal(T * 7), RNG.standard_normal(T * 7)
    msg.images = [image(*frame) for _ in range(T)] if frame else []
    return msg


def target_pose():
    msg = TargetPose()
    msg.name, msg.grasp = "train_02", 1
    msg.pose.header.frame_id = "base_link"
    msg.pose.pose.position.x, msg.pose.pose.position.y = 0.61, -0.12
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = np.sin(0.1), np.cos(0.1)
    return msg


def training_progress():
    msg = TrainingProgress()
    msg.iteration, msg.phase, msg.conditions = 4, "badmm", [0, 1]
    msg.metric_names = ["cost", "kl_policy_traj", "nu_mean"]
    msg.values_by_condition = RNG.standard_normal(6)
    msg.t, msg.kl_per_step = 100, RNG.uniform(0, 1, 200)
    return msg


def policy_update():
    msg = PolicyUpdate()
    msg.version, msg.kind, msg.neural_network = 17, PolicyUpdate.KIND_NEURAL_NETWORK, policy_weights()
    msg.linear_gaussian = linear_gaussian(T=5)
    return msg


ARRAY_FIELDS = {
    "Tensor": ["data"],
    "LinearGaussianController": ["gains", "offsets", "covariance_cholesky"],
    "PolicyWeights": ["obs_mean", "obs_scale", "covariance"],
    "SampleTrajectory": ["x", "u", "noise", "obs_config"],
    "TrainingProgress": ["values_by_condition", "kl_per_step"],
}


@pytest.mark.parametrize("make", [lambda: tensor("w", (3, 4, 5)), linear_gaussian,
                                  policy_weights, policy_update, sample, target_pose,
                                  training_progress],
                         ids=["Tensor", "LinearGaussianController", "PolicyWeights",
                              "PolicyUpdate", "SampleTrajectory", "TargetPose",
                              "TrainingProgress"])
def test_every_message_crosses_processes_intact(node, make):
    sent = make()
    got = echo(node, sent)
    assert got == sent
    for field in ARRAY_FIELDS.get(type(sent).__name__, []):
        assert np.array_equal(np.asarray(getattr(got, field)), np.asarray(getattr(sent, field)))
    if isinstance(sent, PolicyUpdate):
        for a, b in zip(got.neural_network.tensors, sent.neural_network.tensors):
            assert np.array_equal(np.asarray(a.data), np.asarray(b.data))


@pytest.mark.parametrize("size", [64, 240])
def test_sample_with_100_frames_crosses_processes_intact(node, size):
    sent = sample(T=100, frame=(size, size))
    got = echo(node, sent, timeout=60.0)
    assert len(got.images) == 100
    for a, b in zip(got.images, sent.images):
        assert (a.height, a.width) == (size, size)
        assert bytes(a.data) == bytes(b.data)
    assert np.array_equal(np.asarray(got.x), np.asarray(sent.x))


def test_run_trial_action_round_trip(node):
    client = ActionClient(node, RunTrial, "/gps_test/run_trial")
    assert client.wait_for_server(timeout_sec=30.0)
    goal = RunTrial.Goal()
    goal.policy_version, goal.condition, goal.iteration, goal.trial_id = 5, 2, 1, 3
    goal.t, goal.noise_seed, goal.noise_scale = 20, 42, 1.0
    feedback = []
    future = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(f.feedback))
    assert spin_until(node, future.done, 30.0) and future.result().accepted
    result_future = future.result().get_result_async()
    assert spin_until(node, result_future.done, 30.0)
    result = result_future.result().result
    assert result.success and result.message == "ran 20 steps"
    x, u = trial_arrays(goal, 4, 2)
    s = result.sample
    assert (s.condition, s.iteration, s.trial_id, s.policy_version, s.t) == (2, 1, 3, 5, 20)
    assert np.array_equal(np.asarray(s.x).reshape(20, 4), x)
    assert np.array_equal(np.asarray(s.u).reshape(20, 2), u)
    # Feedback is progress, kept last-10 deep by the action QoS: steps arrive in order and the
    # final one reports completion.
    assert spin_until(node, lambda: feedback and feedback[-1].step == 20, 5.0)
    steps = [f.step for f in feedback]
    assert steps == sorted(set(steps)) and all(f.t == 20 for f in feedback)
    client.destroy()
