"""Where the learner's samples come from: the in-process simulator, or the robot over ROS.

A robot runs a linear-Gaussian controller on a condition with given exploration noise and
returns the Rollout, evaluates a network policy alone on a set of conditions, and records pose
pre-training frames (the rack at a given pose: one camera frame and the rack's target points).
DirectRobot steps gps_sim's HangerEnv in this process; gps_trainer.ros_robot.RosRobot does the same through
the sim (or real) robot's topics, the controller node and its RunTrial action. The learner
(gps_trainer.train_gps) does not know which one it drives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_sim.conditions import AppearanceRandomisation
from gps_sim.env import HangerEnv
from gps_trainer.evaluation import ConditionResult, evaluate
from gps_trainer.pose_pretraining import EnvPoseSource
from gps_trainer.rollout import Rollout, rollout


class Robot(Protocol):
    def lg_rollout(self, condition: int, controller: LinearGaussianController,
                   noise: np.ndarray, noise_seed: int, iteration: int,
                   rack_offset: np.ndarray) -> Rollout: ...

    def evaluate(self, policy: GaussianPolicy, set_name: str, trials: int, seed: int,
                 frames_dir: Path | None, log) -> list[ConditionResult]: ...

    def pose_frame(self, condition: int, rack_position, rack_yaw: float
                   ) -> tuple[np.ndarray, np.ndarray]: ...


class DirectRobot:
    """The training conditions' HangerEnv, stepped in this process; `make_env(set_name)` builds
    the environment of another condition set for evaluation. Training samples take their look
    from `appearance`, pose frames from `pose_appearance` (None: each condition's own look);
    evaluation always sees the conditions' own look."""

    def __init__(self, env: HangerEnv, make_env, seed: int,
                 appearance: AppearanceRandomisation | None = None,
                 pose_appearance: AppearanceRandomisation | None = None) -> None:
        self.env = env
        self.make_env = make_env
        self.seed = seed
        self.appearance = appearance
        self._pose_source = EnvPoseSource(env, appearance=pose_appearance)

    def lg_rollout(self, condition: int, controller: LinearGaussianController,
                   noise: np.ndarray, noise_seed: int, iteration: int,
                   rack_offset: np.ndarray) -> Rollout:
        reset_seed = (self.seed * 1000 + iteration) * 100 + condition
        return rollout(self.env, lambda t, x, o, e: controller.act(t, x, e), condition, noise,
                       reset_seed, rack_offset, self.appearance)

    def evaluate(self, policy: GaussianPolicy, set_name: str, trials: int, seed: int,
                 frames_dir: Path | None, log) -> list[ConditionResult]:
        return evaluate(self.make_env(set_name), policy, trials, seed, frames_dir=frames_dir,
                        log=log)

    def pose_frame(self, condition: int, rack_position, rack_yaw: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """gps_trainer.pose_pretraining.PoseSource on the training environment."""
        return self._pose_source.pose_frame(condition, rack_position, rack_yaw)
