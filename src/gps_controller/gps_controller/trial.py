"""One trial as the controller runs it, without ROS: the observation built exactly as in training,
the policy's action made safe, and everything recorded.

At step t the controller reads the arm (q_t, qdot_t) and, when needed, the camera frame I_t; it
builds the full state x_t = [q, qdot, p_ee - p_target, pdot_ee] and the configuration
o_t = [q, qdot, p_ee, pdot_ee] (gps_controller.layout) with the arm's forward kinematics, runs the
policy with the exploration noise eps_t, and publishes the safe torque. The sample records
x_t, the policy's action u_t (before clipping, as the trainer's in-process rollouts do, so that
u_t = K_t x_t + k_t + L_t eps_t holds for the trajectory update), eps_t, o_t and I_t. The state
after the last action is kept as the final state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.controller_policies import ControllerPolicy
from gps_controller.kinematics import ArmKinematics
from gps_controller.layout import Layout
from gps_controller.messages import SampleRecord
from gps_controller.noise import NoiseConfig, exploration_noise
from gps_controller.safety import SafeTorque, safe_torque
from gps_controller.sensor_reading import JointReading, stamp_ns


class TrialError(ValueError):
    """A trial request that cannot run (unknown policy, wrong sizes, ...)."""


@dataclass(frozen=True, eq=False)
class TrialPlan:
    """A checked trial request: the policy, T steps, the noise (T x dU, scaled), the
    end-effector geometry of the condition and the sample's bookkeeping."""

    policy: ControllerPolicy
    T: int
    noise: np.ndarray
    ee_points_tool: np.ndarray
    ee_targets: np.ndarray
    record_images: bool
    condition: int = 0
    iteration: int = 0
    trial_id: int = 0
    noise_seed: int = 0
    start_stamp_ns: int = 0

    @property
    def needs_images(self) -> bool:
        return self.policy.uses_images or self.record_images


def trial_noise(T: int, dU: int, seed: int, scale: float, smooth_sigma: float,
                renormalize: bool) -> np.ndarray:
    """scale * eps (T x dU) from `seed`, smoothed along time when smooth_sigma > 0 (the same
    generator as the trainer's, gps_controller.noise)."""
    config = (NoiseConfig(smooth=True, sigma=smooth_sigma, renormalize=renormalize)
              if smooth_sigma > 0 else NoiseConfig(smooth=False))
    return scale * exploration_noise(T, dU, np.random.default_rng(seed), config)


def plan_trial(goal, policy: ControllerPolicy, layout: Layout) -> TrialPlan:
    """A TrialPlan from a RunTrial goal and its policy; TrialError says what does not fit."""
    T = int(goal.t)
    if T <= 0:
        raise TrialError(f"t must be positive, got {T}")
    if policy.horizon is not None and T > policy.horizon:
        raise TrialError(f"t = {T} exceeds the controller's horizon {policy.horizon}")
    if policy.kind == "linear_gaussian" and policy.condition != goal.condition:
        raise TrialError(f"policy version {policy.version} belongs to condition "
                         f"{policy.condition}, the trial is on condition {goal.condition}")
    if not (np.isfinite(goal.noise_scale) and goal.noise_scale >= 0):
        raise TrialError(f"noise_scale must be finite and >= 0, got {goal.noise_scale}")
    if not (np.isfinite(goal.noise_smooth_sigma) and goal.noise_smooth_sigma >= 0):
        raise TrialError(f"noise_smooth_sigma must be finite and >= 0, got "
                         f"{goal.noise_smooth_sigma}")
    n = layout.n_ee_points
    points = _points("ee_points_tool", goal.ee_points_tool, n)
    targets = _points("ee_targets", goal.ee_targets, n)
    noise = trial_noise(T, layout.dU, goal.noise_seed, goal.noise_scale,
                        goal.noise_smooth_sigma, goal.noise_renormalize)
    return TrialPlan(policy, T, noise, points, targets, bool(goal.record_images),
                     goal.condition, goal.iteration, goal.trial_id, goal.noise_seed,
                     stamp_ns(goal.start_stamp))


class Trial:
    """Steps a TrialPlan: step() per control period, then finish() or abort()."""

    def __init__(self, plan: TrialPlan, layout: Layout, kinematics: ArmKinematics,
                 effort_limits: np.ndarray, dt: float) -> None:
        self.plan = plan
        self.layout = layout
        self.kinematics = kinematics
        self.effort_limits = effort_limits
        self.dt = dt
        T = plan.T
        self.X = np.zeros((T, layout.dX))
        self.U = np.zeros((T, layout.dU))
        self.O = np.zeros((T, layout.dO_config))
        self.images: np.ndarray | None = None   # T x H x W x 3, allocated at the first frame
        self.t = 0
        self.clipped_steps = 0

    @property
    def done(self) -> bool:
        return self.t >= self.plan.T

    def observe(self, reading: JointReading) -> tuple[np.ndarray, np.ndarray]:
        """(x, o_config) for a joint reading under this trial's geometry."""
        points, velocities = self.kinematics.points(reading.q, reading.qdot,
                                                    self.plan.ee_points_tool)
        x = self.layout.assemble_state(reading.q, reading.qdot, points, velocities,
                                       self.plan.ee_targets)
        return x, self.layout.assemble_config(reading.q, reading.qdot, points, velocities)

    def step(self, reading: JointReading, image: np.ndarray | None) -> SafeTorque:
        """Run the policy on this step's reading (and frame); record; return the safe torque.
        A non-finite action comes back as zero torque with its fault, unrecorded."""
        if self.done:
            raise TrialError("the trial has already run all its steps")
        t, plan = self.t, self.plan
        x, config = self.observe(reading)
        action = plan.policy.act(t, x, config, image, plan.noise[t])
        command = safe_torque(action, self.effort_limits)
        if command.fault:
            return command
        self.X[t], self.U[t], self.O[t] = x, action, config
        if plan.record_images:
            if self.images is None:
                self.images = np.empty((plan.T, *np.shape(image)), np.uint8)
            self.images[t] = image
        self.clipped_steps += command.clipped
        self.t += 1
        return command

    def finish(self, reading: JointReading) -> tuple[SampleRecord, np.ndarray]:
        """The complete sample and the final state x_T (from the reading after the last action)."""
        if not self.done:
            raise TrialError(f"the trial has run {self.t} of {self.plan.T} steps")
        return self._record(aborted=False, reason=""), self.observe(reading)[0]

    def abort(self, reason: str) -> SampleRecord:
        """The sample of the steps run so far, marked aborted with `reason`."""
        return self._record(aborted=True, reason=reason)

    def _record(self, aborted: bool, reason: str) -> SampleRecord:
        t, plan = self.t, self.plan
        images = self.images[:t] if self.images is not None and t else None
        return SampleRecord.with_layout(
            self.layout, X=self.X[:t].copy(), U=self.U[:t].copy(), noise=plan.noise[:t].copy(),
            obs_config=self.O[:t].copy(), images=images, condition=plan.condition,
            iteration=plan.iteration, trial_id=plan.trial_id, policy_version=plan.policy.version,
            noise_seed=plan.noise_seed, dt=self.dt, aborted=aborted, abort_reason=reason)


def _points(name: str, values, n: int) -> np.ndarray:
    values = np.asarray(values, float)
    if values.size != 3 * n:
        raise TrialError(f"{name} has {values.size} values, expected {n} points x 3")
    if not np.all(np.isfinite(values)):
        raise TrialError(f"{name} contains NaN or infinity")
    return values.reshape(n, 3)
