"""The controller node: runs the active policy on the arm at the control rate, safely.

Subscribes (reliable, depth 10):
  /joint_states                sensor_msgs/JointState (the arm's joints by name)
  /head_camera/image_raw       sensor_msgs/Image rgb8 (for the CNN and for recorded samples)
  ~/policy_update              gps_msgs/PolicyUpdate: validated in full, stored by version; a bad
                               update is refused with a logged reason and changes nothing
  ~/emergency_stop             std_msgs/Bool: true stops (zero torque, the trial aborts, new
                               trials are refused) until false
Publishes:
  /effort_controller/commands  std_msgs/Float64MultiArray: the arm's torques (JointGroupEffort-
                               Controller convention), always within the effort limits
  ~/feature_points             std_msgs/Float32MultiArray: the CNN's feature points (K x 2,
                               normalised image coordinates in [-1, 1], x then y) each step
  ~/samples                    gps_msgs/SampleTrajectory: each finished trial, without images
  /diagnostics                 diagnostic_msgs/DiagnosticArray once a second: loop period,
                               jitter, inference time, deadline misses, faults (over the last
                               second, and `last_trial_*` over the last whole trial)
Action:
  ~/run_trial                  gps_msgs/action/RunTrial: run a policy version for T steps and
                               return the recorded sample (gps_controller.trial)

Modes (parameter `mode`):
  realtime  a control thread paced by the steady clock steps at rate_hz with the newest joint
            state (and frame); it also looks five times a period, and when either is older than
            one control period plus `stale_tolerance_s` the trial aborts and the arm gets zero
            torque;
  lockstep  for the lock-step simulator: each new state (with the frame of the same stamp when
            the trial needs images) is one control step, so no step is dropped or repeated; the
            sensors are subscribed transient-local, so the state the sim published before the
            two nodes' endpoints matched still arrives; the trial aborts when no new state comes
            within `lockstep_timeout_s`.
One single-threaded executor handles the messages and the action (the trial waits on a future,
not a thread); in realtime mode the control steps run on a thread of their own (a multi-threaded
executor beside such a thread delayed sensor callbacks by up to a second). A non-finite action
gives zero torque and aborts the trial; finite actions are clipped to the effort limits
(gps_controller.safety). Between trials the node publishes nothing in lock-step mode and one zero
command at each trial's end in realtime mode.

    ros2 run gps_controller controller_node --ros-args -p robot_description:=<model.xml> \\
        -p mode:=lockstep
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import rclpy
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.action import ActionServer, CancelResponse
from rclpy.clock import Clock, ClockType
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.task import Future
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32MultiArray, Float64MultiArray

from gps_controller.controller_policies import PROBE, PolicyStore
from gps_controller.kinematics import ArmKinematics, KinematicsError
from gps_controller.layout import PR2_RIGHT_ARM, RIGHT_ARM_EFFORT_LIMITS
from gps_controller.loop_stats import LoopStats
from gps_controller.message_validation import MessageError
from gps_controller.messages import SampleRecord, sample_to_msg
from gps_controller.node_parameters import declare_parameters
from gps_controller.node_shutdown import ends_at_shutdown
from gps_controller.sensor_reading import JointReading, camera_frame, joint_reading, stamp_ns
from gps_controller.trial import Trial, TrialError, plan_trial
from gps_controller.typed_config import ConfigError
from gps_msgs.action import RunTrial
from gps_msgs.msg import PolicyUpdate, SampleTrajectory

MODES = ("realtime", "lockstep")
QOS_DEPTH = 10
DIAGNOSTICS_PERIOD_S = 1.0
LOCKSTEP_WATCH_PERIOD_S = 0.05
FEEDBACK_PERIOD_S = 0.2
WATCHDOG_CHECKS_PER_PERIOD = 5


@dataclass(frozen=True)
class ControllerNodeParams:
    """The node's parameters (declared with these defaults and PARAM_DESCRIPTIONS)."""

    robot_description: str = ""
    base_frame: str = "torso_lift_link"
    tool_frame: str = "r_gripper_tool_frame"
    mode: str = "realtime"
    rate_hz: float = 20.0
    stale_tolerance_s: float = 0.05
    lockstep_timeout_s: float = 5.0
    device: str = "cpu"
    inference_threads: int = 1

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"parameter mode is {self.mode!r}; expected one of {list(MODES)}")
        if not (self.rate_hz > 0 and self.stale_tolerance_s >= 0 and self.lockstep_timeout_s > 0):
            raise ConfigError("parameters rate_hz, lockstep_timeout_s must be positive and "
                              "stale_tolerance_s >= 0")
        if self.inference_threads < 1:
            raise ConfigError("parameter inference_threads must be at least 1")
        if not self.robot_description:
            raise ConfigError("parameter robot_description (the arm's MJCF or URDF) is required")


PARAM_DESCRIPTIONS = {
    "robot_description": "file of the robot model (MJCF or URDF) for forward kinematics",
    "base_frame": "body of the robot frame the state is expressed in",
    "tool_frame": "body of the gripper's tool frame the end-effector points are fixed in",
    "mode": "'realtime': timer at rate_hz; 'lockstep': one step per new simulator state",
    "rate_hz": "control rate (realtime mode) and the period recorded in samples",
    "stale_tolerance_s": "realtime: a sensor older than one period plus this is stale (the "
                         "default, one period at 20 Hz: one message missed, not late)",
    "lockstep_timeout_s": "lockstep: abort a trial when no new state comes within this",
    "device": "torch device for network policies ('cpu', 'cuda')",
    "inference_threads": "torch CPU threads for the policy; 1 keeps torch's worker threads "
                         "from spinning on the cores the simulator or drivers need",
}


@dataclass
class _ActiveTrial:
    """A trial in progress and how it ended (set once, then `finished` completes)."""

    trial: Trial
    goal_handle: object = None
    finished: Future | None = None
    started: float = field(default_factory=time.monotonic)
    consumed_ns: int = -1
    record: SampleRecord | None = None
    final_state: np.ndarray | None = None
    reason: str = ""


class ControllerNode(Node):
    """Wiring between the ROS interface in the module docstring and trials (gps_controller.trial)."""

    def __init__(self) -> None:
        super().__init__("gps_controller")
        self.params = declare_parameters(self, ControllerNodeParams, PARAM_DESCRIPTIONS)
        self.layout = PR2_RIGHT_ARM
        self.limits = RIGHT_ARM_EFFORT_LIMITS
        self.period = 1.0 / self.params.rate_hz
        self.kinematics = ArmKinematics(self.params.robot_description, self.layout.joints,
                                        self.params.base_frame, self.params.tool_frame)
        torch.set_num_threads(self.params.inference_threads)
        self.store = PolicyStore(self.layout, self.params.device)
        self.stats = LoopStats(self.period)
        self.trial_stats = LoopStats(self.period)
        self._last_trial_stats: dict[str, float] = {}
        self._lock = threading.Lock()
        self._step_lock = threading.Lock()
        self._running = False
        self._joint: tuple[JointReading, float] | None = None
        self._image: tuple[int, np.ndarray, float] | None = None
        self._active: _ActiveTrial | None = None
        self._stopped = False
        self._faults: list[str] = []
        steady = Clock(clock_type=ClockType.STEADY_TIME)

        self._command_pub = self.create_publisher(Float64MultiArray, "/effort_controller/commands",
                                                  QOS_DEPTH)
        self._points_pub = self.create_publisher(Float32MultiArray, "~/feature_points", QOS_DEPTH)
        self._samples_pub = self.create_publisher(SampleTrajectory, "~/samples", QOS_DEPTH)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_DEPTH)
        sensor_qos = QoSProfile(depth=QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                                durability=(DurabilityPolicy.TRANSIENT_LOCAL
                                            if self.params.mode == "lockstep"
                                            else DurabilityPolicy.VOLATILE))
        self.create_subscription(JointState, "/joint_states", self._on_joint_state, sensor_qos)
        self.create_subscription(Image, "/head_camera/image_raw", self._on_image, sensor_qos)
        self.create_subscription(Bool, "~/emergency_stop", self._on_emergency_stop, QOS_DEPTH)
        self.create_subscription(PolicyUpdate, "~/policy_update", self._on_policy_update,
                                 QOS_DEPTH)
        self._action = ActionServer(self, RunTrial, "~/run_trial", self._execute_trial,
                                    cancel_callback=self._on_cancel)
        if self.params.mode == "realtime":
            self._loop_thread = threading.Thread(target=self._realtime_loop, daemon=True,
                                                 name="gps_controller_loop")
        else:
            self._loop_thread = None
            self.create_timer(LOCKSTEP_WATCH_PERIOD_S, self._watch_lockstep,
                              clock=steady)
        self.create_timer(FEEDBACK_PERIOD_S, self._publish_feedback, clock=steady)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics,
                          clock=steady)
        self.get_logger().info(f"{self.params.mode} controller at {self.params.rate_hz} Hz for "
                               f"{len(self.layout.joints)} joints, effort limits "
                               f"{self.limits.tolist()} N m")

    # Sensors and commands (the loop group: never two at once) ---------------------------------

    def _on_joint_state(self, msg: JointState) -> None:
        try:
            reading = joint_reading(msg, self.layout.joints)
        except MessageError as exc:
            self._fault(f"ignored joint state: {exc}")
            return
        with self._lock:
            if self._joint is None or reading.stamp_ns >= self._joint[0].stamp_ns:
                self._joint = (reading, time.monotonic())
        if self.params.mode == "lockstep":
            self._step_lockstep()

    def _on_image(self, msg: Image) -> None:
        try:
            frame = camera_frame(msg)
        except MessageError as exc:
            self._fault(f"ignored camera frame: {exc}")
            return
        stamp = stamp_ns(msg.header.stamp)
        with self._lock:
            if self._image is None or stamp >= self._image[0]:
                self._image = (stamp, frame, time.monotonic())
        if self.params.mode == "lockstep":
            self._step_lockstep()

    def start(self) -> None:
        """Start the realtime control thread (realtime mode; lock-step steps on messages)."""
        self._running = True
        if self._loop_thread is not None:
            self._loop_thread.start()

    def stop(self) -> None:
        self._running = False
        if self._loop_thread is not None and self._loop_thread.is_alive():
            self._loop_thread.join(timeout=2.0)

    def _realtime_loop(self) -> None:
        """Realtime mode: a thread of its own, paced by the steady clock, so that control steps
        never wait behind the executor's other work. Between steps it wakes
        WATCHDOG_CHECKS_PER_PERIOD - 1 times to stop the arm as soon as a sensor goes stale."""
        checks = WATCHDOG_CHECKS_PER_PERIOD
        next_tick = time.monotonic() + self.period
        while self._running:
            for k in range(1, checks + 1):
                delay = next_tick - self.period + k * self.period / checks - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                if not self._running:
                    return
                if k < checks:
                    self._watch_realtime()
            self._on_tick()
            next_tick += self.period
            if next_tick < time.monotonic():
                next_tick = time.monotonic() + self.period

    def _on_emergency_stop(self, msg: Bool) -> None:
        if msg.data and not self._stopped:
            self._stopped = True
            self.get_logger().error("emergency stop: zero torque, trials refused until released")
            with self._step_lock:
                self._end_trial(self._active, "emergency stop")
                self._publish_zero_torque()
        elif not msg.data and self._stopped:
            self._stopped = False
            self.get_logger().warning("emergency stop released")

    def _on_tick(self) -> None:
        """Realtime mode: one control step with the newest readings, or the watchdog's stop."""
        with self._step_lock:
            self._tick_locked()

    def _tick_locked(self) -> None:
        now = time.monotonic()
        active = self._active
        if active is None:
            self.stats.restart()
            return
        self._tick(now)
        stale = self._stale(active, now)
        if stale:
            self._stop_stale(stale)
            return
        reading = self._joint[0]
        if reading.stamp_ns < active.trial.plan.start_stamp_ns:
            return
        image = self._image[1] if active.trial.plan.needs_images else None
        self._control_step(active, reading, image, now)

    def _watch_realtime(self) -> None:
        """Realtime mode, WATCHDOG_CHECKS_PER_PERIOD times a period: stop as soon as a sensor
        the trial needs goes stale, not only at the next control step."""
        with self._step_lock:
            active = self._active
            if active is not None:
                stale = self._stale(active, time.monotonic())
                if stale:
                    self._stop_stale(stale)

    def _stale(self, active: _ActiveTrial, now: float) -> str:
        """Why the readings cannot drive a step (older than one period plus the tolerance), or
        an empty string when they are fresh."""
        limit = self.period + self.params.stale_tolerance_s
        sensors = [("joint states", self._joint[1] if self._joint else None)]
        if active.trial.plan.needs_images:
            sensors.append(("camera images", self._image[2] if self._image else None))
        for name, received in sensors:
            if received is None:
                return f"{name} are stale (none received, limit {limit:.3f} s)"
            if now - received > limit:
                return f"{name} are stale ({now - received:.3f} s old, limit {limit:.3f} s)"
        return ""

    def _step_lockstep(self) -> None:
        """Lockstep mode: step once per new state, with its frame when the trial needs one
        (called by the sensor callbacks and, for a state that came before the goal, by the
        trial's thread: the step lock keeps them from stepping twice)."""
        with self._step_lock:
            self._step_lockstep_locked()

    def _step_lockstep_locked(self) -> None:
        active = self._active
        if active is None or self._joint is None:
            return
        reading = self._joint[0]
        plan = active.trial.plan
        if reading.stamp_ns <= active.consumed_ns or reading.stamp_ns < plan.start_stamp_ns:
            return
        image = None
        if plan.needs_images and not active.trial.done:
            if self._image is None or self._image[0] != reading.stamp_ns:
                return
            image = self._image[1]
        now = time.monotonic()
        self._tick(now)
        self._control_step(active, reading, image, now)

    def _watch_lockstep(self) -> None:
        active = self._active
        if active is None:
            return
        last = self._joint[1] if self._joint is not None else None
        waited = time.monotonic() - max(last or 0.0, active.started)
        if waited > self.params.lockstep_timeout_s:
            with self._step_lock:
                self._stop_stale(f"no new state for {waited:.1f} s (lockstep_timeout_s "
                                 f"{self.params.lockstep_timeout_s} s)")

    def _control_step(self, active: _ActiveTrial, reading: JointReading,
                      image: np.ndarray | None, started: float) -> None:
        trial = active.trial
        active.consumed_ns = reading.stamp_ns
        if trial.done:
            record, final_state = trial.finish(reading)
            self._end_trial(active, "", record, final_state)
            if self.params.mode == "realtime":
                self._publish_zero_torque()
            return
        size = trial.plan.policy.image_size
        if size is not None and image is not None and image.shape[:2] != size:
            self._end_trial(active, f"camera frames are {image.shape[0]}x{image.shape[1]}, the "
                            f"policy expects {size[0]}x{size[1]}")
            self._publish_zero_torque()
            return
        try:
            command = trial.step(reading, image)
        except (KinematicsError, ValueError) as exc:
            fault = f"control step failed: {exc}"
        else:
            fault = command.fault
        inference = time.monotonic() - started
        if fault:
            self._publish_zero_torque()
            self._end_trial(active, fault)
            return
        self._publish_torque(command.torque)
        published = time.monotonic()
        self.stats.step_done(started, inference, published)
        self.trial_stats.step_done(started, inference, published)
        points = trial.plan.policy.feature_points
        if points is not None:
            self._points_pub.publish(Float32MultiArray(data=points.astype(np.float32).ravel()))

    def _tick(self, now: float) -> None:
        self.stats.tick(now)
        self.trial_stats.tick(now)

    def _stop_stale(self, reason: str) -> None:
        self._publish_zero_torque()
        self._end_trial(self._active, reason)

    def _publish_zero_torque(self) -> None:
        self._publish_torque(np.zeros_like(self.limits))

    def _publish_torque(self, torque: np.ndarray) -> None:
        self._command_pub.publish(Float64MultiArray(data=np.asarray(torque, float).tolist()))

    def _end_trial(self, active: _ActiveTrial | None, reason: str,
                   record: SampleRecord | None = None,
                   final_state: np.ndarray | None = None) -> None:
        """Close the trial: complete with its record and final state, or aborted with `reason`
        (the caller has commanded zero torque)."""
        with self._lock:
            if active is None or self._active is not active:
                return
            self._active = None
        if reason:
            record = active.trial.abort(reason)
            self._fault(f"trial {active.trial.plan.trial_id} aborted at step {active.trial.t}: "
                        f"{reason}")
        active.record, active.final_state, active.reason = record, final_state, reason
        self._last_trial_stats = self.trial_stats.report()
        self.get_logger().info(
            f"trial {active.trial.plan.trial_id}: {active.trial.t} steps, period p50/p99 "
            f"{self._last_trial_stats['period_p50_ms']:.2f}/"
            f"{self._last_trial_stats['period_p99_ms']:.2f} ms, jitter p99 "
            f"{self._last_trial_stats['jitter_p99_ms']:.2f} ms, inference p50/p99 "
            f"{self._last_trial_stats['inference_p50_ms']:.2f}/"
            f"{self._last_trial_stats['inference_p99_ms']:.2f} ms, deadline misses "
            f"{self._last_trial_stats['deadline_misses']}")
        active.finished.set_result(True)

    # Policies and trials (their own threads) ---------------------------------------------------

    def _on_policy_update(self, msg: PolicyUpdate) -> None:
        try:
            policy = self.store.apply(msg)
        except MessageError as exc:
            self.get_logger().error(f"rejected policy update version {msg.version}: {exc}; "
                                    f"keeping version {self.store.last_version}")
            return
        self.get_logger().info(f"policy version {policy.version} ({policy.kind}) ready")

    async def _execute_trial(self, goal_handle):
        """Start the trial and wait, without blocking the executor, until it ends."""
        goal = goal_handle.request
        result = RunTrial.Result()
        if goal.policy_version == PROBE:
            result.success, result.message = False, "readiness probe answered"
            goal_handle.abort()
            return result
        try:
            if self._stopped:
                raise TrialError("the emergency stop is active")
            policy = self.store.get(goal.policy_version)
            plan = plan_trial(goal, policy, self.layout)
        except (KeyError, TrialError) as exc:
            message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
            self.get_logger().error(f"refused trial {goal.trial_id}: {message}")
            result.success, result.message = False, message
            goal_handle.abort()
            return result
        active = _ActiveTrial(Trial(plan, self.layout, self.kinematics, self.limits, self.period),
                              goal_handle=goal_handle, finished=Future(executor=self.executor))
        with self._lock:
            if self._active is not None or self._stopped:
                result.success = False
                result.message = ("the emergency stop is active" if self._stopped else
                                  f"trial {self._active.trial.plan.trial_id} is still running")
                goal_handle.abort()
                return result
            self._active = active
            self.trial_stats = LoopStats(self.period)
        if self.params.mode == "lockstep":
            self._step_lockstep()
        await active.finished
        return self._trial_result(goal_handle, active, result)

    def _on_cancel(self, goal_handle) -> CancelResponse:
        active = self._active
        if active is not None and active.goal_handle is goal_handle:
            with self._step_lock:
                self._publish_zero_torque()
                self._end_trial(active, "cancelled by the client")
        return CancelResponse.ACCEPT

    def _publish_feedback(self) -> None:
        active = self._active
        if active is not None:
            feedback = RunTrial.Feedback()
            feedback.step, feedback.t = active.trial.t, active.trial.plan.T
            active.goal_handle.publish_feedback(feedback)

    def _trial_result(self, goal_handle, active: _ActiveTrial, result):
        record = active.record
        result.sample = sample_to_msg(record)
        result.success = not active.reason
        result.message = active.reason or f"{active.trial.t} steps"
        if active.final_state is not None:
            result.final_state = active.final_state.tolist()
        self._samples_pub.publish(sample_to_msg(replace(record, images=None)))
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
        elif result.success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return result

    # Diagnostics -------------------------------------------------------------------------------

    def _fault(self, message: str) -> None:
        self.get_logger().error(message, throttle_duration_sec=1.0)
        with self._lock:
            self._faults.append(message)

    def _publish_diagnostics(self) -> None:
        stats = self.stats.report()
        with self._lock:
            faults, self._faults = self._faults, []
        level = DiagnosticStatus.OK
        message = "ok"
        if self._stopped:
            level, message = DiagnosticStatus.ERROR, "emergency stop"
        elif faults:
            level, message = DiagnosticStatus.ERROR, faults[-1]
        elif stats["deadline_misses"]:
            level, message = DiagnosticStatus.WARN, f"{stats['deadline_misses']} deadline misses"
        values = {**{k: f"{v:.3f}" if isinstance(v, float) else str(v) for k, v in stats.items()},
                  "mode": self.params.mode, "policy_version": str(self.store.last_version),
                  "trial_running": str(self._active is not None),
                  "faults_since_last_report": str(len(faults)),
                  **{f"last_trial_{k}": f"{v:.3f}" if isinstance(v, float) else str(v)
                     for k, v in self._last_trial_stats.items()}}
        status = DiagnosticStatus(level=level, name="gps_controller", message=message,
                                  hardware_id="right_arm",
                                  values=[KeyValue(key=k, value=v) for k, v in values.items()])
        array = DiagnosticArray(status=[status])
        array.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics_pub.publish(array)


GIL_SWITCH_INTERVAL_S = 0.001
"""The control thread and the executor's threads share the interpreter; a 1 ms switch interval
(Python's default is 5 ms) keeps a sensor callback from waiting long behind a control step."""


def main(args=None) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    rclpy.init(args=args)
    try:
        node = ControllerNode()
    except (ValueError, KinematicsError) as exc:
        rclpy.logging.get_logger("gps_controller").fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    node.start()
    try:
        with ends_at_shutdown():
            executor.spin()
    finally:
        node.stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
