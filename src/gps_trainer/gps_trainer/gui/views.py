"""Received messages -> what the page draws: plain JSON-able dicts and a PNG camera frame.
Each view checks its message first and raises ValueError (MessageError) for a malformed one,
so the node can drop it with a log line. Non-finite numbers become None, since JSON has no
NaN and a browser would refuse the whole document."""

from __future__ import annotations

import math

import cv2
import numpy as np

from gps_controller import message_validation as mv
from gps_controller.messages import image_from_msg

EE_POINTS_BLOCK = "ee_points"
"""The configuration block of a sample with the end-effector points in the robot frame."""


def finite_or_none(values) -> list:
    """Floats, with None in place of NaN or infinity."""
    return [float(v) if math.isfinite(v) else None for v in values]


def joint_states_view(msg) -> dict:
    """sensor_msgs/JointState -> names with position, velocity and effort per joint."""
    n = len(msg.name)
    for field in ("position", "velocity", "effort"):
        if len(getattr(msg, field)) not in (0, n):
            raise mv.MessageError(field, f"has {len(getattr(msg, field))} values for {n} names")
    return {"names": list(msg.name), "position": finite_or_none(msg.position),
            "velocity": finite_or_none(msg.velocity), "effort": finite_or_none(msg.effort)}


def feature_points_view(msg) -> list[list[float]]:
    """std_msgs/Float32MultiArray of K x 2 normalised image coordinates (x, y in [-1, 1],
    row-major) -> K [x, y] pairs."""
    data = np.asarray(msg.data, np.float64)
    if data.size % 2:
        raise mv.MessageError("data", f"has {data.size} values; expected K x 2")
    if not np.all(np.isfinite(data)):
        raise mv.MessageError("data", "contains NaN or infinity")
    return data.reshape(-1, 2).tolist()


def progress_view(msg, condition_names: list[str]) -> dict:
    """gps_msgs/TrainingProgress -> one iteration's metrics per condition and the KL per step;
    a condition index is named from `condition_names` where it has a name there."""
    mv.validate_training_progress(msg)
    n_metrics = len(msg.metric_names)
    values = list(msg.values_by_condition)
    kl = list(msg.kl_per_step)
    rows = []
    for row, index in enumerate(msg.conditions):
        rows.append({
            "condition": int(index),
            "name": condition_names[index] if index < len(condition_names) else str(index),
            "values": finite_or_none(values[row * n_metrics:(row + 1) * n_metrics]),
            "kl_per_step": finite_or_none(kl[row * msg.t:(row + 1) * msg.t]) if kl else [],
        })
    return {"iteration": int(msg.iteration), "phase": msg.phase,
            "metric_names": list(msg.metric_names), "t": int(msg.t), "conditions": rows}


def ee_path_view(msg) -> dict:
    """gps_msgs/SampleTrajectory -> the end-effector points' path (T x P x 3, robot frame) from
    the sample's configuration block EE_POINTS_BLOCK, with the trial's labels."""
    mv.validate_sample(msg)
    names = list(msg.config_names)
    if EE_POINTS_BLOCK not in names:
        raise mv.MessageError("config_names", f"has no {EE_POINTS_BLOCK!r} block: {names}")
    block = names.index(EE_POINTS_BLOCK)
    start = sum(msg.config_sizes[:block])
    size = msg.config_sizes[block]
    if size % 3:
        raise mv.MessageError("config_sizes", f"{EE_POINTS_BLOCK} has {size} values, not P x 3")
    config = np.asarray(msg.obs_config, np.float64).reshape(msg.t, msg.dim_o)
    points = config[:, start:start + size].reshape(msg.t, size // 3, 3)
    return {"condition": int(msg.condition), "iteration": int(msg.iteration),
            "trial_id": int(msg.trial_id), "t": int(msg.t), "aborted": bool(msg.aborted),
            "abort_reason": msg.abort_reason, "points": points.tolist()}


def camera_png(msg) -> bytes:
    """sensor_msgs/Image (rgb8) -> PNG bytes."""
    image = image_from_msg(msg)
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError("PNG encoding of the camera frame failed")
    return png.tobytes()
