"""Sensor messages turned into what a control step needs, with the checks a stale or malformed
message must fail: the controlled arm's joints by name (any order, other joints ignored), finite
positions and velocities, and camera frames in the size and encoding the policy expects."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.message_validation import MessageError, check_image


@dataclass(frozen=True)
class JointReading:
    """The controlled arm's joint angles and velocities (layout order) at sim/robot time
    `stamp_ns`."""

    q: np.ndarray
    qdot: np.ndarray
    stamp_ns: int


def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time as integer nanoseconds (exact, for matching stamps)."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def joint_reading(msg, joints: tuple[str, ...]) -> JointReading:
    """sensor_msgs/JointState -> JointReading; MessageError when a joint is missing, the arrays
    disagree in length, or a value is not finite."""
    names = list(msg.name)
    if len(msg.position) != len(names) or len(msg.velocity) != len(names):
        raise MessageError("position/velocity", f"{len(msg.position)} positions and "
                           f"{len(msg.velocity)} velocities for {len(names)} joints")
    try:
        index = [names.index(joint) for joint in joints]
    except ValueError:
        missing = [j for j in joints if j not in names]
        raise MessageError("name", f"lacks the controlled joints {missing}") from None
    q = np.asarray(msg.position, float)[index]
    qdot = np.asarray(msg.velocity, float)[index]
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(qdot))):
        raise MessageError("position/velocity", "contains NaN or infinity")
    return JointReading(q, qdot, stamp_ns(msg.header.stamp))


def camera_frame(msg) -> np.ndarray:
    """sensor_msgs/Image (rgb8) -> H x W x 3 uint8 array (read-only view of the message)."""
    check_image(msg, "image")
    return np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
