"""The learner's robot over ROS: the sim node (or a real robot's drivers) and the controller
node, driven through their topics, services and actions.

For a trial on condition c the trainer
  1. publishes the linear-Gaussian controller (or the network policy) as a PolicyUpdate with a
     new version to the controller node,
  2. resets the scene to c through the sim node's set_condition, the rack moved by the sample's
     jitter, the look drawn from the run's appearance_randomisation when it has one (the answer
     is the stamp of the episode's step 0),
  3. sends RunTrial with that version, the stamp, the exploration noise's seed and smoothing and
     the condition's end-effector geometry, and receives the recorded sample,
  4. asks the sim node's check_task whether the hanger hangs.
For a pose pre-training frame it resets the scene through set_condition with the rack pose as
offsets from the condition's (and the pose frames' random look) and takes the camera frame
published with the episode's step 0 (matched by stamp); the target points come from the task
description, as for the trials.
The controller draws the noise from the seed with the trainer's generator; the trainer checks
that the sample carries exactly the noise it expects, so the trajectory update never sees a
sample whose noise it does not know. The conditions' geometry (EE points in the tool frame per
grasp, targets per rack pose) comes from the task description (gps_sim's model and conditions).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from gps_controller.controller_client import ControllerClient, TrialRequest
from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.messages import (image_from_msg, linear_gaussian_to_msg,
                                     network_policy_to_msg, policy_update_msg)
from gps_controller.noise import NoiseConfig
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_controller.ros_calls import CallTimeout
from gps_sim.conditions import AppearanceRandomisation
from gps_sim.env import HangerEnv
from gps_sim.sim_client import SimClient
from gps_trainer.evaluation import ConditionResult, condition_line
from gps_trainer.pose_pretraining import rack_pose_offsets
from gps_trainer.rollout import Rollout, target_distance
from gps_trainer.sample import Sample


@dataclass(frozen=True)
class ConditionGeometry:
    """A condition's name and end-effector geometry as the controller needs it."""

    name: str
    ee_points_tool: np.ndarray
    ee_targets: np.ndarray


CAMERA_TOPIC = "/head_camera/image_raw"
FRAME_TIMEOUT_S = 10.0


def geometry_of(env: HangerEnv, condition: int, rack_offset=None,
                rack_yaw_offset: float = 0.0) -> ConditionGeometry:
    """The geometry of a condition of `env`, the rack moved by `rack_offset` (m) and turned by
    `rack_yaw_offset` (rad): reset into it (the sim node's own inverse kinematics places the
    rack; ValueError when out of reach) and read off the model."""
    env.reset(condition, rack_offset=rack_offset, rack_yaw_offset=rack_yaw_offset)
    return ConditionGeometry(env.condition.name, env.ee_points_in_tool(), env.target_points())


def condition_geometry(env: HangerEnv) -> list[ConditionGeometry]:
    """The geometry of every condition of `env`."""
    return [geometry_of(env, index) for index in range(len(env.conditions))]


class CameraFrames:
    """The latest camera images by stamp, so a caller can wait for the frame of one step.
    Reliable and transient-local like the sim's camera: a frame published just before this
    subscription matched still arrives."""

    def __init__(self, node, topic: str = CAMERA_TOPIC, keep: int = 8) -> None:
        self._frames: deque[Image] = deque(maxlen=keep)
        self._arrived = threading.Condition()
        qos = QoSProfile(depth=keep, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.topic = topic
        node.create_subscription(Image, topic, self._on_image, qos)

    def _on_image(self, msg: Image) -> None:
        with self._arrived:
            self._frames.append(msg)
            self._arrived.notify_all()

    def wait_for(self, stamp, timeout: float = FRAME_TIMEOUT_S) -> np.ndarray:
        """The image stamped `stamp` (H x W x 3 uint8); CallTimeout when none comes."""
        def match():
            return next((m for m in self._frames if m.header.stamp.sec == stamp.sec
                         and m.header.stamp.nanosec == stamp.nanosec), None)
        with self._arrived:
            if not self._arrived.wait_for(lambda: match() is not None, timeout):
                raise CallTimeout(f"no image on {self.topic} stamped "
                                  f"{stamp.sec}.{stamp.nanosec:09d} within {timeout:.1f} s: "
                                  f"does the sim publish images?")
            return image_from_msg(match())


class RosRobot:
    """Trials through the controller and sim nodes (see the module docstring)."""

    def __init__(self, node, geometry: dict[str, list[ConditionGeometry]], train_env: HangerEnv,
                 train_set: str, T: int, noise: NoiseConfig, record_images: bool,
                 trial_timeout: float = 300.0, log=print,
                 appearance: AppearanceRandomisation | None = None,
                 pose_appearance: AppearanceRandomisation | None = None) -> None:
        self.controller = ControllerClient(node)
        self.sim = SimClient(node)
        self.camera = CameraFrames(node)
        self.geometry = geometry
        self.train_env = train_env
        self.train_set = train_set
        self.T = T
        self.noise = noise
        self.record_images = record_images
        self.trial_timeout = trial_timeout
        self.log = log
        self.appearance = appearance
        self.pose_appearance = pose_appearance
        self.version = int(time.time() * 1000)
        self.trials = 0

    def wait_until_ready(self, timeout: float) -> None:
        self.sim.wait_until_ready(timeout)
        self.controller.wait_until_ready(timeout)

    def lg_rollout(self, condition: int, controller: LinearGaussianController,
                   noise: np.ndarray, noise_seed: int, iteration: int,
                   rack_offset: np.ndarray) -> Rollout:
        version = self._push(policy_update_msg(
            self._next_version(), condition=condition, linear_gaussian=linear_gaussian_to_msg(
                controller.K, controller.k, controller.chol_covariance)))
        geometry = (geometry_of(self.train_env, condition, rack_offset) if np.any(rack_offset)
                    else self.geometry[self.train_set][condition])
        sample, images, success, distance = self._trial(
            version, condition, geometry, noise_seed, 1.0, self.record_images, iteration,
            rack_offset, self.appearance)
        if not np.allclose(sample.noise, noise, rtol=0.0, atol=1e-12):
            raise RuntimeError("the controller's exploration noise differs from the trainer's "
                               "for the same seed: their noise settings disagree")
        return Rollout(sample, images, success, distance)

    def evaluate(self, policy: GaussianPolicy, set_name: str, trials: int, seed: int,
                 frames_dir: Path | None, log,
                 appearance: AppearanceRandomisation | None = None) -> list[ConditionResult]:
        """The network policy alone (mean actions) on every condition of `set_name`, each
        trial's look drawn by the sim from `appearance` (None: the condition's own)."""
        version = self._push(policy_update_msg(
            self._next_version(), network=network_policy_to_msg(policy.to_params())))
        results = []
        for condition, geometry in enumerate(self.geometry[set_name]):
            wins, distances = 0, []
            for trial in range(trials):
                _, _, success, distance = self._trial(version, condition, geometry,
                                                      seed * 10_000 + trial, 0.0, False, 0,
                                                      appearance=appearance)
                wins += success
                distances.append(distance)
            results.append(ConditionResult(geometry.name, wins, tuple(distances)))
            log(condition_line(results[-1]))
        return results

    def pose_frame(self, condition: int, rack_position, rack_yaw: float
                   ) -> tuple[np.ndarray, np.ndarray]:
        """gps_trainer.pose_pretraining.PoseSource over ROS on the training conditions: the
        reachability check and the target points from the task description, the frame from the
        camera at the reset's step 0."""
        offset, yaw_offset = rack_pose_offsets(self.train_env.conditions[condition],
                                               rack_position, rack_yaw)
        geometry = geometry_of(self.train_env, condition, offset, yaw_offset)
        stamp = self.sim.reset(geometry.name, offset, yaw_offset, self.pose_appearance)
        return self.camera.wait_for(stamp), geometry.ee_targets

    def _next_version(self) -> int:
        self.version += 1
        return self.version

    def _push(self, update) -> int:
        self.controller.push(update)
        return update.version

    def _trial(self, version: int, condition: int, geometry: ConditionGeometry, noise_seed: int,
               noise_scale: float, record_images: bool, iteration: int,
               rack_offset=(0.0, 0.0, 0.0), appearance: AppearanceRandomisation | None = None
               ) -> tuple[Sample, np.ndarray | None, bool, float]:
        self.trials += 1
        smooth = self.noise.sigma if self.noise.smooth else 0.0
        request = TrialRequest(
            version, condition, self.T, geometry.ee_points_tool, geometry.ee_targets,
            noise_seed=noise_seed, noise_scale=noise_scale, noise_smooth_sigma=smooth,
            noise_renormalize=self.noise.renormalize, record_images=record_images,
            iteration=iteration, trial_id=self.trials,
            start_stamp=self.sim.reset(geometry.name, rack_offset, appearance=appearance))
        record, final_state = self.controller.run_trial(request, self.trial_timeout)
        success, _ = self.sim.check_task()
        sample = Sample(record.X, record.U, condition, obs=record.obs_config, noise=record.noise)
        return sample, record.images, success, target_distance(PR2_RIGHT_ARM, final_state)
