"""Calling a ROS service from a web-server thread while the node's executor spins in another:
the caller waits on the future with a timeout, so a missing or silent peer becomes a message
for the page instead of a hung request."""

from __future__ import annotations

import threading

SERVICE_WAIT_S = 1.0
"""How long to look for a service before saying it is not there."""
ANSWER_WAIT_S = 15.0
"""How long a service may take to answer (a reset re-solves the left arm's IK)."""


class PeerUnavailable(RuntimeError):
    """The node that should answer is not running or did not answer in time."""


def call_service(client, request, who: str, answer_wait_s: float = ANSWER_WAIT_S):
    """Send `request` on `client` and return the response; `who` names the node expected to
    offer the service, for the message. Raises PeerUnavailable."""
    if not client.wait_for_service(timeout_sec=SERVICE_WAIT_S):
        raise PeerUnavailable(f"service {client.srv_name} is not available: is {who} running?")
    future = client.call_async(request)
    answered = threading.Event()
    future.add_done_callback(lambda _: answered.set())
    if not answered.wait(answer_wait_s):
        client.remove_pending_request(future)
        raise PeerUnavailable(f"service {client.srv_name} did not answer within "
                              f"{answer_wait_s:.0f} s")
    return future.result()
