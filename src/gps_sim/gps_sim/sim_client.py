"""The sim node's services as another node uses them: reset to a condition, judge the task.

Blocking calls for a thread beside a spinning executor (gps_controller.ros_calls)."""

from __future__ import annotations

from builtin_interfaces.msg import Time

from gps_controller.ros_calls import CallTimeout, wait_for
from gps_msgs.srv import CheckTask, SetCondition
from gps_sim.conditions import AppearanceRandomisation


def set_condition_request(condition_name: str, rack_offset=(0.0, 0.0, 0.0),
                          rack_yaw_offset: float = 0.0,
                          appearance: AppearanceRandomisation | None = None
                          ) -> SetCondition.Request:
    """The request to reset to the named condition, the rack moved by `rack_offset` (m) from
    its position and turned by `rack_yaw_offset` (rad), the look drawn from `appearance`
    (None: the condition's own)."""
    request = SetCondition.Request()
    request.condition.name = condition_name
    request.rack_offset.x, request.rack_offset.y, request.rack_offset.z = (
        float(v) for v in rack_offset)
    request.rack_yaw_offset = float(rack_yaw_offset)
    if appearance is not None and appearance.enabled:
        request.random_look = True
        request.colour_jitter = float(appearance.colour_jitter)
        request.light_scale = [float(v) for v in appearance.light_scale]
        request.light_tint = float(appearance.light_tint)
        request.key_light_shift = float(appearance.key_light_shift)
    return request


class SimError(RuntimeError):
    """The sim node refused a request; the message says why."""


class SimClient:
    """`<sim>/set_condition` and `<sim>/check_task`."""

    def __init__(self, node, sim: str = "/gps_sim") -> None:
        self.reset_client = node.create_client(SetCondition, f"{sim}/set_condition")
        self.check_client = node.create_client(CheckTask, f"{sim}/check_task")

    def wait_until_ready(self, timeout: float) -> None:
        for client in (self.reset_client, self.check_client):
            if not client.wait_for_service(timeout_sec=timeout):
                raise CallTimeout(f"service {client.srv_name} is not up after {timeout} s")

    def reset(self, condition_name: str, rack_offset=(0.0, 0.0, 0.0),
              rack_yaw_offset: float = 0.0, appearance: AppearanceRandomisation | None = None,
              timeout: float = 30.0) -> Time:
        """Reset to the named condition (set_condition_request); returns the stamp of the
        episode's step 0."""
        request = set_condition_request(condition_name, rack_offset, rack_yaw_offset, appearance)
        response = wait_for(self.reset_client.call_async(request), timeout, "set_condition")
        if not response.success:
            raise SimError(response.message)
        return response.stamp

    def check_task(self, timeout: float = 10.0) -> tuple[bool, str]:
        response = wait_for(self.check_client.call_async(CheckTask.Request()), timeout,
                            "check_task")
        return response.success, response.message
