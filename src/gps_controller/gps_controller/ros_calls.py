"""Blocking calls on rclpy futures, for code that runs beside a spinning executor (a trainer's
main thread, a test): wait for the future with a timeout, and say what timed out."""

from __future__ import annotations

import threading


class CallTimeout(TimeoutError):
    """A service, action or topic answer did not come in time."""


def wait_for(future, timeout: float, what: str):
    """The future's result once done (spun by another thread); CallTimeout after `timeout` s."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    if not done.wait(timeout):
        future.cancel()
        raise CallTimeout(f"{what}: no answer within {timeout:.1f} s")
    return future.result()
