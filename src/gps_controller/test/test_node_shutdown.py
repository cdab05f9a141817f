"""ends_at_shutdown on real rclpy: a publish after the context was shut down (the SIGINT
handler's race with a running callback) ends quietly; the same error while the context is
alive, or any other error, propagates."""

import pytest
import rclpy
from rclpy.executors import ExternalShutdownException
from std_msgs.msg import Float64MultiArray

from gps_controller.node_shutdown import ends_at_shutdown


@pytest.fixture
def publisher():
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("shutdown_probe", context=context)
    pub = node.create_publisher(Float64MultiArray, "/shutdown_probe", 1)
    yield context, pub
    node.destroy_node()
    rclpy.try_shutdown(context=context)


def test_a_publish_after_the_context_is_shut_down_ends_quietly(publisher):
    context, pub = publisher
    context.handle.shutdown()  # what the SIGINT handler's thread does: rcl's context goes
    with pytest.raises(RuntimeError, match="context is invalid"):
        pub.publish(Float64MultiArray(data=[0.0]))  # what the running callback then meets
    reached = False
    with ends_at_shutdown(context):
        pub.publish(Float64MultiArray(data=[0.0]))
        reached = True
    assert not reached


@pytest.mark.parametrize("error", [KeyboardInterrupt, ExternalShutdownException])
def test_an_interrupt_or_external_shutdown_ends_quietly(publisher, error):
    context, _ = publisher
    with ends_at_shutdown(context):
        raise error()


def test_a_runtime_error_while_the_context_is_alive_propagates(publisher):
    context, pub = publisher
    with pytest.raises(RuntimeError, match="fault"):
        with ends_at_shutdown(context):
            pub.publish(Float64MultiArray(data=[0.0]))
            raise RuntimeError("a fault of the node")


def test_other_errors_propagate_after_shutdown_too(publisher):
    context, _ = publisher
    context.handle.shutdown()
    with pytest.raises(ValueError):
        with ends_at_shutdown(context):
            raise ValueError("bad input")
