"""How a node's main ends its spin at shutdown without a traceback.

Ctrl-C raises KeyboardInterrupt, `rclpy.shutdown` from elsewhere ExternalShutdownException. A
third way is a race: rclpy's SIGINT handler shuts the context down from its own thread at once,
while the KeyboardInterrupt reaches the main thread only when the running callback returns to
Python; a callback busy in C (a MuJoCo step, a render, a network's forward pass) then meets the
dead context at its next publish, which raises rclpy's RCLError (a RuntimeError). Once the
context is shut down, that error is the shutdown, not a fault of the node.
"""

from __future__ import annotations

from contextlib import contextmanager

import rclpy
from rclpy.executors import ExternalShutdownException


@contextmanager
def ends_at_shutdown(context=None):
    """Swallow what ending the spin at shutdown raises: KeyboardInterrupt,
    ExternalShutdownException, and a RuntimeError raised once `context` (default: the global
    one) is no longer ok. A RuntimeError while the context is ok is a fault and propagates."""
    try:
        yield
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        if rclpy.ok(context=context):
            raise
