"""The GUI node `gps_gui`: serves the teleop page and the training dashboard over HTTP and acts
only through ROS, so the tests and the command line can do everything the page does.

Subscribes:
  /joint_states                    sensor_msgs/JointState        joint table
  /head_camera/image_raw           sensor_msgs/Image (rgb8)      camera view
  /gps_controller/feature_points   std_msgs/Float32MultiArray    K x 2 points drawn on the view
  /left_arm_target                 gps_msgs/TargetPose           the current target (anyone's)
  /gps_trainer/progress            gps_msgs/TrainingProgress     dashboard, one per iteration
  /gps_controller/samples          gps_msgs/SampleTrajectory     the latest sample's EE path
  /rosout                          rcl_interfaces/Log            warnings and errors of the sim,
                                                                 controller and trainer nodes
Publishes:
  /left_arm_target                 gps_msgs/TargetPose           teleop moves and resets
Calls:
  /gps_sim/set_condition           gps_msgs/srv/SetCondition     relax/reset the arms
  /gps_gui/save_condition          gps_msgs/srv/SaveCondition    the page's save (its own service)
  /gps_controller/run_trial        gps_msgs/action/RunTrial      one trial of the current policy
Offers:
  ~/save_condition (= /gps_gui/save_condition)  gps_msgs/srv/SaveCondition: append the condition
      to set `set_name` of conditions_file, within the task's reach limits (gui.condition_file)

    ros2 run gps_trainer gui_node --ros-args -p conditions_file:=config/hanger_conditions.yaml
    # then open http://127.0.0.1:8080/ (teleop) and http://127.0.0.1:8080/dashboard

A malformed message is dropped with a throttled warning; a bad request from the page is refused
with a message; neither stops the node.
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import rclpy
from rcl_interfaces.msg import Log
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray

from gps_controller.message_validation import MessageError, check_image
from gps_controller.node_parameters import declare_parameters
from gps_controller.node_shutdown import ends_at_shutdown
from gps_msgs.msg import SampleTrajectory, TargetPose, TrainingProgress
from gps_msgs.srv import SaveCondition, SetCondition
from gps_sim.conditions import load_conditions, load_task_config
from gps_sim.sim_messages import rack_pose_from_msg
from gps_trainer.gui import views
from gps_trainer.gui.condition_file import ConditionFileError, NewCondition, append_condition
from gps_trainer.gui.live_state import LiveState
from gps_trainer.gui.page_backend import PageBackend, RosPorts
from gps_trainer.gui.page_requests import Pose
from gps_trainer.gui.trial_runner import TrialRunner
from gps_trainer.gui.web_server import GuiHttpServer

QOS_DEPTH = 10
WATCHED_NODES = ("gps_sim", "gps_controller", "gps_trainer")
"""Nodes whose warnings and errors on /rosout the teleop page lists."""
LOG_THROTTLE_S = 5.0


@dataclass(frozen=True)
class GuiNodeParams:
    """The node's parameters (declared with these defaults and descriptions in GuiNode)."""

    conditions_file: str = "config/hanger_conditions.yaml"
    condition_set: str = "train"
    host: str = "127.0.0.1"
    port: int = 8080


PARAM_DESCRIPTIONS = {
    "conditions_file": "conditions YAML shared with the sim, trainer and evaluator: reset and "
                       "trial conditions come from it, saved conditions go into it",
    "condition_set": "the set the sim and trainer run (names for reset and run-trial)",
    "host": "address the web server listens on (0.0.0.0 for other machines)",
    "port": "TCP port of the web server",
}


class GuiNode(Node):
    """Wiring between the ROS interface in the module docstring, LiveState and PageBackend."""

    def __init__(self) -> None:
        super().__init__("gps_gui")
        self.params = declare_parameters(self, GuiNodeParams, PARAM_DESCRIPTIONS)
        path = Path(self.params.conditions_file).resolve()
        self.conditions_path = path
        task = load_task_config(path)
        conditions = load_conditions(path, self.params.condition_set)
        self._condition_names = [c.name for c in conditions]
        self.live = LiveState(Pose(tuple(task.rack_nominal_position), 0.0))

        target_pub = self.create_publisher(TargetPose, "/left_arm_target", QOS_DEPTH)
        subscriptions = {
            "/joint_states": (JointState, self._on_joint_states),
            "/head_camera/image_raw": (Image, self._on_image),
            "/gps_controller/feature_points": (Float32MultiArray, self._on_feature_points),
            "/left_arm_target": (TargetPose, self._on_target),
            "/gps_trainer/progress": (TrainingProgress, self._on_progress),
            "/gps_controller/samples": (SampleTrajectory, self._on_sample),
            "/rosout": (Log, self._on_log),
        }
        for topic, (msg_type, callback) in subscriptions.items():
            self.create_subscription(msg_type, topic, _guarded(self, topic, callback), QOS_DEPTH)
        self.create_service(SaveCondition, "~/save_condition", self._on_save_condition)
        ports = RosPorts(
            publish_target=target_pub.publish,
            reset_client=self.create_client(SetCondition, "/gps_sim/set_condition"),
            save_client=self.create_client(SaveCondition, "~/save_condition"),
            trials=TrialRunner(self, self.live, task.control_dt))
        self.backend = PageBackend(ports, self.live, str(path), self.params.condition_set,
                                   conditions, task)

    # Callbacks --------------------------------------------------------------------------------

    def _on_joint_states(self, msg: JointState) -> None:
        self.live.set_joints(views.joint_states_view(msg))

    def _on_image(self, msg: Image) -> None:
        check_image(msg, "image")
        self.live.set_image(msg)

    def _on_feature_points(self, msg: Float32MultiArray) -> None:
        self.live.set_feature_points(views.feature_points_view(msg))

    def _on_target(self, msg: TargetPose) -> None:
        position, yaw = rack_pose_from_msg(msg)
        self.live.set_target(Pose(tuple(float(v) for v in position), yaw), msg.name)

    def _on_progress(self, msg: TrainingProgress) -> None:
        self.live.add_progress(views.progress_view(msg, self._condition_names))

    def _on_sample(self, msg: SampleTrajectory) -> None:
        self.live.set_sample(views.ee_path_view(msg))

    def _on_log(self, msg: Log) -> None:
        if msg.name in WATCHED_NODES and msg.level >= Log.WARN:
            level = "ERROR" if msg.level >= Log.ERROR else "WARN"
            self.live.add_log(msg.name, level, msg.msg)

    def _on_save_condition(self, request, response):
        try:
            position, yaw = rack_pose_from_msg(request.condition)
            stored = append_condition(self.conditions_path, request.set_name, NewCondition(
                request.condition.name, tuple(float(v) for v in position), yaw,
                int(request.condition.grasp)))
        except (ConditionFileError, MessageError, OSError) as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().warning(f"save_condition refused: {exc}")
            return response
        x, y, z = stored.rack_position
        response.success = True
        response.message = (f"saved condition {stored.name!r} in set {request.set_name!r} of "
                            f"{self.conditions_path.name}: rack at ({x:.4f}, {y:.4f}, {z:.4f}) m, "
                            f"yaw {stored.rack_yaw:.4f} rad, grasp {stored.grasp}")
        self.get_logger().info(response.message)
        return response


def _guarded(node: Node, topic: str, callback):
    """`callback` that drops a message it cannot use with a throttled warning instead of
    raising into the executor, which would stop the node."""
    def guarded(msg) -> None:
        try:
            callback(msg)
        except Exception as exc:             # noqa: BLE001 - no message may stop the node
            node.live.note_dropped(topic, str(exc))
            node.get_logger().warning(f"dropped a message on {topic}: {exc}",
                                      throttle_duration_sec=LOG_THROTTLE_S)
    return guarded


def main(args=None) -> int:
    rclpy.init(args=args)
    logger = rclpy.logging.get_logger("gps_gui")
    node = server = None
    try:
        node = GuiNode()
        address = (node.params.host, node.params.port)
        server = GuiHttpServer(address, node.backend, node.get_logger())
    except (ValueError, OSError) as exc:          # ConfigError is a ValueError
        logger.fatal(f"cannot start: {exc}")
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
        return 1
    threading.Thread(target=server.serve_forever, name="gui-http", daemon=True).start()
    host, port = server.server_address[:2]
    node.get_logger().info(f"serving the teleop page on http://{host}:{port}/ and the "
                           f"dashboard on http://{host}:{port}/dashboard; conditions from "
                           f"{node.conditions_path} (set {node.params.condition_set!r})")
    try:
        with ends_at_shutdown():
            rclpy.spin(node)
    finally:
        server.shutdown()
        server.server_close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
