"""A node's ROS parameters declared from a frozen dataclass: one field per parameter, its default
the parameter's default, a description per field; the dataclass's own checks run on the values
the node was given (a bad value stops the node at start-up with a ConfigError). A double
parameter takes finite values only, as a float in a config file does (typed_config): a rate or
timeout of .nan or .inf would otherwise pass a "> 0" check."""

from __future__ import annotations

import math
from dataclasses import fields
from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor

from gps_controller.typed_config import ConfigError

P = TypeVar("P")


def declare_parameters(node, params_cls: type[P], descriptions: dict[str, str]) -> P:
    """Declare every field of `params_cls` on `node` and build the instance from their values."""
    values = {}
    for field in fields(params_cls):
        descriptor = ParameterDescriptor(description=descriptions[field.name])
        value = node.declare_parameter(field.name, field.default, descriptor).value
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"parameter {field.name}: expected a finite number, got {value}")
        values[field.name] = value
    return params_cls(**values)
