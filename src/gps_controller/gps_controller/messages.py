"""Conversions between numpy arrays and the gps_msgs interfaces.

The messages carry arrays flat and row-major (their layouts are stated in the .msg files); these
functions are the one place that flattens and reshapes them. Every `*_from_msg` validates the
message first (see `message_validation`), so a caller never sees a mis-shaped array.
"""

from __future__ import annotations

import array
import json
from dataclasses import dataclass, field

import numpy as np
from gps_msgs.msg import (LinearGaussianController, PolicyUpdate, PolicyWeights,
                          SampleTrajectory, TargetPose, Tensor)
from sensor_msgs.msg import Image

from gps_controller import message_validation as mv
from gps_controller.layout import Layout


@dataclass
class SampleRecord:
    """One recorded trial as arrays: X (T x dX), U (T x dU), noise (T x dU),
    obs_config (T x dO) and images (T x H x W x 3 uint8, or None)."""

    X: np.ndarray
    U: np.ndarray
    noise: np.ndarray
    obs_config: np.ndarray
    images: np.ndarray | None = None
    condition: int = 0
    iteration: int = 0
    trial_id: int = 0
    policy_version: int = 0
    noise_seed: int = 0
    dt: float = 0.05
    state_names: list[str] = field(default_factory=list)
    state_sizes: list[int] = field(default_factory=list)
    action_names: list[str] = field(default_factory=list)
    config_names: list[str] = field(default_factory=list)
    config_sizes: list[int] = field(default_factory=list)
    aborted: bool = False
    abort_reason: str = ""

    @classmethod
    def with_layout(cls, layout: Layout, **kwargs) -> "SampleRecord":
        """A record whose layout names and sizes come from `layout`."""
        return cls(
            state_names=layout.state_names,
            state_sizes=[b.size for b in layout.state_blocks],
            action_names=list(layout.joints),
            config_names=layout.config_names,
            config_sizes=[b.size for b in layout.config_blocks],
            **kwargs,
        )


@dataclass
class NetworkPolicyParams:
    """A neural-network Gaussian policy as plain data: architecture (JSON-able dict), named
    float32 tensors, observation whitening and the action covariance."""

    architecture: dict
    tensors: dict[str, np.ndarray]
    obs_mean: np.ndarray
    obs_scale: np.ndarray
    covariance: np.ndarray


def image_to_msg(image: np.ndarray, stamp=None, frame_id: str = "") -> Image:
    """H x W x 3 uint8 RGB array -> sensor_msgs/Image (encoding rgb8)."""
    image = np.ascontiguousarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be H x W x 3 uint8, got {image.shape} {image.dtype}")
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.step = 3 * msg.width
    data = array.array("B")
    data.frombytes(memoryview(image).cast("B"))   # one copy, straight into the message's array
    msg.data = data
    return msg


def image_from_msg(msg: Image) -> np.ndarray:
    """sensor_msgs/Image (rgb8) -> H x W x 3 uint8 array (a copy)."""
    mv.check_image(msg, "image")
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3).copy()


def sample_to_msg(record: SampleRecord) -> SampleTrajectory:
    """SampleRecord -> SampleTrajectory."""
    T, dX = record.X.shape
    msg = SampleTrajectory()
    msg.condition, msg.iteration, msg.trial_id = record.condition, record.iteration, record.trial_id
    msg.policy_version, msg.noise_seed = record.policy_version, record.noise_seed
    msg.t, msg.dt = T, float(record.dt)
    msg.state_names, msg.state_sizes = list(record.state_names), list(record.state_sizes)
    msg.action_names = list(record.action_names)
    msg.config_names, msg.config_sizes = list(record.config_names), list(record.config_sizes)
    msg.dim_x, msg.dim_u, msg.dim_o = dX, record.U.shape[1], record.obs_config.shape[1]
    msg.x = _flat64(record.X)
    msg.u = _flat64(record.U)
    msg.noise = _flat64(record.noise)
    msg.obs_config = _flat64(record.obs_config)
    if record.images is not None:
        msg.images = [image_to_msg(img) for img in record.images]
    msg.aborted, msg.abort_reason = record.aborted, record.abort_reason
    return msg


def sample_from_msg(msg: SampleTrajectory) -> SampleRecord:
    """SampleTrajectory -> SampleRecord; raises MessageError on a malformed message."""
    mv.validate_sample(msg)
    T = msg.t
    images = None
    if msg.images:
        images = np.stack([image_from_msg(img) for img in msg.images])
    return SampleRecord(
        X=_matrix(msg.x, T, msg.dim_x), U=_matrix(msg.u, T, msg.dim_u),
        noise=_matrix(msg.noise, T, msg.dim_u), obs_config=_matrix(msg.obs_config, T, msg.dim_o),
        images=images, condition=msg.condition, iteration=msg.iteration, trial_id=msg.trial_id,
        policy_version=msg.policy_version, noise_seed=msg.noise_seed, dt=msg.dt,
        state_names=list(msg.state_names), state_sizes=list(msg.state_sizes),
        action_names=list(msg.action_names), config_names=list(msg.config_names),
        config_sizes=list(msg.config_sizes), aborted=msg.aborted, abort_reason=msg.abort_reason,
    )


def linear_gaussian_to_msg(K: np.ndarray, k: np.ndarray, chol: np.ndarray
                           ) -> LinearGaussianController:
    """(K: T x dU x dX, k: T x dU, chol: T x dU x dU lower) -> LinearGaussianController."""
    T, dU, dX = K.shape
    msg = LinearGaussianController()
    msg.t, msg.dim_x, msg.dim_u = T, dX, dU
    msg.gains, msg.offsets, msg.covariance_cholesky = _flat64(K), _flat64(k), _flat64(chol)
    return msg


def linear_gaussian_from_msg(msg: LinearGaussianController
                             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LinearGaussianController -> (K, k, chol); raises MessageError on a malformed message."""
    mv.validate_linear_gaussian(msg)
    T, dU, dX = msg.t, msg.dim_u, msg.dim_x
    return (np.frombuffer(msg.gains, np.float64).reshape(T, dU, dX).copy(),
            _matrix(msg.offsets, T, dU),
            np.frombuffer(msg.covariance_cholesky, np.float64).reshape(T, dU, dU).copy())


def network_policy_to_msg(params: NetworkPolicyParams) -> PolicyWeights:
    """NetworkPolicyParams -> PolicyWeights (tensors as float32)."""
    msg = PolicyWeights()
    msg.architecture = json.dumps(params.architecture, sort_keys=True)
    for name, value in params.tensors.items():
        value = np.asarray(value, np.float32, order="C")
        tensor = Tensor()
        tensor.name, tensor.shape, tensor.data = name, list(value.shape), value.ravel()
        msg.tensors.append(tensor)
    msg.obs_mean, msg.obs_scale = _flat64(params.obs_mean), _flat64(params.obs_scale)
    msg.covariance = _flat64(params.covariance)
    return msg


def network_policy_from_msg(msg: PolicyWeights) -> NetworkPolicyParams:
    """PolicyWeights -> NetworkPolicyParams; raises MessageError on a malformed message."""
    mv.validate_policy_weights(msg)
    architecture = json.loads(msg.architecture)
    dU = int(round(np.sqrt(len(msg.covariance))))
    return NetworkPolicyParams(
        architecture=architecture,
        tensors={t.name: np.frombuffer(t.data, np.float32).reshape(tuple(t.shape)).copy()
                 for t in msg.tensors},
        obs_mean=np.array(msg.obs_mean), obs_scale=np.array(msg.obs_scale),
        covariance=np.array(msg.covariance).reshape(dU, dU),
    )


def policy_update_msg(version: int, *, linear_gaussian: LinearGaussianController | None = None,
                      network: PolicyWeights | None = None, condition: int = 0) -> PolicyUpdate:
    """A PolicyUpdate carrying exactly one of a linear-Gaussian controller or network weights."""
    if (linear_gaussian is None) == (network is None):
        raise ValueError("a policy update carries exactly one of linear_gaussian or network")
    msg = PolicyUpdate()
    msg.version, msg.condition = int(version), int(condition)
    if linear_gaussian is not None:
        msg.kind, msg.linear_gaussian = PolicyUpdate.KIND_LINEAR_GAUSSIAN, linear_gaussian
    else:
        msg.kind, msg.neural_network = PolicyUpdate.KIND_NEURAL_NETWORK, network
    return msg


def target_pose_msg(name: str, position, yaw: float, grasp: int, frame_id: str = "base_link"
                    ) -> TargetPose:
    """A condition's target pose: position (x, y, z) in metres and yaw about z in radians."""
    msg = TargetPose()
    msg.name, msg.grasp = name, int(grasp)
    msg.pose.header.frame_id = frame_id
    p = msg.pose.pose.position
    p.x, p.y, p.z = (float(v) for v in position)
    q = msg.pose.pose.orientation
    q.z, q.w = float(np.sin(yaw / 2.0)), float(np.cos(yaw / 2.0))
    return msg


def _flat64(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, np.float64).ravel()


def _matrix(values, rows: int, cols: int) -> np.ndarray:
    return np.frombuffer(values, np.float64).reshape(rows, cols).copy()
