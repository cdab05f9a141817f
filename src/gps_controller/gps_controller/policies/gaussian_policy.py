"""The neural-network Gaussian policy that runs on the robot (the policy pi_theta of BADMM GPS):

    u ~ pi(u | o) = N(f(o~), Sigma),   u = f(o~) + L eps,   eps ~ N(0, I),   L L^T = Sigma,

with o~ = (o - mean) / scale the whitened vector observation (the robot configuration for the
visuomotor CNN, the full state for the full-state network; images are scaled to [0, 1] inside the
network) and a state-independent covariance Sigma (the trainer sets it in closed form,
Sigma = [ (1/NT) sum_{i,t} C_ti^{-1} ]^{-1}).

A policy travels in two forms: one file (`save` / `load`, a torch.save dict read back with
weights_only=True) and `NetworkPolicyParams` (`to_params` / `from_params`), the plain-data form
that `messages.network_policy_to_msg` puts into a gps_msgs/PolicyWeights message. Both carry the
architecture dict, so `build_network` rebuilds the network before the weights are loaded.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from gps_controller.messages import NetworkPolicyParams
from gps_controller.policies.networks import FullStateMLP, VisuomotorCNN, build_network

_FILE_KEYS = ("architecture", "state_dict", "obs_mean", "obs_scale", "covariance")


class PolicyFileError(ValueError):
    """A policy file that is not a saved GaussianPolicy (GaussianPolicy.load)."""


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or CUDA when available and the CPU otherwise."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def whitening_from_data(obs: np.ndarray, min_scale: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and standard deviation of N x dO observations; the scale is floored at
    `min_scale` so constant dimensions are not blown up."""
    obs = finite_array("obs", obs, None)
    if obs.ndim != 2 or obs.shape[0] == 0:
        raise ValueError(f"obs: expected a non-empty N x dO array, got shape {obs.shape}")
    return obs.mean(axis=0), np.maximum(obs.std(axis=0), min_scale)


def finite_array(name: str, value, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """`value` as float64 of `shape` (any when None), or a ValueError naming `name` and the
    first non-finite index."""
    array = np.asarray(value, dtype=np.float64)
    if shape is not None and array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        raise ValueError(f"{name}: contains NaN or inf at index {np.argwhere(bad)[0].tolist()}")
    return array


def _cholesky(covariance: np.ndarray) -> np.ndarray:
    if not np.allclose(covariance, covariance.T, rtol=1e-9, atol=1e-12):
        raise ValueError("covariance: not symmetric")
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        raise ValueError("covariance: not positive definite") from None


class GaussianPolicy:
    """u ~ N(f((o - mean) / scale), Sigma) around a `VisuomotorCNN` or a `FullStateMLP`."""

    def __init__(self, network: VisuomotorCNN | FullStateMLP, obs_mean=None, obs_scale=None,
                 covariance=None, device: str | torch.device | None = None) -> None:
        self.device = resolve_device(device)
        self.network = network.to(self.device)
        self._dtype = next(network.parameters()).dtype
        dim_obs, dim_u = network.dim_obs, network.dim_u
        self.set_whitening(np.zeros(dim_obs) if obs_mean is None else obs_mean,
                           np.ones(dim_obs) if obs_scale is None else obs_scale)
        self.set_covariance(np.eye(dim_u) if covariance is None else covariance)

    @property
    def dim_obs(self) -> int:
        return self.network.dim_obs

    @property
    def dim_u(self) -> int:
        return self.network.dim_u

    @property
    def uses_images(self) -> bool:
        return self.network.uses_images

    @property
    def architecture(self) -> dict:
        return self.network.architecture()

    def set_whitening(self, obs_mean, obs_scale) -> None:
        """o~ = (o - obs_mean) / obs_scale for the vector part of the observation."""
        shape = (self.dim_obs,)
        mean = finite_array("obs_mean", obs_mean, shape)
        scale = finite_array("obs_scale", obs_scale, shape)
        if np.any(scale <= 0.0):
            raise ValueError("obs_scale: must be positive")
        self.obs_mean, self.obs_scale = mean, scale
        self._mean_t = torch.as_tensor(mean, dtype=self._dtype, device=self.device)
        self._scale_t = torch.as_tensor(scale, dtype=self._dtype, device=self.device)

    def set_covariance(self, covariance) -> None:
        """Sigma (dU x dU, symmetric positive definite) and its lower Cholesky factor L."""
        covariance = finite_array("covariance", covariance, (self.dim_u, self.dim_u))
        self.chol_covariance = _cholesky(covariance)
        self.covariance = covariance

    def mean_tensor(self, obs: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """f(o~) on tensors already on the policy's device, differentiable (for policy SGD)."""
        return self.network((obs - self._mean_t) / self._scale_t, images)

    def mean_actions(self, obs, images=None, batch_size: int = 256) -> np.ndarray:
        """f(o~) for N observations (N x dO, and uint8 N x H x W x 3 images for the CNN),
        evaluated in batches of `batch_size`; returns N x dU float64."""
        obs = self._check_obs(obs, batched=True)
        images = self._check_images(images, batched=True, n=obs.shape[0])
        out = []
        with torch.inference_mode():
            for start in range(0, obs.shape[0], batch_size):
                chunk = slice(start, start + batch_size)
                out.append(self._mean(obs[chunk], None if images is None else images[chunk]))
        return np.concatenate(out) if out else np.zeros((0, self.dim_u))

    def act(self, obs, image=None, noise=None) -> np.ndarray:
        """One control step: u = f(o~) + L noise (noise ~ N(0, I) of size dU, or None for the
        mean). obs is the configuration part of o (the full state for the full-state network)
        and image one uint8 H x W x 3 frame for the CNN. Returns dU float64 torques."""
        obs = self._check_obs(obs, batched=False)[None]
        images = self._check_images(image, batched=False, n=1)
        with torch.inference_mode():
            u = self._mean(obs, images)[0]
        if noise is not None:
            u = u + self.chol_covariance @ finite_array("noise", noise, (self.dim_u,))
        return u

    def _mean(self, obs: np.ndarray, images: np.ndarray | None) -> np.ndarray:
        obs_t = torch.as_tensor(obs, dtype=self._dtype, device=self.device)
        images_t = None if images is None else torch.from_numpy(images).to(self.device)
        return self.mean_tensor(obs_t, images_t).double().cpu().numpy()

    def _check_obs(self, obs, batched: bool) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float64)
        expected = "N x dO" if batched else "dO"
        if obs.ndim != (2 if batched else 1) or obs.shape[-1] != self.dim_obs:
            raise ValueError(f"obs: expected {expected} with dO = {self.dim_obs}, "
                             f"got shape {obs.shape}")
        return finite_array("obs", obs, None)

    def check_images(self, images, leading: tuple[int, ...]) -> np.ndarray | None:
        """`images` as uint8 of shape leading + (H, W, C) for this network, or None for a
        network without vision; a ValueError naming `images` otherwise."""
        if not self.uses_images:
            if images is not None:
                raise ValueError(f"images: {self.network.kind} takes no images")
            return None
        if images is None:
            raise ValueError(f"images: {self.network.kind} needs images")
        images = np.asarray(images)
        h, w = self.network.config.image_size
        expected = (*leading, h, w, self.network.config.image_channels)
        if images.dtype != np.uint8 or images.shape != expected:
            raise ValueError(f"images: expected uint8 of shape {expected}, got "
                             f"{images.dtype} {images.shape}")
        return images

    def _check_images(self, images, batched: bool, n: int) -> np.ndarray | None:
        images = self.check_images(images, (n,) if batched else ())
        if images is None:
            return None
        images = images if batched else images[None]
        return np.ascontiguousarray(images) if images.flags.writeable else images.copy()

    def to_params(self) -> NetworkPolicyParams:
        """The policy as plain data for a PolicyWeights message (tensors as float32)."""
        return NetworkPolicyParams(
            architecture=self.architecture,
            tensors={name: value.detach().cpu().numpy().astype(np.float32)
                     for name, value in self.network.state_dict().items()},
            obs_mean=self.obs_mean.copy(), obs_scale=self.obs_scale.copy(),
            covariance=self.covariance.copy())

    @classmethod
    def from_params(cls, params: NetworkPolicyParams,
                    device: str | torch.device | None = None) -> "GaussianPolicy":
        """Rebuild a policy from plain data (e.g. from `messages.network_policy_from_msg`)."""
        state_dict = {name: torch.from_numpy(np.array(value, dtype=np.float32))
                      for name, value in params.tensors.items()}
        return cls._build(params.architecture, state_dict, params.obs_mean, params.obs_scale,
                          params.covariance, device)

    def save(self, path: str | Path) -> None:
        """Write architecture, weights, whitening and covariance to one file."""
        torch.save({
            "architecture": self.architecture,
            "state_dict": {k: v.detach().cpu() for k, v in self.network.state_dict().items()},
            "obs_mean": torch.from_numpy(self.obs_mean),
            "obs_scale": torch.from_numpy(self.obs_scale),
            "covariance": torch.from_numpy(self.covariance),
        }, Path(path))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device | None = None) -> "GaussianPolicy":
        """Read a file written by `save` (tensors and plain data only: weights_only=True).
        A file torch cannot read (not a torch file, truncated, or holding more than tensors and
        plain data) or one that is not a saved policy raises PolicyFileError naming it; a
        missing file raises FileNotFoundError."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"policy file not found: {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as exc:
            raise PolicyFileError(f"{path}: torch cannot read it as a saved policy "
                                  f"({type(exc).__name__}; a saved policy is a torch file of "
                                  f"tensors and plain data only)") from None
        missing = [key for key in _FILE_KEYS if not isinstance(data, dict) or key not in data]
        if missing:
            raise PolicyFileError(f"{path}: not a saved policy, missing {missing}")
        try:
            return cls._build(data["architecture"], data["state_dict"],
                              data["obs_mean"].numpy(), data["obs_scale"].numpy(),
                              data["covariance"].numpy(), device)
        except ValueError as exc:
            raise PolicyFileError(f"{path}: {exc}") from None

    @classmethod
    def _build(cls, architecture, state_dict, obs_mean, obs_scale, covariance,
               device) -> "GaussianPolicy":
        network = build_network(architecture)
        _check_fits(network, state_dict)
        network.load_state_dict(state_dict)
        return cls(network, obs_mean, obs_scale, covariance, device)


def _check_fits(network: VisuomotorCNN | FullStateMLP, state_dict: dict) -> None:
    """Raise ValueError naming every missing, unexpected or mis-shaped tensor."""
    expected = network.state_dict()
    problems = []
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{name} {list(state_dict[name].shape)} (expected {list(expected[name].shape)})"
             for name in expected if name in state_dict
             and tuple(state_dict[name].shape) != tuple(expected[name].shape)]
    for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if names:
            problems.append(f"{label}: {', '.join(names)}")
    if problems:
        raise ValueError(f"tensors do not fit architecture {network.kind!r}: "
                         + "; ".join(problems))
