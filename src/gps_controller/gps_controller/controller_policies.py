"""The policies the controller node holds, by version, and one uniform way to run them.

A PolicyUpdate message is validated in full (dimensions against the layout, finite values, a
version above every one held, an architecture the network builder knows) and decoded before it
is stored; storing is one dictionary assignment under a lock, so a control step sees either the
old or the new set, never half of an update. A trial looks up its policy once, at its start.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch

from gps_controller.layout import Layout
from gps_controller.message_validation import MessageError, validate_policy_update
from gps_controller.messages import linear_gaussian_from_msg, network_policy_from_msg
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.linear_gaussian import LinearGaussianController

LATEST = 0
"""A trial's policy_version 0 asks for the newest policy held."""
NOT_HELD = "is not held"
"""Words of the refusal of a trial whose policy version has not arrived (or was replaced)."""
PROBE = 2**64 - 1
"""The policy_version of a readiness probe (ControllerClient.wait_until_ready): refused at once,
it moves nothing and only shows that the action's answers reach the client."""


@dataclass(frozen=True, eq=False)
class LinearGaussianPolicy:
    """u_t = K_t x_t + k_t + L_t eps_t for one condition (acts on the full state x)."""

    version: int
    controller: LinearGaussianController
    condition: int
    kind = "linear_gaussian"
    uses_images = False
    image_size = None

    @property
    def horizon(self) -> int | None:
        return self.controller.T

    def act(self, t: int, x: np.ndarray, config: np.ndarray, image, noise: np.ndarray
            ) -> np.ndarray:
        return self.controller.act(t, x, noise)

    @property
    def feature_points(self) -> np.ndarray | None:
        return None


class NetworkPolicy:
    """u = f(o) + L eps with a full-state network (o = x) or the visuomotor CNN (o = the
    configuration and the camera image). The CNN's feature points of the last step are kept
    (normalised image coordinates, K x 2) for display, read off its spatial softmax by a
    forward hook so that they cost no second pass."""

    kind = "neural_network"
    horizon = None

    def __init__(self, version: int, policy: GaussianPolicy) -> None:
        self.version = version
        self.policy = policy
        self.uses_images = policy.uses_images
        self.image_size = (tuple(policy.network.config.image_size) if self.uses_images
                           else None)
        self._points: torch.Tensor | None = None
        if self.uses_images:
            policy.network.vision.softmax.register_forward_hook(self._keep_points)

    def act(self, t: int, x: np.ndarray, config: np.ndarray, image, noise: np.ndarray
            ) -> np.ndarray:
        if self.uses_images:
            return self.policy.act(config, image, noise)
        return self.policy.act(x, None, noise)

    @property
    def feature_points(self) -> np.ndarray | None:
        if self._points is None:
            return None
        return self._points[0].reshape(-1, 2).double().cpu().numpy()

    def _keep_points(self, module, inputs, output: torch.Tensor) -> None:
        self._points = output.detach()


ControllerPolicy = LinearGaussianPolicy | NetworkPolicy


class PolicyStore:
    """Versioned policies: the newest network policy and the newest controller per condition."""

    def __init__(self, layout: Layout, device: str = "cpu") -> None:
        self.layout = layout
        self.device = device
        self._lock = threading.Lock()
        self._by_version: dict[int, ControllerPolicy] = {}
        self._last_version = 0

    @property
    def last_version(self) -> int:
        return self._last_version

    def apply(self, msg) -> ControllerPolicy:
        """Validate and decode a PolicyUpdate, then store it; raises MessageError (naming the
        field) and leaves the held policies untouched when the update is bad."""
        layout = self.layout
        validate_policy_update(msg, last_version=self._last_version, dim_x=layout.dX,
                               dim_u=layout.dU)
        if msg.kind == msg.KIND_LINEAR_GAUSSIAN:
            K, k, chol = linear_gaussian_from_msg(msg.linear_gaussian)
            covariance = chol @ np.swapaxes(chol, 1, 2)
            try:
                controller = LinearGaussianController(K, k, covariance)
            except ValueError as exc:
                raise MessageError("linear_gaussian", str(exc)) from None
            policy: ControllerPolicy = LinearGaussianPolicy(msg.version, controller,
                                                            msg.condition)
        else:
            policy = NetworkPolicy(msg.version, self._decode_network(msg.neural_network))
        with self._lock:
            if msg.version <= self._last_version:
                raise MessageError("version", f"{msg.version} is not above the running version "
                                   f"{self._last_version}")
            kept = {v: p for v, p in self._by_version.items() if not _replaced_by(p, policy)}
            kept[msg.version] = policy
            self._by_version = kept
            self._last_version = msg.version
        return policy

    def get(self, version: int) -> ControllerPolicy:
        """The policy of `version` (LATEST: the newest held); KeyError naming what is held."""
        with self._lock:
            held = self._by_version
            if version == LATEST and held:
                return held[max(held)]
            if version not in held:
                raise KeyError(f"policy version {version} {NOT_HELD}; held: {sorted(held)}")
            return held[version]

    def _decode_network(self, weights) -> GaussianPolicy:
        layout = self.layout
        params = network_policy_from_msg(weights)
        try:
            policy = GaussianPolicy.from_params(params, device=self.device)
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise MessageError("neural_network.architecture", f"cannot build the network: "
                               f"{exc}") from None
        expected_obs = layout.dO_config if policy.uses_images else layout.dX
        if policy.dim_obs != expected_obs or policy.dim_u != layout.dU:
            raise MessageError("neural_network.architecture",
                               f"takes {policy.dim_obs} inputs and gives {policy.dim_u} torques; "
                               f"this robot has {expected_obs} and {layout.dU}")
        return policy


def _replaced_by(old: ControllerPolicy, new: ControllerPolicy) -> bool:
    """A new network replaces every older network; a new controller the one of its condition."""
    if isinstance(new, NetworkPolicy):
        return isinstance(old, NetworkPolicy)
    return isinstance(old, LinearGaussianPolicy) and old.condition == new.condition
