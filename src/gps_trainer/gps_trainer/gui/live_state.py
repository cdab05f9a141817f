"""The latest of everything the pages show, written by the node's ROS callbacks and read by the
web server's threads. It is a view of the topics, not state of its own: each field is the last
message seen (the target is the last one on /left_arm_target, whoever sent it), and a restart
of the GUI loses nothing the other nodes need."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import asdict, dataclass

from gps_trainer.gui.page_requests import Pose

FEATURE_POINTS_MAX_AGE_S = 1.0
"""Feature points older than this are not drawn: the CNN policy is no longer running."""
PROGRESS_KEPT = 2000
"""TrainingProgress messages kept for the dashboard (one per iteration)."""
LOG_LINES_KEPT = 6


@dataclass(frozen=True)
class TrialStatus:
    """The last trial's outcome as the page shows it; `id` grows with every change."""

    id: int = 0
    state: str = "idle"           # idle, sent, running, succeeded, failed, refused
    message: str = "no trial run yet"
    step: int = 0
    t: int = 0


class LiveState:
    """Thread-safe holder of the latest messages, already converted by gps_trainer.gui.views."""

    def __init__(self, initial_target: Pose) -> None:
        self._lock = threading.Lock()
        self._joints: dict | None = None
        self._image = None
        self._frames = 0
        self._target = initial_target
        self._target_name = ""                  # "" until a target is seen on the topic
        self._feature_points: tuple[list, float] | None = None
        self._trial = TrialStatus()
        self._progress: deque[dict] = deque(maxlen=PROGRESS_KEPT)
        self._progress_count = 0
        self._sample: dict | None = None
        self._samples = 0
        self._logs: deque[dict] = deque(maxlen=LOG_LINES_KEPT)
        self._dropped: dict[str, str] = {}

    # Writers (ROS callbacks) ---------------------------------------------------------------

    def set_joints(self, view: dict) -> None:
        with self._lock:
            self._joints = view

    def set_image(self, msg) -> None:
        with self._lock:
            self._image = msg
            self._frames += 1

    def set_target(self, pose: Pose, name: str) -> None:
        with self._lock:
            self._target, self._target_name = pose, name

    def set_feature_points(self, points: list) -> None:
        with self._lock:
            self._feature_points = (points, time.monotonic())

    def set_trial(self, state: str, message: str, step: int = 0, t: int = 0) -> None:
        with self._lock:
            self._trial = TrialStatus(self._trial.id + 1, state, message, step, t)

    def add_progress(self, view: dict) -> None:
        with self._lock:
            self._progress.append(view)
            self._progress_count += 1

    def set_sample(self, view: dict) -> None:
        with self._lock:
            self._sample = view
            self._samples += 1

    def add_log(self, node: str, level: str, text: str) -> None:
        with self._lock:
            self._logs.append({"node": node, "level": level, "text": text})

    def note_dropped(self, topic: str, reason: str) -> None:
        with self._lock:
            self._dropped[topic] = reason

    # Readers (web server threads) ----------------------------------------------------------

    @property
    def target(self) -> Pose:
        with self._lock:
            return self._target

    def latest_image(self):
        """(frame count, last sensor_msgs/Image or None)."""
        with self._lock:
            return self._frames, self._image

    def snapshot(self) -> dict:
        """What the teleop page polls: everything but the frame itself and the progress."""
        with self._lock:
            points = None
            if self._feature_points is not None:
                pts, stamp = self._feature_points
                if time.monotonic() - stamp <= FEATURE_POINTS_MAX_AGE_S:
                    points = pts
            return {
                "joints": self._joints,
                "frames": self._frames,
                "target": {"x": self._target.position[0], "y": self._target.position[1],
                           "z": self._target.position[2], "yaw": self._target.yaw,
                           "name": self._target_name},
                "feature_points": points,
                "trial": asdict(self._trial),
                "progress_count": self._progress_count,
                "samples": self._samples,
                "logs": list(self._logs),
                "dropped": dict(self._dropped),
            }

    def progress(self) -> dict:
        """What the dashboard draws: every kept iteration and the latest sample's EE path."""
        with self._lock:
            return {"records": list(self._progress), "count": self._progress_count,
                    "sample": self._sample, "samples": self._samples}
