"""The controller node over real rclpy and Fast DDS: the sim node and the controller node run as
separate processes (`python -m ...`), this test talks to both like the trainer does
(gps_controller.controller_client, gps_sim.sim_client) and records every message they publish.

Lock-step (sim and controller in lock-step mode, 64x64 images):
- a trial's sample equals, step by step, the joint states and images the sim published: T + 1
  sim states for T commands, none dropped or repeated, each command the one the sim applied;
  the recorded state and final state equal HangerEnv's state built from the published joints;
- malformed policy updates are rejected with an error on /rosout naming the field, and the
  controller keeps its policy and its loop; trials it cannot run are refused with a message;
- a trial whose goal answer counts as lost comes back by the goal's id, run once; a goal id the
  controller never received is answered as unknown (the client then sends the goal again);
- a CNN policy runs and the node publishes its feature points each step;
- the emergency stop aborts a running trial with zero torque, refuses trials until released;
- a non-finite action gives zero torque and an aborted trial.
Realtime (sim and controller in realtime mode): when the sim dies, the controller commands zero
torque within one control period of the joint states going stale (older than one period plus
stale_tolerance_s; the watchdog looks five times a period) and the trial comes back aborted as
stale. Every command the controller published in this module is within the effort limits.
"""

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import rclpy
import torch
from action_msgs.msg import GoalStatus
from rclpy.action.client import ClientGoalHandle
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rcl_interfaces.msg import Log
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64MultiArray
from unique_identifier_msgs.msg import UUID

from gps_controller.controller_client import ControllerClient, TrialFailed, TrialRequest
from gps_controller.layout import PR2_RIGHT_ARM, RIGHT_ARM_EFFORT_LIMITS
from gps_controller.messages import (image_from_msg, linear_gaussian_to_msg,
                                     network_policy_to_msg, policy_update_msg)
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import CPU_CNN, FullStateMLP, FullStateMLPConfig, \
    VisuomotorCNN
from gps_msgs.action import RunTrial
from gps_sim import HangerEnv
from gps_sim.scene import MODEL_PATH
from gps_sim.sim_client import SimClient

CONFIG = Path(__file__).resolve().parents[3] / "config" / "hanger_conditions.yaml"
L = PR2_RIGHT_ARM
LIMITS = RIGHT_ARM_EFFORT_LIMITS
SIZE = 64
PERIOD = 0.05
DT_NS = 50_000_000
STALE_TOLERANCE = 0.02
READY_TIMEOUT = 90.0
TRIAL_TIMEOUT = 90.0
CONTROLLER = "/gps_controller"
ROSOUT_QOS = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)


def stamp_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class Recorder:
    """Everything the nodes publish that the tests judge, with the time it arrived here."""

    def __init__(self, node):
        self.node = node
        self.states, self.images, self.commands, self.points, self.logs = [], [], [], [], []
        node.create_subscription(JointState, "/joint_states", self._keep(self.states), 1000)
        node.create_subscription(Image, "/head_camera/image_raw", self._keep(self.images), 1000)
        node.create_subscription(Float64MultiArray, "/effort_controller/commands",
                                 self._on_command, 1000)
        node.create_subscription(Float32MultiArray, f"{CONTROLLER}/feature_points",
                                 self._on_points, 1000)
        # /rosout's writers keep their last lines (transient local, 10 s lifespan): a reader of
        # the same durability also gets what a node logged before the two matched, such as a
        # new controller's word on the first policy it is sent.
        node.create_subscription(Log, "/rosout", self._on_log, ROSOUT_QOS)

    # Arrival times are the middleware's reception times (s, system clock), not the callbacks':
    # a busy executor takes one message per topic per round, so callback times can put a joint
    # state that arrived first after a command that arrived later.
    @staticmethod
    def _keep(received):
        return lambda msg, info: received.append((_arrival(info), stamp_ns(msg.header.stamp),
                                                  msg))

    def _on_command(self, msg, info):
        self.commands.append((_arrival(info), np.array(msg.data, float)))

    def _on_points(self, msg):
        self.points.append(np.array(msg.data, np.float32))

    def _on_log(self, msg):
        if msg.name == "gps_controller":
            self.logs.append(msg)

    def since(self, received, start_ns):
        return [msg for _, stamp, msg in received if stamp >= start_ns]

    def log_lines(self, level, text, start=0):
        return [log.msg for log in self.logs[start:] if log.level == level and text in log.msg]


def _arrival(info) -> float:
    return info["received_timestamp"] * 1e-9


def wait_until(done, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return
        time.sleep(0.02)
    assert done(), what


@pytest.fixture(scope="module")
def ros():
    """A ROS context and node of the test's own, spun by an executor in a background thread,
    with the recorder, the controller and sim clients and the emergency-stop publisher."""
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("controller_node_test", context=context)
    ros = type("Ros", (), {})()     # every entity made before the executor spins the node
    ros.node = node
    ros.graph = Recorder(node)
    ros.controller = ControllerClient(node, CONTROLLER)
    # waits 0 s for a goal's answer: every trial takes the lost-answer path
    ros.impatient = ControllerClient(node, CONTROLLER, goal_answer_s=0.0)
    ros.sim = SimClient(node)
    ros.estop = node.create_publisher(Bool, f"{CONTROLLER}/emergency_stop", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield ros
    finally:
        executor.shutdown()
        thread.join(timeout=10)
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.fixture(scope="module")
def env():
    """The training conditions, for the geometry of a trial and the expected states."""
    env = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
    yield env
    env.close()


def settled_count(received, quiet=0.5, timeout=10.0) -> int:
    """len(received) once nothing has arrived for `quiet` s: what earlier trials published may
    still be on its way after their results (another DDS stream), more so on a loaded machine."""
    deadline = time.monotonic() + timeout
    count, since = len(received), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        if len(received) != count:
            count, since = len(received), time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return count


def start_stack(node_processes, ros, mode):
    sim = node_processes("gps_sim.sim_node", f"sim_{mode}", mode=mode,
                         conditions_file=CONFIG, condition_set="train", image_size=SIZE)
    controller = node_processes("gps_controller.controller_node", f"controller_{mode}",
                                mode=mode, robot_description=MODEL_PATH,
                                stale_tolerance_s=STALE_TOLERANCE)
    node = ros.node

    def ready():
        for process in (sim, controller):
            assert process.running, f"{process.module} died:\n{process.log_text()}"
        return (node.count_subscribers("/joint_states") >= 2
                and node.count_subscribers("/head_camera/image_raw") >= 2
                and node.count_subscribers("/effort_controller/commands") >= 2
                and node.count_publishers("/effort_controller/commands") >= 1
                and ros.controller.update_pub.get_subscription_count() >= 1
                and ros.estop.get_subscription_count() >= 1
                and ros.sim.reset_client.service_is_ready()
                and ros.controller.trials.server_is_ready())

    wait_until(ready, READY_TIMEOUT, "the sim and controller nodes did not come up")
    return sim, controller


def warm_up(ros, env, version, timeout=60.0):
    """Run short trials until one succeeds and its commands reach this test's recorder. The test
    sees every endpoint, but Fast DDS may not yet have matched the sim's and the controller's
    endpoints with each other, nor the controller's command writer with the recorder: a command
    sent before then arrives only with the next heartbeat, seconds later, or (to the recorder)
    not at all, and a lock-step trial times out; a realtime trial has no joint state yet and
    stops at once."""
    name = env.conditions[0].name
    deadline = time.monotonic() + timeout
    failures = []
    while time.monotonic() < deadline:
        try:
            stamp = ros.sim.reset(name)
            n_commands = len(ros.graph.commands)
            ros.controller.run_trial(request(env, 0, version, 3, start_stamp=stamp),
                                     TRIAL_TIMEOUT)
        except TrialFailed as exc:
            failures.append(str(exc))
            time.sleep(0.5)
            continue
        if settled_count(ros.graph.commands, timeout=5.0) >= n_commands + 3:
            return failures
        failures.append("the trial's commands did not reach the recorder")
    raise AssertionError(f"no warm-up trial succeeded within {timeout} s: {failures}")


class Versions:
    """Policy versions handed out in increasing order (the node refuses any other order)."""

    def __init__(self):
        self.last = 0

    def next(self):
        self.last += 1
        return self.last


def push(ros, update, timeout=30.0):
    """Publish a policy update and return the controller's /rosout line about it."""
    start = len(ros.graph.logs)
    ready = f"policy version {update.version} ("
    rejected = f"rejected policy update version {update.version}:"
    ros.controller.push(update)
    lines = lambda: (ros.graph.log_lines(Log.INFO, ready, start)  # noqa: E731
                     + ros.graph.log_lines(Log.ERROR, rejected, start))
    wait_until(lines, timeout, f"no word from the controller on policy version {update.version}")
    return lines()[0]


def lg_update(version, condition, T, k=None, K=None, chol_scale=0.3):
    """A linear-Gaussian controller update: u = K x + k + chol_scale * eps."""
    K = np.zeros((T, L.dU, L.dX)) if K is None else K
    if k is None:
        steps = np.arange(T)[:, None]
        k = 3.0 * np.sin(0.3 * steps + np.arange(L.dU)[None, :])   # every step differs
    chol = np.tile(chol_scale * np.eye(L.dU), (T, 1, 1))
    return policy_update_msg(version, linear_gaussian=linear_gaussian_to_msg(K, k, chol),
                             condition=condition)


def request(env, condition, version, T, **kw):
    env.reset(condition)
    return TrialRequest(policy_version=version, condition=condition, T=T,
                        ee_points_tool=env.ee_points_in_tool(), ee_targets=env.target_points(),
                        **kw)


def env_state(env, condition, joint_state):
    """HangerEnv's full state with the right arm placed at a published joint state."""
    env.reset(condition)
    env.set_right_arm_state(np.array(joint_state.position[:7]),
                            np.array(joint_state.velocity[:7]))
    return env.state()


@pytest.fixture(scope="class")
def lockstep(node_processes, ros, env):
    start_stack(node_processes, ros, "lockstep")
    stack = type("Stack", (), {})()
    stack.versions = Versions()
    stack.condition = 0
    stack.name = env.conditions[0].name
    # a warm-up trial: the whole loop works before the tests judge it
    version = stack.versions.next()
    assert "ready" in push(ros, lg_update(version, 0, 200))
    warm_up(ros, env, version)
    yield stack


class TestLockstep:
    def test_a_readiness_probe_is_answered_and_moves_nothing(self, lockstep, ros):
        graph = ros.graph
        n_commands, start = settled_count(graph.commands), len(graph.logs)
        ros.controller.wait_until_ready(10.0)
        time.sleep(0.3)
        assert len(graph.commands) == n_commands
        assert not graph.log_lines(Log.ERROR, "", start)

    def test_a_trial_records_exactly_what_the_sim_published(self, lockstep, ros, env):
        T = 30
        graph = ros.graph
        k = np.zeros((T, L.dU))
        k[:] = 3.0 * np.sin(0.3 * np.arange(T)[:, None] + np.arange(L.dU)[None, :])
        k[::4, 0] = 45.0   # beyond the 30 N m limit: these steps are clipped
        version = lockstep.versions.next()
        assert "ready" in push(ros, lg_update(version, 0, 60, k=np.vstack([k, k])))
        stamp = ros.sim.reset(lockstep.name)
        start = stamp_ns(stamp)
        n_commands = len(graph.commands)
        record, final_state = ros.controller.run_trial(
            request(env, 0, version, T, noise_seed=5, record_images=True, start_stamp=stamp,
                    trial_id=11), TRIAL_TIMEOUT)
        time.sleep(0.5)   # anything late arrives; in lock-step nothing more may come

        states = graph.since(graph.states, start)
        images = graph.since(graph.images, start)
        commands = [c for _, c in graph.commands[n_commands:]]
        assert [stamp_ns(s.header.stamp) for s in states] == [start + i * DT_NS
                                                              for i in range(T + 1)]
        assert [stamp_ns(i.header.stamp) for i in images] == [start + i * DT_NS
                                                              for i in range(T + 1)]
        assert len(commands) == T
        assert not record.aborted and record.X.shape == (T, L.dX)
        assert (record.policy_version, record.trial_id) == (version, 11)

        published_q = np.array([s.position[:7] for s in states])
        published_qdot = np.array([s.velocity[:7] for s in states])
        np.testing.assert_array_equal(record.X[:, :7], published_q[:T])
        np.testing.assert_array_equal(record.X[:, 7:14], published_qdot[:T])
        assert record.images.shape == (T, SIZE, SIZE, 3)
        for t in range(T):
            np.testing.assert_array_equal(record.images[t], image_from_msg(images[t]))
        # each command is the recorded action made safe, and the one the sim applied next
        np.testing.assert_array_equal(np.array(commands), np.clip(record.U, -LIMITS, LIMITS))
        np.testing.assert_array_equal(np.array([s.effort[:7] for s in states[1:]]),
                                      np.array(commands))
        assert np.any(np.abs(record.U) > LIMITS)

        for t in range(T):
            np.testing.assert_allclose(record.X[t], env_state(env, 0, states[t]),
                                       rtol=0, atol=1e-12)
        np.testing.assert_allclose(final_state, env_state(env, 0, states[T]), rtol=0,
                                   atol=1e-12)

    def test_a_lost_goal_answer_gets_the_result_by_the_goal_id(self, lockstep, ros, env):
        T = 12
        graph = ros.graph
        ros.impatient.wait_until_ready(30.0)
        version = lockstep.versions.next()
        assert "ready" in push(ros, lg_update(version, 0, T))
        stamp = ros.sim.reset(lockstep.name)
        n_commands = len(graph.commands)
        record, _ = ros.impatient.run_trial(request(env, 0, version, T, start_stamp=stamp,
                                                    trial_id=21), TRIAL_TIMEOUT)
        assert not record.aborted and record.X.shape == (T, L.dX)
        assert (record.policy_version, record.trial_id) == (version, 21)
        time.sleep(0.5)
        assert len(graph.since(graph.states, stamp_ns(stamp))) == T + 1   # the trial ran once
        assert len(graph.commands) == n_commands + T

        never_sent = ClientGoalHandle(ros.controller.trials, UUID(uuid=list(range(16))),
                                      RunTrial.Impl.SendGoalService.Response(accepted=True))
        started = time.monotonic()
        response = never_sent.get_result_async()
        wait_until(response.done, 10.0, "no answer for a goal id the controller never received")
        assert response.result().status == GoalStatus.STATUS_UNKNOWN
        assert time.monotonic() - started < 5.0   # at once, not after a trial's time

    @pytest.mark.parametrize("case", [
        "gains_size", "dim_x", "nan_offsets", "old_version", "non_pd_covariance",
        "garbage_architecture", "network_input_size", "unknown_kind"])
    def test_a_malformed_policy_update_is_rejected_naming_the_field(self, lockstep, ros, case):
        current = lockstep.versions.last
        version = current + 1
        if case == "gains_size":
            msg, field = lg_update(version, 0, 20), "linear_gaussian.gains"
            msg.linear_gaussian.gains = msg.linear_gaussian.gains[:-7]
        elif case == "dim_x":
            msg = lg_update(version, 0, 20, K=np.zeros((20, L.dU, L.dX + 1)))
            field = "linear_gaussian.dim_x"
        elif case == "nan_offsets":
            k = np.ones((20, L.dU))
            k[3, 2] = math.nan
            msg, field = lg_update(version, 0, 20, k=k), "linear_gaussian.offsets"
        elif case == "old_version":
            msg, field = lg_update(current, 0, 20), "version"
        elif case == "non_pd_covariance":
            msg, field = lg_update(version, 0, 20), "linear_gaussian.covariance_cholesky"
            chol = np.array(msg.linear_gaussian.covariance_cholesky).reshape(20, L.dU, L.dU)
            chol[5, 4, 4] = -0.3
            msg.linear_gaussian.covariance_cholesky = chol.ravel()
        elif case == "garbage_architecture":
            torch.manual_seed(0)
            msg = policy_update_msg(version, network=network_policy_to_msg(
                GaussianPolicy(FullStateMLP(), device="cpu").to_params()))
            msg.neural_network.architecture = '{"kind": "full_state_mlp", fc_units: [}'
            field = "neural_network.architecture"
        elif case == "network_input_size":
            torch.manual_seed(0)
            msg = policy_update_msg(version, network=network_policy_to_msg(GaussianPolicy(
                FullStateMLP(FullStateMLPConfig(dim_x=20)), device="cpu").to_params()))
            field = "neural_network.architecture"
        else:
            msg, field = lg_update(version, 0, 20), "kind"
            msg.kind = 42
        line = push(ros, msg)
        assert line.startswith(f"rejected policy update version {msg.version}: {field}: "), line
        assert line.endswith(f"keeping version {current}"), line

    def test_the_controller_keeps_working_after_the_rejections(self, lockstep, ros, env):
        assert ros.graph.log_lines(Log.ERROR, "rejected policy update")   # they did happen
        stamp = ros.sim.reset(lockstep.name)
        record, _ = ros.controller.run_trial(request(env, 0, 0, 10, start_stamp=stamp),
                                             TRIAL_TIMEOUT)   # version 0: the newest held
        assert record.policy_version == lockstep.versions.last and not record.aborted
        assert record.X.shape == (10, L.dX)
        version = lockstep.versions.next()   # the version a rejected update had is still free
        assert "ready" in push(ros, lg_update(version, 0, 20))

    @pytest.mark.parametrize("change, words", [
        (dict(version=99), "policy version 99 is not held"),
        (dict(ee_points_tool=np.zeros((2, 3))), "ee_points_tool has 6 values, expected 3 points"),
        (dict(ee_targets=np.full((3, 3), np.nan)), "ee_targets contains NaN or infinity"),
        (dict(condition=1), "belongs to condition 0, the trial is on condition 1"),
        (dict(T=500), "exceeds the controller's horizon 200"),
    ])
    def test_a_trial_that_cannot_run_is_refused_with_a_message(self, lockstep, ros, env,
                                                               change, words):
        version = lockstep.versions.next()   # a controller for condition 0, horizon 200
        assert "ready" in push(ros, lg_update(version, 0, 200))
        fields = dict(version=version, condition=0, T=10)
        geometry = {k: change.pop(k) for k in ("ee_points_tool", "ee_targets") if k in change}
        fields.update(change)
        goal = request(env, 0, fields["version"], fields["T"])
        goal = TrialRequest(**{**goal.__dict__, **geometry, "condition": fields["condition"]})
        start = len(ros.graph.logs)
        n_commands = len(ros.graph.commands)
        with pytest.raises(TrialFailed, match=words.replace("(", r"\(")):
            ros.controller.run_trial(goal, TRIAL_TIMEOUT)
        wait_until(lambda: ros.graph.log_lines(Log.ERROR, "refused trial", start), 10.0,
                   "no refusal on /rosout")
        assert len(ros.graph.commands) == n_commands   # the arm got nothing

    def test_a_cnn_policy_runs_and_publishes_its_feature_points(self, lockstep, ros, env):
        T = 10
        torch.manual_seed(3)
        env.reset(0)
        source = GaussianPolicy(VisuomotorCNN(CPU_CNN), obs_mean=env.observation().config,
                                obs_scale=np.ones(L.dO_config), covariance=0.1 * np.eye(L.dU),
                                device="cpu")
        version = lockstep.versions.next()
        assert "ready" in push(ros, policy_update_msg(
            version, network=network_policy_to_msg(source.to_params())))
        stamp = ros.sim.reset(lockstep.name)
        ros.graph.points.clear()
        record, _ = ros.controller.run_trial(
            request(env, 0, version, T, noise_seed=2, record_images=True, start_stamp=stamp),
            TRIAL_TIMEOUT)
        wait_until(lambda: len(ros.graph.points) >= T, 10.0, "feature points did not arrive")
        time.sleep(0.3)   # and no more than T
        images = ros.graph.since(ros.graph.images, stamp_ns(stamp))
        assert not record.aborted and record.policy_version == version
        assert len(ros.graph.points) == T
        for t in range(T):
            np.testing.assert_array_equal(record.images[t], image_from_msg(images[t]))
            with torch.no_grad():
                expected = source.network.feature_points(
                    torch.from_numpy(record.images[t][None].copy()))[0].numpy()
            points = ros.graph.points[t].reshape(-1, 2)
            assert points.shape == (CPU_CNN.n_feature_points, 2)
            np.testing.assert_allclose(points, expected, rtol=0, atol=1e-5)
            np.testing.assert_allclose(
                record.U[t], source.act(record.obs_config[t], record.images[t], record.noise[t]),
                rtol=1e-5, atol=1e-5)

    def test_the_emergency_stop_aborts_refuses_and_releases(self, lockstep, ros, env):
        graph = ros.graph
        T = 1000
        version = lockstep.versions.next()
        assert "ready" in push(ros, lg_update(version, 0, T, k=np.full((T, L.dU), 2.0)))
        stamp = ros.sim.reset(lockstep.name)
        n_commands = len(graph.commands)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(ros.controller.run_trial,
                                  request(env, 0, version, T, start_stamp=stamp), TRIAL_TIMEOUT)
            wait_until(lambda: len(graph.commands) >= n_commands + 5, 30.0,
                       "the trial did not start")
            ros.estop.publish(Bool(data=True))
            try:
                with pytest.raises(TrialFailed, match="emergency stop") as failed:
                    running.result(TRIAL_TIMEOUT)
            except BaseException:
                ros.estop.publish(Bool(data=False))   # the next tests need a released stop
                raise
        record = failed.value.record
        assert record.aborted and record.abort_reason == "emergency stop"
        assert 5 <= record.X.shape[0] < T
        wait_until(lambda: any(not c.any() for _, c in graph.commands[n_commands:]), 10.0,
                   "no zero torque arrived after the emergency stop")
        time.sleep(0.5)   # anything the controller sent after the zero would arrive by now
        commands = [c for _, c in graph.commands[n_commands:]]
        assert np.array_equal(commands[-1], np.zeros(L.dU))
        first_zero = next(i for i, c in enumerate(commands) if not c.any())
        assert first_zero == len(commands) - 1   # zero torque, and nothing after it
        assert first_zero == record.X.shape[0]   # right after the last recorded step

        stamp = ros.sim.reset(lockstep.name)
        with pytest.raises(TrialFailed, match="the emergency stop is active"):
            ros.controller.run_trial(request(env, 0, version, 5, start_stamp=stamp),
                                     TRIAL_TIMEOUT)
        assert len(graph.commands) == n_commands + len(commands)

        start = len(graph.logs)
        ros.estop.publish(Bool(data=False))
        wait_until(lambda: graph.log_lines(Log.WARN, "emergency stop released", start), 10.0,
                   "the emergency stop was not released")
        record, _ = ros.controller.run_trial(request(env, 0, version, 5, start_stamp=stamp),
                                             TRIAL_TIMEOUT)
        assert not record.aborted and record.X.shape == (5, L.dX)

    def test_a_non_finite_action_gives_zero_torque_and_aborts(self, lockstep, ros, env):
        graph = ros.graph
        T = 10
        env.reset(0)
        x0 = env.state()
        j = int(np.argmax(np.abs(x0)))
        assert abs(x0[j]) > 1.0   # so that 1e308 * x0[j] overflows to infinity
        K = np.zeros((T, L.dU, L.dX))
        K[3:, :, j] = 1e308       # steps 0-2 are fine, step 3 overflows
        version = lockstep.versions.next()
        assert "ready" in push(ros, lg_update(version, 0, T, K=K, chol_scale=1e-6))
        stamp = ros.sim.reset(lockstep.name)
        n_commands = len(graph.commands)
        with pytest.raises(TrialFailed, match="non-finite torques") as failed:
            ros.controller.run_trial(request(env, 0, version, T, start_stamp=stamp),
                                     TRIAL_TIMEOUT)
        record = failed.value.record
        assert record.aborted and "non-finite torques at joints [0, 1, 2, 3, 4, 5, 6]" in \
            record.abort_reason
        assert record.X.shape == (3, L.dX) and np.all(np.isfinite(record.U))
        wait_until(lambda: len(graph.commands) >= n_commands + 4, 10.0,
                   "the zero torque after the abort did not arrive")
        time.sleep(0.3)   # and nothing after it
        commands = np.array([c for _, c in graph.commands[n_commands:]])
        assert len(commands) == 4
        assert np.all(commands[:3] != 0) and np.array_equal(commands[3], np.zeros(L.dU))


@pytest.fixture(scope="class")
def realtime(node_processes, ros, env):
    sim, controller = start_stack(node_processes, ros, "realtime")
    stack = type("Stack", (), {})()
    stack.sim, stack.controller = sim, controller
    assert "ready" in push(ros, lg_update(1, 0, 200, k=np.full((200, L.dU), 1.5),
                                          chol_scale=0.05))
    warm_up(ros, env, 1)
    yield stack


class TestRealtime:
    def test_stale_joint_states_give_zero_torque_within_a_period_of_going_stale(self, realtime, ros, env):
        graph = ros.graph
        T = 400
        version = 2
        assert "ready" in push(ros, lg_update(version, 0, T, k=np.full((T, L.dU), 1.5),
                                              chol_scale=0.05))
        n_commands = len(graph.commands)
        start_log = len(graph.logs)
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(ros.controller.run_trial, request(env, 0, version, T),
                                  TRIAL_TIMEOUT)
            # policy commands (k = 1.5, never all zero), not a late zero from the warm-up's end
            wait_until(lambda: sum(c.any() for _, c in graph.commands[n_commands:]) >= 10,
                       30.0, "the realtime trial did not start")
            assert not running.done(), "the trial ended before the sim was stopped"
            realtime.sim.kill()
            with pytest.raises(TrialFailed, match="stale") as failed:
                running.result(TRIAL_TIMEOUT)
        time.sleep(0.5)
        record = failed.value.record
        assert record.aborted and "joint states are stale" in record.abort_reason
        assert 10 <= record.X.shape[0] < T

        last_state = max(received for received, _, _ in graph.states)
        after = [(received, c) for received, c in graph.commands[n_commands:]
                 if received > last_state]
        zero = next((i for i, (_, c) in enumerate(after) if not c.any()), None)
        assert zero is not None, "no zero command after the last joint state"
        assert all(not c.any() for _, c in after[zero:])   # and nothing but zero afterwards
        # a policy command after the last state used a state that was still fresh
        assert all(received - last_state <= PERIOD + STALE_TOLERANCE + 0.03
                   for received, _ in after[:zero])
        latency = after[zero][0] - last_state
        print(f"\nlast joint state -> zero torque: {1e3 * latency:.1f} ms "
              f"(control period {1e3 * PERIOD:.0f} ms, stale after "
              f"{1e3 * (PERIOD + STALE_TOLERANCE):.0f} ms)")
        # stale after one period plus the tolerance; the watchdog, five checks a period, stops
        # the arm within one more period (a fifth of one plus scheduling on a loaded machine)
        assert latency - (PERIOD + STALE_TOLERANCE) <= PERIOD, f"{1e3 * latency:.1f} ms"
        wait_until(lambda: graph.log_lines(Log.ERROR, "joint states are stale", start_log), 10.0,
                   "the stale abort was not reported on /rosout")


def test_every_command_published_was_within_the_effort_limits(ros):
    """Runs last: judges every command recorded by the tests above (the lock-step trial's
    actions beyond the limits, the non-finite action, the emergency stop, the stale sim)."""
    commands = np.array([c for _, c in ros.graph.commands])
    if not len(commands):
        pytest.skip("no controller ran in this selection of tests")
    assert commands.shape[1] == L.dU
    assert np.all(np.isfinite(commands))
    assert np.all(np.abs(commands) <= LIMITS)
