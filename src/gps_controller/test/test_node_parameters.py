"""declare_parameters on a real rclpy node: overrides reach the parameters' dataclass, whose
checks run on them; a double parameter of NaN or infinity is refused by name (a rate of .inf
would pass the dataclass's "> 0" check and make a timer of period zero)."""

import math

import pytest
import rclpy
from rclpy.parameter import Parameter

from gps_controller.controller_node import PARAM_DESCRIPTIONS, ControllerNodeParams
from gps_controller.node_parameters import declare_parameters
from gps_controller.typed_config import ConfigError


def _declared(**overrides):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("parameters_probe", context=context, parameter_overrides=[
        Parameter(name, value=value) for name, value in overrides.items()])
    try:
        return declare_parameters(node, ControllerNodeParams, PARAM_DESCRIPTIONS)
    finally:
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def test_overrides_reach_the_parameters():
    params = _declared(robot_description="arm.xml", rate_hz=10.0, inference_threads=2)
    assert params == ControllerNodeParams(robot_description="arm.xml", rate_hz=10.0,
                                          inference_threads=2)


@pytest.mark.parametrize("name, value", [("rate_hz", math.inf), ("stale_tolerance_s", math.nan),
                                         ("lockstep_timeout_s", -math.inf)])
def test_a_double_that_is_not_finite_is_refused_by_name(name, value):
    with pytest.raises(ConfigError, match=f"parameter {name}: expected a finite number, got"):
        _declared(robot_description="arm.xml", **{name: value})


def test_the_dataclass_checks_still_run():
    with pytest.raises(ConfigError, match="rate_hz, lockstep_timeout_s must be positive"):
        _declared(robot_description="arm.xml", rate_hz=-1.0)
