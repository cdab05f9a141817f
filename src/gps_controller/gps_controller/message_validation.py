"""Validation of received gps_msgs messages.

A message from the network is checked before any array in it is used: its declared dimensions
must agree with the lengths of its arrays and its layout names, and every number must be finite.
A failure raises `MessageError`, whose text names the offending field, so a node can log it and
keep running (the controller keeps its old policy, the trainer drops the sample).
"""

from __future__ import annotations

import json
import math

import numpy as np


class MessageError(ValueError):
    """A received message is malformed; `field` names the first offending field."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def validate_sample(msg) -> None:
    """SampleTrajectory: layouts consistent with dim_x/dim_u/dim_o, T rows everywhere, finite."""
    _positive(msg.t, "t")
    if not (math.isfinite(msg.dt) and msg.dt > 0):
        raise MessageError("dt", f"must be a positive finite period, got {msg.dt}")
    _layout(msg.state_names, msg.state_sizes, msg.dim_x, "state", "dim_x")
    _layout(msg.config_names, msg.config_sizes, msg.dim_o, "config", "dim_o")
    _positive(msg.dim_u, "dim_u")
    if len(msg.action_names) != msg.dim_u:
        raise MessageError("action_names", f"has {len(msg.action_names)} names, dim_u is {msg.dim_u}")
    for name, cols in (("x", msg.dim_x), ("u", msg.dim_u), ("noise", msg.dim_u),
                       ("obs_config", msg.dim_o)):
        _finite_array(getattr(msg, name), msg.t * cols, name, f"t x {cols} = {msg.t} x {cols}")
    if msg.images:
        if len(msg.images) != msg.t:
            raise MessageError("images", f"has {len(msg.images)} frames, expected t = {msg.t} or none")
        first = msg.images[0]
        for i, image in enumerate(msg.images):
            check_image(image, f"images[{i}]")
            if (image.height, image.width) != (first.height, first.width):
                raise MessageError(f"images[{i}]", f"is {image.height}x{image.width}, frame 0 is "
                                   f"{first.height}x{first.width}")


def validate_linear_gaussian(msg, dim_x: int | None = None, dim_u: int | None = None,
                             t: int | None = None) -> None:
    """LinearGaussianController: sizes, finiteness, a lower-triangular Cholesky factor with a
    positive diagonal; optionally the dimensions the receiver expects."""
    for name, value, expected in (("t", msg.t, t), ("dim_x", msg.dim_x, dim_x),
                                  ("dim_u", msg.dim_u, dim_u)):
        _positive(value, name)
        if expected is not None and value != expected:
            raise MessageError(name, f"is {value}, expected {expected}")
    T, dX, dU = msg.t, msg.dim_x, msg.dim_u
    _finite_array(msg.gains, T * dU * dX, "gains", f"t x dim_u x dim_x = {T} x {dU} x {dX}")
    _finite_array(msg.offsets, T * dU, "offsets", f"t x dim_u = {T} x {dU}")
    _finite_array(msg.covariance_cholesky, T * dU * dU, "covariance_cholesky",
                  f"t x dim_u x dim_u = {T} x {dU} x {dU}")
    chol = np.frombuffer(msg.covariance_cholesky, np.float64).reshape(T, dU, dU)
    if np.any(np.triu(chol, 1) != 0.0):
        raise MessageError("covariance_cholesky", "has entries above the diagonal")
    if np.any(np.diagonal(chol, axis1=1, axis2=2) <= 0.0):
        raise MessageError("covariance_cholesky", "has a non-positive diagonal entry")


def validate_policy_weights(msg, dim_u: int | None = None, dim_o: int | None = None) -> None:
    """PolicyWeights: JSON architecture with a kind, consistent tensors, whitening and a
    symmetric positive-definite covariance."""
    try:
        architecture = json.loads(msg.architecture)
    except json.JSONDecodeError as exc:
        raise MessageError("architecture", f"is not valid JSON ({exc.msg})") from None
    if not isinstance(architecture, dict) or "kind" not in architecture:
        raise MessageError("architecture", "must be a JSON object with a 'kind'")
    if not msg.tensors:
        raise MessageError("tensors", "is empty")
    names = set()
    for i, tensor in enumerate(msg.tensors):
        where = f"tensors[{i}]"
        if not tensor.name or tensor.name in names:
            raise MessageError(f"{where}.name", f"is empty or repeated ({tensor.name!r})")
        names.add(tensor.name)
        _finite_array(tensor.data, int(np.prod(tensor.shape, dtype=np.int64)), f"{where}.data",
                      f"shape {list(tensor.shape)}")
    if len(msg.obs_mean) != len(msg.obs_scale):
        raise MessageError("obs_scale", f"has {len(msg.obs_scale)} entries, obs_mean has "
                           f"{len(msg.obs_mean)}")
    if dim_o is not None and len(msg.obs_mean) != dim_o:
        raise MessageError("obs_mean", f"has {len(msg.obs_mean)} entries, expected {dim_o}")
    _finite_array(msg.obs_mean, len(msg.obs_mean), "obs_mean", "dim_o")
    _finite_array(msg.obs_scale, len(msg.obs_scale), "obs_scale", "dim_o")
    if np.any(np.asarray(msg.obs_scale) <= 0.0):
        raise MessageError("obs_scale", "has a non-positive entry")
    n = len(msg.covariance)
    du = int(round(math.sqrt(n)))
    if n == 0 or du * du != n:
        raise MessageError("covariance", f"has {n} entries, not a square dim_u x dim_u matrix")
    if dim_u is not None and du != dim_u:
        raise MessageError("covariance", f"is {du} x {du}, expected dim_u = {dim_u}")
    _finite_array(msg.covariance, n, "covariance", "dim_u x dim_u")
    cov = np.asarray(msg.covariance).reshape(du, du)
    if not np.allclose(cov, cov.T, rtol=1e-9, atol=1e-12):
        raise MessageError("covariance", "is not symmetric")
    try:
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise MessageError("covariance", "is not positive definite") from None


def validate_policy_update(msg, last_version: int | None = None, dim_x: int | None = None,
                           dim_u: int | None = None, dim_o: int | None = None) -> None:
    """PolicyUpdate: a known kind, a version above `last_version`, a valid payload."""
    if last_version is not None and msg.version <= last_version:
        raise MessageError("version", f"{msg.version} is not above the running version "
                           f"{last_version}")
    if msg.kind == msg.KIND_LINEAR_GAUSSIAN:
        try:
            validate_linear_gaussian(msg.linear_gaussian, dim_x=dim_x, dim_u=dim_u)
        except MessageError as exc:
            raise MessageError(f"linear_gaussian.{exc.field}", exc.reason) from None
    elif msg.kind == msg.KIND_NEURAL_NETWORK:
        try:
            validate_policy_weights(msg.neural_network, dim_u=dim_u, dim_o=dim_o)
        except MessageError as exc:
            raise MessageError(f"neural_network.{exc.field}", exc.reason) from None
    else:
        raise MessageError("kind", f"unknown policy kind {msg.kind}")


def validate_target_pose(msg) -> None:
    """TargetPose: a name, a finite position and a unit quaternion."""
    if not msg.name.strip():
        raise MessageError("name", "is empty")
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    if not all(math.isfinite(v) for v in (p.x, p.y, p.z)):
        raise MessageError("pose.position", "is not finite")
    norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
    if not math.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        raise MessageError("pose.orientation", f"is not a unit quaternion (norm {norm:.4g})")


def validate_training_progress(msg) -> None:
    """TrainingProgress: the metric matrix and the per-step KL matrix match their labels."""
    n_cond, n_metric = len(msg.conditions), len(msg.metric_names)
    if len(msg.values_by_condition) != n_cond * n_metric:
        raise MessageError("values_by_condition", f"has {len(msg.values_by_condition)} entries, "
                           f"expected {n_cond} conditions x {n_metric} metrics")
    if msg.kl_per_step and len(msg.kl_per_step) != n_cond * msg.t:
        raise MessageError("kl_per_step", f"has {len(msg.kl_per_step)} entries, expected "
                           f"{n_cond} conditions x t = {msg.t}")


def validate_trial_goal(goal) -> None:
    """RunTrial goal: at least one step and a finite, non-negative noise scale."""
    _positive(goal.t, "t")
    if not (math.isfinite(goal.noise_scale) and goal.noise_scale >= 0.0):
        raise MessageError("noise_scale", f"must be finite and >= 0, got {goal.noise_scale}")


def check_image(msg, where: str) -> None:
    """sensor_msgs/Image: rgb8 with a byte count matching height x step."""
    if msg.encoding != "rgb8":
        raise MessageError(f"{where}.encoding", f"is {msg.encoding!r}, expected 'rgb8'")
    if msg.height == 0 or msg.width == 0:
        raise MessageError(where, f"is empty ({msg.height}x{msg.width})")
    if msg.step != 3 * msg.width:
        raise MessageError(f"{where}.step", f"is {msg.step}, expected 3 x width = {3 * msg.width}")
    if len(msg.data) != msg.step * msg.height:
        raise MessageError(f"{where}.data", f"has {len(msg.data)} bytes, expected "
                           f"{msg.step * msg.height}")


def _positive(value: int, field: str) -> None:
    if value <= 0:
        raise MessageError(field, f"must be positive, got {value}")


def _layout(names, sizes, total: int, prefix: str, dim_field: str) -> None:
    _positive(total, dim_field)
    if len(names) != len(sizes):
        raise MessageError(f"{prefix}_sizes", f"has {len(sizes)} entries for {len(names)} names")
    if sum(sizes) != total:
        raise MessageError(f"{prefix}_sizes", f"sum to {sum(sizes)}, {dim_field} is {total}")


def _finite_array(values, expected_len: int, field: str, shape: str) -> None:
    if len(values) != expected_len:
        raise MessageError(field, f"has {len(values)} values, expected {expected_len} ({shape})")
    if expected_len and not np.all(np.isfinite(np.asarray(values, np.float64))):
        raise MessageError(field, "contains NaN or infinity")
