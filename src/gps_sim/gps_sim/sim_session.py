"""The simulator as the sim node runs it, without ROS: one control step per call, a sim clock
that never runs backwards, and bad commands turned into zero torque instead of exceptions.

The node (gps_sim.sim_node) only converts between messages and these calls, so the stepping
rules are plain code that a test can drive directly:

- reset(condition) starts an episode and returns its step 0;
- check(values) turns received effort values into the command to apply (gps_sim.effort_command):
  clipped to the limits, or zero torque with the reason when they are malformed;
- step(command) applies it for one control period and returns the next step; a diverged
  simulation restarts the current condition instead of stopping the node;
- the clock is the episode's simulated time plus an offset that grows at every reset, so
  `/clock` and the message stamps increase across episodes (a ROS time jump backwards would make
  sim-time listeners drop their buffers).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gps_sim.conditions import AppearanceRandomisation
from gps_sim.effort_command import CommandError, EffortCommand, check_effort_command, zero_command
from gps_sim.env import HangerEnv, JointStateReading


@dataclass(frozen=True)
class SimStep:
    """What the node publishes after a reset or a control step.

    `stamp` is the sim clock (s); `image` is None when images are off; `restarted` says why
    the episode was restarted instead of stepped (empty when the step went normally)."""

    condition: str
    step_index: int
    stamp: float
    joints: JointStateReading
    image: np.ndarray | None
    restarted: str = ""


@dataclass
class SessionCounts:
    """Totals since start-up, for diagnostics."""

    steps: int = 0
    clipped: int = 0
    rejected: int = 0
    restarts: int = 0


class SimSession:
    """Steps a HangerEnv one control period per command; see the module docstring."""

    def __init__(self, env: HangerEnv, seed: int = 0, image_size: int | None = None) -> None:
        """`image_size` None: no images; otherwise the size of the square camera frames."""
        self.env = env
        self.seed = seed
        self.image_size = image_size
        self.counts = SessionCounts()
        self._resets = 0
        self._clock_offset = 0.0
        self._last_stamp: float | None = None

    @property
    def control_dt(self) -> float:
        return self.env.task.control_dt

    @property
    def condition_names(self) -> list[str]:
        return [c.name for c in self.env.conditions]

    def reset(self, condition: int | str, rack_offset=None, rack_yaw_offset: float = 0.0,
              appearance: AppearanceRandomisation | None = None) -> SimStep:
        """Start an episode in `condition` (index or name), the rack moved by `rack_offset`
        (m) from the condition's position and turned by `rack_yaw_offset` (rad) from its yaw,
        its look drawn from `appearance` (None: the condition's), and return its step 0. Reset
        k (counting from 0) draws the start-pose noise and the look with seed + k. Raises
        ValueError, naming the known conditions, for an unknown one, and for bad offsets or a
        rack pose out of reach."""
        self.env.reset(condition, seed=self.seed + self._resets, rack_offset=rack_offset,
                       rack_yaw_offset=rack_yaw_offset, appearance=appearance)
        self._resets += 1
        if self._last_stamp is not None:
            self._clock_offset = self._last_stamp + self.control_dt
        return self._output()

    def check(self, values) -> tuple[EffortCommand, str]:
        """The command to apply for received effort values, and why they were rejected (empty
        when accepted): a rejected command becomes zero torque. Counts clips and rejections."""
        try:
            command, rejected = check_effort_command(values), ""
        except CommandError as exc:
            command, rejected = zero_command(), str(exc)
        self.counts.rejected += bool(rejected)
        self.counts.clipped += command.any_clipped
        return command, rejected

    def step(self, command: EffortCommand | None = None) -> SimStep:
        """Apply `command` (None: zero torque) for one control period; return the next step."""
        command = zero_command() if command is None else command
        try:
            self.env.step(command.torque)
        except RuntimeError as exc:
            self.counts.restarts += 1
            restart = self.reset(self.env.condition.name)
            return replace(restart,
                           restarted=f"{exc}; restarted condition {restart.condition!r}")
        self.counts.steps += 1
        return self._output()

    def move_rack(self, position, yaw: float) -> None:
        """Send the left arm to hold the rack at `position` (robot frame, m) and `yaw` (rad);
        raises ValueError for a pose out of the arm's reach."""
        self.env.move_rack(position, yaw)

    def _output(self) -> SimStep:
        stamp = self._clock_offset + self.env.time
        self._last_stamp = stamp
        image = None if self.image_size is None else self.env.render(self.image_size)
        return SimStep(condition=self.env.condition.name, step_index=self.env.step_index,
                       stamp=stamp, joints=self.env.joint_state(), image=image)
