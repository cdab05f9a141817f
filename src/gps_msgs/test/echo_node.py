"""A separate process for the transport tests: echoes every gps_msgs message type from
/gps_test/<Type>/in to /gps_test/<Type>/out unchanged, and serves the RunTrial action by
returning a sample whose arrays are a known function of the goal, with one feedback per step.
Prints READY once its endpoints exist."""

import sys
import time

import numpy as np
import rclpy
from rclpy.action import ActionServer
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

import gps_msgs.msg
from gps_msgs.action import RunTrial

ECHOED = ("Tensor", "LinearGaussianController", "PolicyWeights", "PolicyUpdate",
          "SampleTrajectory", "TargetPose", "TrainingProgress")
QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
TRIAL_STEP_S = 0.01
"""Time the served trial takes per step: feedback goes out at a pace a client can follow."""


def trial_arrays(goal, dim_x: int, dim_u: int):
    """The sample the action server returns: x[t, i] = seed + t + i / 100, u = -x[:, :dim_u]."""
    t = np.arange(goal.t)[:, None]
    x = goal.noise_seed + t + np.arange(dim_x)[None, :] / 100.0
    return x, -x[:, :dim_u]


class Echo(Node):
    def __init__(self):
        super().__init__("gps_msgs_echo")
        self._keep = []
        for name in ECHOED:
            msg_type = getattr(gps_msgs.msg, name)
            pub = self.create_publisher(msg_type, f"/gps_test/{name}/out", QOS)
            self._keep.append(self.create_subscription(
                msg_type, f"/gps_test/{name}/in", pub.publish, QOS))
        self._action = ActionServer(self, RunTrial, "/gps_test/run_trial", self._run_trial)

    def _run_trial(self, handle):
        goal = handle.request
        dim_x, dim_u = 4, 2
        for step in range(goal.t):
            time.sleep(TRIAL_STEP_S)
            feedback = RunTrial.Feedback()
            feedback.step, feedback.t = step + 1, goal.t
            handle.publish_feedback(feedback)
        x, u = trial_arrays(goal, dim_x, dim_u)
        result = RunTrial.Result()
        result.success, result.message = True, f"ran {goal.t} steps"
        sample = result.sample
        sample.condition, sample.iteration, sample.trial_id = goal.condition, goal.iteration, goal.trial_id
        sample.policy_version, sample.noise_seed, sample.t, sample.dt = (
            goal.policy_version, goal.noise_seed, goal.t, 0.05)
        sample.dim_x, sample.dim_u = dim_x, dim_u
        sample.x, sample.u = x.ravel(), u.ravel()
        handle.succeed()
        return result


def main():
    rclpy.init(args=sys.argv)
    node = Echo()
    print("READY", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


if __name__ == "__main__":
    main()
