"""A node's ROS parameters declared from a frozen dataclass: one field per parameter, its default
the parameter's default, a description per field; the dataclass's own checks run on the values
the node was given (a bad value stops the node at start-up with a ConfigError)."""

from __future__ import annotations

from dataclasses import fields
from typing import TypeVar

from rcl_interfaces.msg import ParameterDescriptor

P = TypeVar("P")


def declare_parameters(node, params_cls: type[P], descriptions: dict[str, str]) -> P:
    """Declare every field of `params_cls` on `node` and build the instance from their values."""
    values = {}
    for field in fields(params_cls):
        descriptor = ParameterDescriptor(description=descriptions[field.name])
        values[field.name] = node.declare_parameter(field.name, field.default, descriptor).value
    return params_cls(**values)
