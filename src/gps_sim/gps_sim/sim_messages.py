"""Conversions between the simulator's readings and the standard ROS messages the sim node
publishes (JointState, CameraInfo, Clock, DiagnosticArray), and from a gps_msgs/TargetPose to
the rack pose the left arm should hold. Images go through gps_controller.messages.image_to_msg.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, JointState

from gps_controller import message_validation as mv
from gps_sim.conditions import AppearanceRandomisation
from gps_sim.env import CAMERA, JointStateReading
from gps_sim.scene import MODEL_PATH, ROBOT_BODY

CAMERA_FRAME = "head_camera_optical_frame"
DIAGNOSTIC_NAME = "gps_sim: right arm effort commands"
TARGET_FRAMES = ("", ROBOT_BODY)
"""Frames a left-arm target may be given in: the robot frame, by name or left empty."""
UPRIGHT_TOLERANCE = 1e-3
"""Largest x or y quaternion component accepted as a rotation about z alone."""


def to_time(seconds: float) -> Time:
    """Seconds -> builtin_interfaces/Time, rounded to the nanosecond."""
    nanoseconds = int(round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def clock_msg(seconds: float) -> Clock:
    return Clock(clock=to_time(seconds))


def joint_state_msg(reading: JointStateReading, seconds: float) -> JointState:
    """Both arms' joints (right arm first) with positions, velocities and applied efforts."""
    msg = JointState()
    msg.header.stamp = to_time(seconds)
    msg.name = list(reading.names)
    msg.position = reading.position.tolist()
    msg.velocity = reading.velocity.tolist()
    msg.effort = reading.effort.tolist()
    return msg


def head_camera_fovy() -> float:
    """The head camera's vertical field of view (degrees), as the shipped model declares it."""
    return float(mujoco.MjSpec.from_file(str(MODEL_PATH)).camera(CAMERA).fovy)


def camera_info_msg(size: int, fovy_deg: float, seconds: float) -> CameraInfo:
    """Pinhole intrinsics of a size x size MuJoCo camera image: square pixels with focal length
    f = (size / 2) / tan(fovy / 2) and the principal point at the image centre; no distortion."""
    focal = 0.5 * size / math.tan(math.radians(fovy_deg) / 2.0)
    centre = 0.5 * size
    msg = CameraInfo()
    msg.header.stamp = to_time(seconds)
    msg.header.frame_id = CAMERA_FRAME
    msg.height = msg.width = int(size)
    msg.distortion_model = "plumb_bob"
    msg.d = [0.0] * 5
    msg.k = [focal, 0.0, centre, 0.0, focal, centre, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [focal, 0.0, centre, 0.0, 0.0, focal, centre, 0.0, 0.0, 0.0, 1.0, 0.0]
    return msg


def rack_pose_from_msg(msg) -> tuple[np.ndarray, float]:
    """gps_msgs/TargetPose -> (bar centre position in the robot frame, yaw about z). Raises
    MessageError for a non-finite pose, a frame other than the robot frame, or a tilt: the
    left arm holds the rack upright, so only a rotation about z can be honoured."""
    mv.validate_target_pose(msg)
    frame = msg.pose.header.frame_id
    if frame not in TARGET_FRAMES:
        raise mv.MessageError("pose.header.frame_id", f"is {frame!r}; give the rack pose in the "
                              f"robot frame {ROBOT_BODY!r} (or leave it empty)")
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    if max(abs(q.x), abs(q.y)) > UPRIGHT_TOLERANCE:
        raise mv.MessageError("pose.orientation", "tilts the rack; only a rotation about z "
                              "(x = y = 0) is supported")
    return np.array([p.x, p.y, p.z]), 2.0 * math.atan2(q.z, q.w)


def appearance_from_request(request) -> AppearanceRandomisation | None:
    """gps_msgs/SetCondition's look: None for the condition's own, else the ranges to draw it
    from. Raises ConfigError (a ValueError) naming the field for a bad range."""
    if not request.random_look:
        return None
    return AppearanceRandomisation(
        colour_jitter=float(request.colour_jitter),
        light_scale=tuple(float(v) for v in request.light_scale),
        light_tint=float(request.light_tint), key_light_shift=float(request.key_light_shift))


def diagnostics_msg(stamp: Time, level: bytes, message: str, values: dict[str, object]
                    ) -> DiagnosticArray:
    """The sim node's DiagnosticStatus (named DIAGNOSTIC_NAME) in a DiagnosticArray."""
    status = DiagnosticStatus(level=level, name=DIAGNOSTIC_NAME, message=message,
                              hardware_id="gps_sim")
    status.values = [KeyValue(key=key, value=str(value)) for key, value in values.items()]
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg
