"""The pages' API: each method answers one request of the web server with a JSON-able dict,
turning a checked request into the ROS message, service call or action goal that makes the
change, so the command line could do the same. Refusals raise RequestError (the page shows
the message) or PeerUnavailable (the node that should act is not running)."""

from __future__ import annotations

from dataclasses import dataclass

from gps_controller.messages import target_pose_msg
from gps_msgs.action import RunTrial
from gps_msgs.srv import SaveCondition
from gps_sim.conditions import HangerCondition, HangerTaskConfig, condition_sets
from gps_sim.env import HangerEnv
from gps_sim.scene import ROBOT_BODY
from gps_sim.sim_client import set_condition_request
from gps_trainer.gui import page_requests as requests
from gps_trainer.gui.live_state import LiveState
from gps_trainer.gui.page_requests import Pose, RequestError
from gps_trainer.gui.ros_calls import call_service
from gps_trainer.gui.target_limits import TargetLimits
from gps_trainer.gui.trial_runner import TrialRunner
from gps_trainer.gui.views import camera_png
from gps_trainer.ros_robot import ConditionGeometry, condition_geometry

TELEOP_TARGET_NAME = "teleop"
STEP_SIZES = {"x": 0.01, "y": 0.01, "z": 0.01, "yaw": 0.02}
"""The step buttons' increments: metres, and radians for yaw."""


@dataclass
class RosPorts:
    """The node's ROS interfaces the page acts through."""

    publish_target: object          # callable(TargetPose)
    reset_client: object            # rclpy client of gps_msgs/srv/SetCondition
    save_client: object             # rclpy client of gps_msgs/srv/SaveCondition
    trials: TrialRunner


class PageBackend:
    """Answers the pages' requests for one conditions file and condition set."""

    def __init__(self, ports: RosPorts, live: LiveState, conditions_file: str,
                 condition_set: str, conditions: tuple[HangerCondition, ...],
                 task: HangerTaskConfig) -> None:
        self.ports, self.live = ports, live
        self.conditions_file, self.condition_set = conditions_file, condition_set
        self.conditions = {c.name: c for c in conditions}
        self.task = task
        self.limits = TargetLimits.from_task(task)
        self._geometries: dict[str, ConditionGeometry] = {}

    # Reading ----------------------------------------------------------------------------------

    def config(self) -> dict:
        return {
            "conditions_file": self.conditions_file,
            "condition_set": self.condition_set,
            "conditions": [{"name": c.name, "position": list(c.rack_position),
                            "yaw": c.rack_yaw, "grasp": c.grasp}
                           for c in self.conditions.values()],
            "sets": condition_sets(self.conditions_file),
            "grasps": len(self.task.initial_right_arm_q),
            "episode_steps": self.task.episode_steps,
            "limits": self.limits.as_dict(),
            "steps": STEP_SIZES,
        }

    def state(self) -> dict:
        return self.live.snapshot()

    def progress(self) -> dict:
        return self.live.progress()

    def camera_png(self) -> bytes | None:
        """The latest camera frame as PNG, or None before the first one."""
        _, msg = self.live.latest_image()
        return None if msg is None else camera_png(msg)

    # Acting -----------------------------------------------------------------------------------

    def move_target(self, body) -> dict:
        pose = requests.target_pose(body, self.live.target, self.limits)
        self._publish_target(pose, TELEOP_TARGET_NAME, 0)
        x, y, z = pose.position
        return {"message": f"target sent: x {x:.3f} m, y {y:.3f} m, z {z:.3f} m, "
                           f"yaw {pose.yaw:.3f} rad"}

    def reset(self, body) -> dict:
        """Reset both arms to a condition (the sim's set_condition), then send that condition's
        pose as the target, so the topic and the rack agree and steps start from there."""
        name = requests.condition_name(body)
        response = call_service(self.ports.reset_client, set_condition_request(name),
                                "the sim node gps_sim")
        if not response.success:
            raise RequestError(f"reset refused: {response.message}")
        condition = self.conditions.get(name)
        if condition is not None:
            self._publish_target(Pose(tuple(condition.rack_position), condition.rack_yaw),
                                 name, condition.grasp)
        return {"message": f"arms reset: {response.message}"}

    def save(self, body) -> dict:
        """Save the current target as a named condition through /gps_gui/save_condition."""
        req = requests.save_request(body)
        pose = self.live.target
        request = SaveCondition.Request()
        request.condition = target_pose_msg(req.name, pose.position, pose.yaw, req.grasp,
                                            frame_id=ROBOT_BODY)
        request.set_name = req.set_name
        response = call_service(self.ports.save_client, request, "the GUI node gps_gui")
        if not response.success:
            raise RequestError(f"not saved: {response.message}")
        return {"message": response.message}

    def run_trial(self, body) -> dict:
        req = requests.trial_request(body)
        names = list(self.conditions)
        if req.condition not in names:
            raise RequestError(f"unknown condition {req.condition!r}; known in set "
                               f"{self.condition_set!r}: {names}")
        geometry = self._geometry(req.condition)
        goal = RunTrial.Goal(policy_version=req.policy_version,
                             condition=names.index(req.condition), t=self.task.episode_steps,
                             noise_scale=0.0, record_images=False,
                             ee_points_tool=geometry.ee_points_tool.ravel().tolist(),
                             ee_targets=geometry.ee_targets.ravel().tolist())
        label = (f"condition {req.condition} (#{goal.condition}), policy version "
                 f"{req.policy_version}, {goal.t} steps, mean action")
        return {"message": self.ports.trials.start(goal, label)}

    def _geometry(self, name: str) -> ConditionGeometry:
        """The condition's end-effector geometry for the controller (read off the task model
        once per condition)."""
        if name not in self._geometries:
            env = HangerEnv([self.conditions[name]], self.task, render_observations=False)
            try:
                self._geometries[name] = condition_geometry(env)[0]
            finally:
                env.close()
        return self._geometries[name]

    def _publish_target(self, pose: Pose, name: str, grasp: int) -> None:
        self.ports.publish_target(target_pose_msg(name, pose.position, pose.yaw, grasp,
                                                  frame_id=ROBOT_BODY))
        self.live.set_target(pose, name)
