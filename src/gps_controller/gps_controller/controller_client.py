"""The controller node's interface as another node uses it: push policy updates, run trials.

Every call blocks the calling thread while an executor spins the node in another thread (see
gps_controller.ros_calls); the trainer node and the tests use it the same way.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

import numpy as np
from builtin_interfaces.msg import Time
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

from gps_controller.controller_policies import NOT_HELD, PROBE
from gps_controller.messages import SampleRecord, sample_from_msg
from gps_controller.ros_calls import CallTimeout, wait_for
from gps_msgs.action import RunTrial
from gps_msgs.msg import PolicyUpdate
from unique_identifier_msgs.msg import UUID

POLICY_WAIT_S = 5.0
GOAL_ANSWER_S = 10.0
GOAL_SENDS = 2
PROBE_ANSWER_S = 2.0
NOT_HELD_RETRY_S = 0.05
UPDATE_QOS = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.VOLATILE)


class TrialFailed(RuntimeError):
    """The controller refused or aborted a trial; the message says why."""

    def __init__(self, message: str, record: SampleRecord | None = None) -> None:
        super().__init__(message)
        self.record = record


@dataclass(frozen=True)
class TrialRequest:
    """What a trial runs: a policy version on a condition for T steps, with seeded noise, and the
    condition's end-effector geometry (points in the tool frame, targets in the base frame)."""

    policy_version: int
    condition: int
    T: int
    ee_points_tool: np.ndarray
    ee_targets: np.ndarray
    noise_seed: int = 0
    noise_scale: float = 1.0
    noise_smooth_sigma: float = 0.0
    noise_renormalize: bool = True
    record_images: bool = False
    iteration: int = 0
    trial_id: int = 0
    start_stamp: Time = field(default_factory=Time)

    def goal(self) -> RunTrial.Goal:
        goal = RunTrial.Goal()
        goal.policy_version, goal.condition, goal.t = self.policy_version, self.condition, self.T
        goal.iteration, goal.trial_id = self.iteration, self.trial_id
        goal.noise_seed, goal.noise_scale = self.noise_seed, float(self.noise_scale)
        goal.noise_smooth_sigma = float(self.noise_smooth_sigma)
        goal.noise_renormalize = self.noise_renormalize
        goal.record_images = self.record_images
        goal.ee_points_tool = np.asarray(self.ee_points_tool, float).ravel().tolist()
        goal.ee_targets = np.asarray(self.ee_targets, float).ravel().tolist()
        goal.start_stamp = self.start_stamp
        return goal


class ControllerClient:
    """Policy updates to `<controller>/policy_update`, trials on `<controller>/run_trial`."""

    def __init__(self, node, controller: str = "/gps_controller",
                 goal_answer_s: float = GOAL_ANSWER_S) -> None:
        self.node = node
        self.goal_answer_s = goal_answer_s
        self.update_pub = node.create_publisher(PolicyUpdate, f"{controller}/policy_update",
                                                UPDATE_QOS)
        self.trials = ActionClient(node, RunTrial, f"{controller}/run_trial")

    def wait_until_ready(self, timeout: float) -> None:
        """Wait until the controller answers trial goals. Its action server being discovered
        means this client's requests reach it; its answers reach this client only once its
        response writers have matched this client's readers, which can happen later (a goal
        answered before is lost: a restarted trainer's first goal once waited in vain). So a
        probe goal (policy version PROBE, refused at once, moves nothing) is sent until its
        answer comes back."""
        deadline = time.monotonic() + timeout
        if not self.trials.wait_for_server(timeout_sec=timeout):
            raise CallTimeout(f"the controller's run_trial action is not up after {timeout} s")
        probe = RunTrial.Goal()
        probe.policy_version = PROBE
        while True:
            try:
                handle = wait_for(self.trials.send_goal_async(probe), PROBE_ANSWER_S,
                                  "run_trial probe")
                if handle.accepted:
                    wait_for(handle.get_result_async(), PROBE_ANSWER_S, "run_trial probe result")
                return
            except CallTimeout:
                if time.monotonic() > deadline:
                    raise CallTimeout(f"the controller's run_trial answers did not come back "
                                      f"within {timeout} s") from None

    def push(self, update: PolicyUpdate) -> None:
        """Publish a policy update (the controller validates and stores it)."""
        self.update_pub.publish(update)

    def run_trial(self, request: TrialRequest, timeout: float,
                  policy_wait: float = POLICY_WAIT_S) -> tuple[SampleRecord, np.ndarray]:
        """Run one trial; returns the sample and the final state, or raises TrialFailed. A
        policy pushed just before travels on a topic, the goal on an action, so the goal may
        come first: while the controller refuses it for a version it does not hold yet, the
        goal is sent again, for up to `policy_wait` s (a refused goal moves nothing)."""
        deadline = time.monotonic() + policy_wait
        while True:
            answer = self._trial_result(request.goal(), timeout)
            if answer.success or NOT_HELD not in answer.message or time.monotonic() > deadline:
                break
            time.sleep(NOT_HELD_RETRY_S)
        record = sample_from_msg(answer.sample) if answer.sample.t else None
        if not answer.success:
            raise TrialFailed(answer.message, record)
        return record, np.asarray(answer.final_state, float)

    def _trial_result(self, goal: RunTrial.Goal, timeout: float) -> RunTrial.Result:
        """The result of one trial goal. When the goal's answer (accepted or not) does not come
        within goal_answer_s (a trainer once waited in vain, in about 1,340 trials), the result
        is asked for by the goal's id, which this client chose: the controller answers it once
        the trial ends if it holds the goal, and at once with STATUS_UNKNOWN if the goal never
        reached it, which then is sent again (GOAL_SENDS in all)."""
        for _ in range(GOAL_SENDS):
            goal_id = UUID(uuid=list(uuid.uuid4().bytes))
            try:
                handle = wait_for(self.trials.send_goal_async(goal, goal_uuid=goal_id),
                                  self.goal_answer_s, "run_trial goal")
            except CallTimeout:
                self.node.get_logger().warning(
                    f"trial {goal.trial_id}: the goal's answer did not come within "
                    f"{self.goal_answer_s:.1f} s; asking the controller for its result")
                handle = ClientGoalHandle(self.trials, goal_id,
                                          RunTrial.Impl.SendGoalService.Response(accepted=True))
            if not handle.accepted:
                raise TrialFailed("the controller rejected the trial goal")
            response = wait_for(handle.get_result_async(), timeout, "run_trial result")
            if response.status != GoalStatus.STATUS_UNKNOWN:
                return response.result
        raise CallTimeout(f"trial {goal.trial_id}: the controller did not receive the goal, "
                          f"sent {GOAL_SENDS} times")
