"""The sim node: the MuJoCo hanger scene behind the robot's ROS 2 interface.

Publishes (reliable, depth 10; joint states and camera also transient-local):
  /clock                      rosgraph_msgs/Clock, once per control step (sim time)
  /joint_states               sensor_msgs/JointState, r_* then l_* joints: position, velocity,
                              applied effort; stamped with sim time
  /head_camera/image_raw      sensor_msgs/Image rgb8, image_size x image_size
  /head_camera/camera_info    sensor_msgs/CameraInfo, pinhole intrinsics from the camera's fovy
  /diagnostics                diagnostic_msgs/DiagnosticArray, once a second (wall clock):
                              clipped (WARN) and rejected (ERROR) commands, restarts, counts
Subscribes:
  /effort_controller/commands std_msgs/Float64MultiArray, 7 right-arm torques in
                              RIGHT_ARM_JOINTS order (the JointGroupEffortController convention)
  /left_arm_target            gps_msgs/TargetPose: the left arm moves the rack to this pose
                              (robot frame torso_lift_link, rotation about z only)
Service:
  ~/set_condition             gps_msgs/srv/SetCondition: reset to the condition named by
                              condition.name (its pose and grasp come from the conditions file),
                              the rack moved by rack_offset and turned by rack_yaw_offset,
                              with random_look its colours and lights drawn from the given
                              ranges; answers with the stamp of the new episode's step 0
  ~/check_task                gps_msgs/srv/CheckTask: the task's success test on the current state

Modes (parameter `mode`):
  lockstep  after a reset the node publishes step 0; each command that arrives, valid or not,
            advances exactly one control step and publishes the next clock, state and image,
            so a controller runs as fast as it can answer without dropped or repeated steps;
  realtime  a wall-clock timer steps every control_dt (1 / 20 Hz) with the latest command,
            or zero torque when none is newer than one period.
A command of the wrong length or with NaN or infinity is rejected with a logged error and the
arm gets zero torque for that step; a command beyond the effort limits is clipped, with a
throttled warning and a WARN on /diagnostics. The control period is the task's control_dt from
the conditions file, so the wall-clock rate and the simulated step cannot disagree. Topic names
follow the ROS conventions above; change them by remapping (--ros-args -r from:=to).

    ros2 run gps_sim sim_node --ros-args -p conditions_file:=config/hanger_conditions.yaml \\
        -p mode:=lockstep
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import rclpy
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64MultiArray

from gps_controller.message_validation import MessageError
from gps_controller.messages import image_to_msg
from gps_controller.node_parameters import declare_parameters
from gps_controller.node_shutdown import ends_at_shutdown
from gps_controller.typed_config import ConfigError
from gps_msgs.msg import TargetPose
from gps_msgs.srv import CheckTask, SetCondition
from gps_sim.conditions import (HangerCondition, HangerTaskConfig, condition_sets,
                                load_conditions, load_task_config)
from gps_sim.effort_command import EffortCommand
from gps_sim.env import HangerEnv
from gps_sim.sim_messages import (CAMERA_FRAME, appearance_from_request, camera_info_msg,
                                  clock_msg, diagnostics_msg, head_camera_fovy, joint_state_msg,
                                  rack_pose_from_msg, to_time)
from gps_sim.sim_session import SimSession, SimStep

MODES = ("lockstep", "realtime")
QOS_DEPTH = 10
STATE_QOS = QoSProfile(depth=QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)
"""Joint states and camera: a subscriber that matches late (DDS discovery can take seconds)
still gets the current state, which a lock-step controller needs: the sim publishes nothing new
until it is commanded. Volatile subscribers match these publishers as usual."""
DIAGNOSTICS_PERIOD_S = 1.0
LOG_THROTTLE_S = 1.0


@dataclass(frozen=True)
class SimNodeParams:
    """The node's parameters (declared with these defaults and descriptions in SimNode)."""

    conditions_file: str = ""
    condition_set: str = "train"
    initial_condition: str = ""
    mode: str = "realtime"
    image_size: int = 0
    publish_images: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"parameter mode is {self.mode!r}; expected one of {list(MODES)}")
        if self.image_size < 0:
            raise ConfigError(f"parameter image_size must be >= 0, got {self.image_size}")


PARAM_DESCRIPTIONS = {
    "conditions_file": "YAML file of task settings and condition sets (gps_sim.conditions); "
                       "empty: one condition 'nominal' at the task's nominal rack pose",
    "condition_set": "which condition lists of conditions_file the node offers (comma "
                     "separated, e.g. 'train,spatial_test'; 'all': every list in the file)",
    "initial_condition": "condition to start in; empty: the first of the set",
    "mode": "'lockstep': one control step per received command; "
            "'realtime': steps on a wall-clock timer every control_dt",
    "image_size": "camera image side in pixels; 0: the task's image_size",
    "publish_images": "publish the head-camera image and camera info every step",
    "seed": "start-pose noise seed; reset k since start-up uses seed + k",
}


class SimNode(Node):
    """Wiring between the ROS interface in the module docstring and a SimSession."""

    def __init__(self) -> None:
        super().__init__("gps_sim")
        self.params = declare_parameters(self, SimNodeParams, PARAM_DESCRIPTIONS)
        env = _make_env(self.params)
        size = self.params.image_size or env.task.image_size
        self.session = SimSession(env, self.params.seed,
                                  size if self.params.publish_images else None)
        steady = Clock(clock_type=ClockType.STEADY_TIME)

        self._clock_pub = self.create_publisher(ClockMsg, "/clock", QOS_DEPTH)
        self._joint_pub = self.create_publisher(JointState, "/joint_states", STATE_QOS)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS_DEPTH)
        if self.params.publish_images:
            self._image_pub = self.create_publisher(Image, "/head_camera/image_raw", STATE_QOS)
            self._info_pub = self.create_publisher(CameraInfo, "/head_camera/camera_info",
                                                   STATE_QOS)
            self._camera_info = camera_info_msg(size, head_camera_fovy(), 0.0)
        self.create_subscription(Float64MultiArray, "/effort_controller/commands",
                                 self._on_command, QOS_DEPTH)
        self.create_subscription(TargetPose, "/left_arm_target", self._on_target, QOS_DEPTH)
        self.create_service(SetCondition, "~/set_condition", self._on_set_condition)
        self.create_service(CheckTask, "~/check_task", self._on_check_task)
        self.create_timer(DIAGNOSTICS_PERIOD_S, self._publish_diagnostics, clock=steady)

        self._held: tuple[EffortCommand, float] | None = None
        self._window = _DiagnosticsWindow(self.session)
        self._publish(self.session.reset(self.params.initial_condition or 0))
        if self.params.mode == "realtime":
            self.create_timer(self.session.control_dt, self._on_tick, clock=steady)
        self.get_logger().info(
            f"{self.params.mode} simulation of {len(self.session.condition_names)} condition(s) "
            f"from {self.params.conditions_file or 'the nominal pose'}, starting in "
            f"{self.session.env.condition.name!r}, control_dt {self.session.control_dt} s")

    def close(self) -> None:
        self.session.env.close()

    # Callbacks --------------------------------------------------------------------------------

    def _on_command(self, msg: Float64MultiArray) -> None:
        command, rejected = self.session.check(msg.data)
        if rejected:
            self.get_logger().error(f"rejected effort command, zero torque this step: {rejected}")
        elif command.any_clipped:
            self._window.last_clip = command.clip_report()
            self.get_logger().warning(f"effort command clipped to the limits: "
                                      f"{self._window.last_clip}",
                                      throttle_duration_sec=LOG_THROTTLE_S)
        if self.params.mode == "lockstep":
            self._publish(self.session.step(command))
        else:
            self._held = (command, time.monotonic())

    def _on_tick(self) -> None:
        fresh = (self._held is not None
                 and time.monotonic() - self._held[1] <= self.session.control_dt)
        self._publish(self.session.step(self._held[0] if fresh else None))

    def _on_target(self, msg: TargetPose) -> None:
        try:
            position, yaw = rack_pose_from_msg(msg)
            self.session.move_rack(position, yaw)
        except (MessageError, ValueError) as exc:
            self.get_logger().error(f"ignored left-arm target {msg.name!r}: {exc}")

    def _on_set_condition(self, request, response):
        name = request.condition.name
        offset = request.rack_offset
        try:
            step = self.session.reset(name, (offset.x, offset.y, offset.z),
                                      request.rack_yaw_offset, appearance_from_request(request))
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().error(f"set_condition: {exc}")
            return response
        self._held = None
        self._publish(step)
        response.success, response.message = True, f"reset to condition {name!r}"
        response.stamp = to_time(step.stamp)
        return response

    def _on_check_task(self, request, response):
        check = self.session.env.hang_check()
        response.success = bool(check.success)
        response.message = check.describe()
        return response

    # Output -----------------------------------------------------------------------------------

    def _publish(self, step: SimStep) -> None:
        if step.restarted:
            self._window.last_restart = step.restarted
            self.get_logger().error(f"simulation restarted: {step.restarted}")
        self._clock_pub.publish(clock_msg(step.stamp))
        self._joint_pub.publish(joint_state_msg(step.joints, step.stamp))
        if step.image is not None:
            stamp = to_time(step.stamp)
            self._camera_info.header.stamp = stamp
            self._info_pub.publish(self._camera_info)
            self._image_pub.publish(image_to_msg(step.image, stamp, CAMERA_FRAME))

    def _publish_diagnostics(self) -> None:
        level, message, values = self._window.report(self.params.mode)
        self._diagnostics_pub.publish(
            diagnostics_msg(self.get_clock().now().to_msg(), level, message, values))


class _DiagnosticsWindow:
    """What happened since the last diagnostics report: the counts' growth, the sim time
    advanced per wall second, and the last clip and restart seen."""

    def __init__(self, session: SimSession) -> None:
        self.session = session
        self.last_clip = ""
        self.last_restart = ""
        self._counts = dict(session.counts.__dict__)
        self._steps_wall = (0, time.monotonic())

    def report(self, mode: str) -> tuple[bytes, str, dict[str, object]]:
        counts = self.session.counts.__dict__
        new = {key: counts[key] - self._counts[key] for key in counts}
        self._counts = dict(counts)
        now = time.monotonic()
        real_time_factor = (new["steps"] * self.session.control_dt
                            / max(now - self._steps_wall[1], 1e-9))
        self._steps_wall = (counts["steps"], now)
        problems = []
        if new["rejected"]:
            problems.append(f"{new['rejected']} command(s) rejected, zero torque applied")
        if new["restarts"]:
            problems.append(f"{new['restarts']} restart(s): {self.last_restart}")
        if new["clipped"]:
            problems.append(f"{new['clipped']} command(s) clipped to the effort limits, "
                            f"last: {self.last_clip}")
        if new["rejected"] or new["restarts"]:
            level = DiagnosticStatus.ERROR
        else:
            level = DiagnosticStatus.WARN if new["clipped"] else DiagnosticStatus.OK
        message = "; ".join(problems) + " since the last report" if problems else "ok"
        env = self.session.env
        values = {"mode": mode, "condition": env.condition.name, "step": env.step_index,
                  "real_time_factor": f"{real_time_factor:.2f}",
                  **{f"{key}_total": value for key, value in counts.items()},
                  "last_clip": self.last_clip, "last_restart": self.last_restart}
        return level, message, values


def _make_env(params: SimNodeParams) -> HangerEnv:
    if not params.conditions_file:
        task = HangerTaskConfig()
        return HangerEnv([HangerCondition("nominal", task.rack_nominal_position)], task,
                         render_observations=False)
    sets = (condition_sets(params.conditions_file) if params.condition_set == "all"
            else [name.strip() for name in params.condition_set.split(",")])
    conditions = [condition for name in sets
                  for condition in load_conditions(params.conditions_file, name)]
    names = [condition.name for condition in conditions]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{params.conditions_file}: condition names {repeated} appear in more "
                          f"than one of the sets {sets}; set_condition needs unique names")
    return HangerEnv(conditions, load_task_config(params.conditions_file),
                     render_observations=False)


def main(args=None) -> int:
    rclpy.init(args=args)
    try:
        node = SimNode()
    except ValueError as exc:
        rclpy.logging.get_logger("gps_sim").fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 1
    try:
        with ends_at_shutdown():
            rclpy.spin(node)
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
