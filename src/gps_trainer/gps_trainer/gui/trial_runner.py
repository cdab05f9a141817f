"""One trial of the current policy through the controller's RunTrial action: the goal goes out
from a web-server thread, the controller's answers come back on the node's executor and are
written to LiveState.trial, which the page polls. One trial at a time; a trial whose result
has not come within its deadline (the controller died) no longer blocks the next one."""

from __future__ import annotations

import threading
import time

from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient

from gps_msgs.action import RunTrial
from gps_trainer.gui.live_state import LiveState
from gps_trainer.gui.page_requests import RequestError
from gps_trainer.gui.ros_calls import SERVICE_WAIT_S, PeerUnavailable

ACTION_NAME = "/gps_controller/run_trial"
RESULT_WAIT_S = 60.0
"""Time allowed for a trial's result on top of 10 x its duration at the task's control rate."""


class TrialRunner:
    """Sends RunTrial goals and reports their feedback and result to `live`."""

    def __init__(self, node, live: LiveState, control_dt: float,
                 action_name: str = ACTION_NAME) -> None:
        self._client = ActionClient(node, RunTrial, action_name)
        self._name = action_name
        self._live = live
        self._control_dt = control_dt
        self._lock = threading.Lock()
        self._busy = False
        self._deadline = 0.0

    def start(self, goal: RunTrial.Goal, label: str) -> str:
        """Send `goal` (described by `label`); return the message for the page. Raises
        RequestError while a trial runs and PeerUnavailable without an action server."""
        with self._lock:
            if self._busy and time.monotonic() < self._deadline:
                raise RequestError("a trial is already running; wait for its result")
            if not self._client.wait_for_server(timeout_sec=SERVICE_WAIT_S):
                message = (f"trial refused: no action server {self._name} (is the controller "
                           f"node gps_controller running?)")
                self._live.set_trial("refused", message)
                raise PeerUnavailable(message)
            self._busy = True
            self._deadline = time.monotonic() + RESULT_WAIT_S + 10 * goal.t * self._control_dt
        message = f"trial sent: {label}"
        self._live.set_trial("sent", message, 0, goal.t)
        future = self._client.send_goal_async(goal, feedback_callback=self._on_feedback)
        future.add_done_callback(lambda f: self._on_goal_response(f, label, goal.t))
        return message

    def _on_goal_response(self, future, label: str, t: int) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self._finish("failed", f"trial rejected by the controller: {label}")
            return
        self._live.set_trial("running", f"trial running: {label}", 0, t)
        handle.get_result_async().add_done_callback(lambda f: self._on_result(f, label))

    def _on_feedback(self, feedback_msg) -> None:
        fb = feedback_msg.feedback
        self._live.set_trial("running", f"trial running: step {fb.step} of {fb.t}", fb.step, fb.t)

    def _on_result(self, future, label: str) -> None:
        answer = future.result()
        result = answer.result
        sample = result.sample
        if answer.status == GoalStatus.STATUS_SUCCEEDED and result.success:
            detail = f"{sample.t} steps recorded"
            if sample.aborted:
                detail += f", aborted: {sample.abort_reason}"
            self._finish("succeeded", f"trial done ({label}): {result.message}; {detail}",
                         sample.t, sample.t)
        else:
            reason = result.message or f"goal status {answer.status}"
            self._finish("failed", f"trial failed ({label}): {reason}")

    def _finish(self, state: str, message: str, step: int = 0, t: int = 0) -> None:
        self._live.set_trial(state, message, step, t)
        with self._lock:
            self._busy = False
