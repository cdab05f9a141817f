"""What the page may ask for, checked before anything goes out over ROS: each parser takes the
JSON body the page sent and returns typed values or raises RequestError with a message the
page shows as it is. Nothing the page sends is trusted: numbers arrive as text from input
fields, and any field may be missing, of the wrong type or not finite."""

from __future__ import annotations

import math
from dataclasses import dataclass

from gps_trainer.gui.target_limits import TargetLimits

TARGET_AXES = ("x", "y", "z", "yaw")


class RequestError(ValueError):
    """A request the node refuses; str(error) is the message for the page."""


@dataclass(frozen=True)
class Pose:
    """The rack pose asked for: bar centre (robot frame, m) and yaw about z (rad)."""

    position: tuple[float, float, float]
    yaw: float


def parse_number(value, field: str) -> float:
    """A finite number from a JSON number or the text of an input field."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise RequestError(f"{field} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise RequestError(f"{field} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise RequestError(f"{field} must be a finite number, got {value!r}")
    return number


def target_pose(body, current: Pose, limits: TargetLimits) -> Pose:
    """The pose from {"set": {axis: value}, "step": {axis: delta}} applied to `current`
    (axes x, y, z in m, yaw in rad; set first, then step), within `limits`."""
    fields = _mapping(body, {"set", "step"})
    values = dict(zip(TARGET_AXES, (*current.position, current.yaw)))
    for kind in ("set", "step"):
        for axis, value in _mapping(fields.get(kind, {}), set(TARGET_AXES), kind).items():
            number = parse_number(value, axis)
            values[axis] = number if kind == "set" else values[axis] + number
    pose = Pose((values["x"], values["y"], values["z"]), values["yaw"])
    try:
        limits.check(pose.position, pose.yaw)
    except ValueError as exc:
        raise RequestError(f"target refused: {exc}") from None
    return pose


def condition_name(body) -> str:
    """{"condition": name} -> name (not empty)."""
    return _text(_mapping(body, {"condition"}), "condition")


@dataclass(frozen=True)
class SaveRequest:
    name: str
    set_name: str
    grasp: int


def save_request(body) -> SaveRequest:
    """{"name", "set_name", "grasp"}: the condition file checks the name and the set."""
    fields = _mapping(body, {"name", "set_name", "grasp"})
    grasp = parse_number(fields.get("grasp", 0), "grasp")
    if grasp != int(grasp) or grasp < 0:
        raise RequestError(f"grasp must be a whole number >= 0, got {fields.get('grasp')!r}")
    return SaveRequest(_text(fields, "name"), _text(fields, "set_name"), int(grasp))


@dataclass(frozen=True)
class TrialRequest:
    condition: str
    policy_version: int


def trial_request(body) -> TrialRequest:
    """{"condition": name, "policy_version": n >= 0}."""
    fields = _mapping(body, {"condition", "policy_version"})
    version = parse_number(fields.get("policy_version", 0), "policy_version")
    if version != int(version) or version < 0:
        raise RequestError(f"policy_version must be a whole number >= 0, got "
                           f"{fields.get('policy_version')!r}")
    return TrialRequest(_text(fields, "condition"), int(version))


def _mapping(value, allowed: set[str], where: str = "request") -> dict:
    if not isinstance(value, dict):
        raise RequestError(f"{where} must be a JSON object, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise RequestError(f"{where} has unknown field(s) {unknown}; known: {sorted(allowed)}")
    return value


def _text(fields: dict, name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value.strip():
        raise RequestError(f"{name} must be a non-empty text, got {value!r}")
    return value.strip()
