"""The policy step of BADMM guided policy search (paper Sec. 4.2): supervised learning of the
network policy pi_theta(u | o) = N(f_theta(o), Sigma_pi) from the trajectory distributions.

Mean: minibatch SGD (Adam) on the precision-weighted quadratic loss over the (i, t) pairs

    L(theta) = sum_{i,t} w_ti (f_theta(o_ti) - mu_ti)^T P_ti (f_theta(o_ti) - mu_ti) / sum w_ti

with mu_ti the target action (the trajectory mean offset by the BADMM dual), P_ti = C_ti^-1 the
trajectory's action precision and w_ti >= 0 the step weight (nu_t times an importance weight; 0
drops the step). Minibatches are drawn uniformly from the pairs with w_ti > 0 (each epoch a fresh
seeded permutation) and weighted by w~_ti = M w_ti / sum w (M such pairs), so the minibatch mean
of w~ (f - mu)^T P (f - mu) is an unbiased estimate of L. There is no factor 1/2; Adam's weight
decay adds weight_decay * theta to the gradient and is not part of the reported loss.

Covariance: the minimiser over Sigma of sum_{i,t} w_ti KL(N(m, Sigma) || N(mu_ti, C_ti)) is

    Sigma_pi = [ sum_{i,t} w_ti C_ti^-1 / sum_{i,t} w_ti ]^-1,

the paper's [ (1/NT) sum_{i,t} C_ti^-1 ]^-1 with weights.

The visuomotor CNN is first trained head-only (the FC layers on cached feature points, the vision
layers fixed), then end to end: each of the first `fc_only_calls` calls to `update` runs
`fc_only_iterations` head-only steps before its `iterations` end-to-end steps. A network without
vision layers has no head-only phase. The observation whitening is set from the first call's
observations (the pairs with w_ti > 0) and kept afterwards.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from gps_controller.policies.gaussian_policy import (GaussianPolicy, finite_array,
                                                     resolve_device, whitening_from_data)
from gps_controller.typed_config import ConfigError


@dataclass(frozen=True)
class PolicyOptConfig:
    """Policy SGD: Adam steps per call, minibatch, learning rate, L2 weight decay, the head-only
    warm-up of the first calls, the seed of the minibatch sampler, the device (None: CUDA when
    available, else the CPU), the whitening scale floor and the batch of full-data passes."""

    iterations: int = 3000
    fc_only_iterations: int = 1000
    fc_only_calls: int = 1
    batch_size: int = 25
    learning_rate: float = 1e-3
    weight_decay: float = 5e-3
    seed: int = 1
    device: str | None = None
    min_scale: float = 1e-3
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("iterations", "fc_only_iterations", "fc_only_calls"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{owner}.{name}: must be non-negative, "
                                  f"got {getattr(self, name)}")
        for name in ("batch_size", "eval_batch_size", "learning_rate", "min_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{owner}.{name}: must be positive, got {getattr(self, name)}")
        if self.weight_decay < 0:
            raise ConfigError(f"{owner}.weight_decay: must be non-negative, "
                              f"got {self.weight_decay}")


@dataclass(frozen=True)
class PolicyOptStats:
    """One `update`: the full-data loss L before and after, the SGD steps of each phase, and the
    time of the whole call, of the head-only phase (feature caching included) and of the
    end-to-end steps."""

    loss_before: float
    loss_after: float
    fc_only_steps: int
    steps: int
    batch_size: int
    seconds: float
    fc_only_seconds: float
    train_seconds: float

    @property
    def images_per_second(self) -> float:
        """(i, t) pairs per second through the end-to-end steps (one image each for the CNN)."""
        if self.steps == 0 or self.train_seconds <= 0.0:
            return math.nan
        return self.steps * self.batch_size / self.train_seconds


def weighted_quadratic_loss(mean: torch.Tensor, target: torch.Tensor,
                            weighted_precision: torch.Tensor) -> torch.Tensor:
    """mean_b (f_b - mu_b)^T P~_b (f_b - mu_b) over a batch: B x dU, B x dU, B x dU x dU."""
    diff = mean - target
    return torch.einsum("bi,bij,bj->b", diff, weighted_precision, diff).mean()


def policy_covariance(precision: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sigma_pi = [ sum w P / sum w ]^-1 over the leading axes of P (... x dU x dU) and w (...)."""
    precision = np.asarray(precision, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    dU = precision.shape[-1]
    mean_precision = np.einsum("k,kij->ij", weights.reshape(-1),
                               precision.reshape(-1, dU, dU)) / weights.sum()
    covariance = np.linalg.inv(0.5 * (mean_precision + mean_precision.T))
    return 0.5 * (covariance + covariance.T)


def mean_actions(policy: GaussianPolicy, obs, images=None, batch_size: int = 256) -> np.ndarray:
    """f(o~) for N x T observations (and uint8 N x T x H x W x 3 images): N x T x dU float64."""
    obs = np.asarray(obs)
    if obs.ndim != 3:
        raise ValueError(f"obs: expected N x T x dO, got shape {obs.shape}")
    n, t = obs.shape[:2]
    if images is not None:
        images = np.asarray(images)
        images = images.reshape(n * t, *images.shape[2:])
    means = policy.mean_actions(obs.reshape(n * t, -1), images, batch_size)
    return means.reshape(n, t, policy.dim_u)


@dataclass(frozen=True)
class _Data:
    """One call's data on the device, flattened over (i, t): obs, uint8 images (or None),
    targets, precisions scaled by w~, and the rows with w > 0."""

    obs: torch.Tensor
    images: torch.Tensor | None
    target: torch.Tensor
    weighted_precision: torch.Tensor
    rows: torch.Tensor


class PolicyOptimizer:
    """Fits a `GaussianPolicy` to the trajectory distributions; one `update` per BADMM policy
    step. Adam's state and the minibatch sampler persist across calls."""

    def __init__(self, policy: GaussianPolicy, config: PolicyOptConfig = PolicyOptConfig()) -> None:
        device = resolve_device(config.device)
        if policy.device != device:
            raise ValueError(f"policy: on {policy.device}, but the config asks for {device}; "
                             f"build the policy with device={str(device)!r}")
        self.policy = policy
        self.config = config
        self.device = device
        self.calls = 0
        self._dtype = next(policy.network.parameters()).dtype
        self._generator = torch.Generator().manual_seed(config.seed)
        self._adam = torch.optim.Adam(policy.network.parameters(), lr=config.learning_rate,
                                      weight_decay=config.weight_decay)

    def update(self, obs, images, target_mean, target_precision, weights) -> PolicyOptStats:
        """One policy step on N x T pairs: obs N x T x dO, images uint8 N x T x H x W x 3 (None
        without vision), target_mean N x T x dU, target_precision N x T x dU x dU, weights N x T."""
        start = time.perf_counter()
        arrays = self._check(obs, images, target_mean, target_precision, weights)
        obs, images, target_mean, target_precision, weights = arrays
        kept = weights.reshape(-1) > 0.0
        if self.calls == 0:
            kept_obs = obs.reshape(-1, obs.shape[-1])[kept]
            self.policy.set_whitening(*whitening_from_data(kept_obs, self.config.min_scale))
        data = self._to_device(obs, images, target_mean, target_precision, weights)
        loss_before = self._full_loss(data)

        fc_only_steps = self._fc_only_steps()
        phase_start = time.perf_counter()
        if fc_only_steps:
            self._train_head(data, fc_only_steps)
        fc_only_seconds = self._elapsed(phase_start)
        phase_start = time.perf_counter()
        self._train_end_to_end(data, self.config.iterations)
        train_seconds = self._elapsed(phase_start)

        self.policy.set_covariance(policy_covariance(target_precision, weights))
        loss_after = self._full_loss(data)
        self.calls += 1
        return PolicyOptStats(loss_before=loss_before, loss_after=loss_after,
                              fc_only_steps=fc_only_steps, steps=self.config.iterations,
                              batch_size=self.config.batch_size,
                              seconds=time.perf_counter() - start,
                              fc_only_seconds=fc_only_seconds, train_seconds=train_seconds)

    def _fc_only_steps(self) -> int:
        warm_up = hasattr(self.policy.network, "vision") and self.calls < self.config.fc_only_calls
        return self.config.fc_only_iterations if warm_up else 0

    def _elapsed(self, since: float) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - since

    def _to_device(self, obs, images, target_mean, target_precision, weights) -> _Data:
        """Flatten over (i, t), fold w~ = M w / sum w into the precisions, move to the device
        once (images stay uint8)."""
        n_pairs = weights.size
        flat_w = weights.reshape(-1)
        rows = np.flatnonzero(flat_w > 0.0)
        scaled_w = flat_w * (rows.size / flat_w.sum())
        dU = target_mean.shape[-1]
        weighted_precision = scaled_w[:, None, None] * target_precision.reshape(n_pairs, dU, dU)

        def tensor(array, dtype=self._dtype):
            return torch.as_tensor(array, dtype=dtype, device=self.device)

        image_tensor = None
        if images is not None:
            flat_images = np.ascontiguousarray(images.reshape(n_pairs, *images.shape[2:]))
            image_tensor = torch.from_numpy(flat_images).to(self.device)
        return _Data(obs=tensor(obs.reshape(n_pairs, -1)), images=image_tensor,
                     target=tensor(target_mean.reshape(n_pairs, dU)),
                     weighted_precision=tensor(weighted_precision),
                     rows=tensor(rows, torch.long))

    def _batches(self, data: _Data, steps: int) -> torch.Tensor:
        """steps x batch_size row indices: the kept rows in seeded random order, epoch after
        epoch."""
        n_rows, needed = data.rows.numel(), steps * self.config.batch_size
        epochs = [torch.randperm(n_rows, generator=self._generator)
                  for _ in range(-(-needed // n_rows))]
        order = torch.cat(epochs)[:needed].to(self.device)
        return data.rows[order].view(steps, self.config.batch_size)

    def _step(self, loss: torch.Tensor) -> None:
        self._adam.zero_grad(set_to_none=True)
        loss.backward()
        self._adam.step()

    def _train_end_to_end(self, data: _Data, steps: int) -> None:
        if steps == 0:
            return
        self.policy.network.train()
        for batch in self._batches(data, steps):
            images = None if data.images is None else data.images[batch]
            mean = self.policy.mean_tensor(data.obs[batch], images)
            self._step(weighted_quadratic_loss(mean, data.target[batch],
                                               data.weighted_precision[batch]))

    def _train_head(self, data: _Data, steps: int) -> None:
        """Adam on the FC head alone, its inputs [feature points, whitened obs] computed once
        with the vision layers fixed (the vision parameters get no gradient)."""
        inputs = self._head_inputs(data)
        head = self.policy.network.head
        head.train()
        for batch in self._batches(data, steps):
            self._step(weighted_quadratic_loss(head(inputs[batch]), data.target[batch],
                                               data.weighted_precision[batch]))

    def _head_inputs(self, data: _Data) -> torch.Tensor:
        """The CNN head's input for every pair: feature points, then the whitened obs."""
        network, chunk = self.policy.network, self.config.eval_batch_size
        whitened = (data.obs - data.obs.new_tensor(self.policy.obs_mean)) \
            / data.obs.new_tensor(self.policy.obs_scale)
        with torch.no_grad():
            points = torch.cat([network.vision(data.images[s:s + chunk])
                                for s in range(0, data.images.shape[0], chunk)])
        return torch.cat((points, whitened), dim=-1)

    def _full_loss(self, data: _Data) -> float:
        """L over all pairs with w > 0 (the mean of w~ (f - mu)^T P (f - mu) over them)."""
        self.policy.network.eval()
        total, chunk = 0.0, self.config.eval_batch_size
        with torch.inference_mode():
            for start in range(0, data.rows.numel(), chunk):
                rows = data.rows[start:start + chunk]
                images = None if data.images is None else data.images[rows]
                mean = self.policy.mean_tensor(data.obs[rows], images)
                loss = weighted_quadratic_loss(mean, data.target[rows],
                                               data.weighted_precision[rows])
                total += loss.item() * rows.numel()
        return total / data.rows.numel()

    def _check(self, obs, images, target_mean, target_precision, weights):
        """The arguments as validated arrays (float64, images uint8); ValueError naming the
        first bad argument."""
        policy = self.policy
        obs = finite_array("obs", obs)
        if obs.ndim != 3 or obs.shape[-1] != policy.dim_obs or 0 in obs.shape[:2]:
            raise ValueError(f"obs: expected N x T x {policy.dim_obs}, got shape {obs.shape}")
        n, t = obs.shape[:2]
        images = self.policy.check_images(images, (n, t))
        dU = policy.dim_u
        target_mean = finite_array("target_mean", target_mean, (n, t, dU))
        target_precision = finite_array("target_precision", target_precision, (n, t, dU, dU))
        _check_positive_definite(target_precision)
        weights = finite_array("weights", weights, (n, t))
        if np.any(weights < 0.0):
            raise ValueError("weights: must be non-negative")
        if not weights.sum() > 0.0:
            raise ValueError("weights: all zero, nothing to fit")
        return obs, images, target_mean, target_precision, weights


def _check_positive_definite(precision: np.ndarray) -> None:
    """Raise ValueError naming the first (i, t) whose precision is not symmetric PD."""
    transposed = precision.swapaxes(-1, -2)
    tolerance = 1e-8 * np.abs(precision).max(axis=(-1, -2), keepdims=True) + 1e-12
    asymmetric = np.any(np.abs(precision - transposed) > tolerance, axis=(-1, -2))
    if asymmetric.any():
        raise ValueError(f"target_precision: not symmetric at (i, t) = "
                         f"{np.argwhere(asymmetric)[0].tolist()}")
    not_pd = np.linalg.eigvalsh(0.5 * (precision + transposed))[..., 0] <= 0.0
    if not_pd.any():
        raise ValueError(f"target_precision: not positive definite at (i, t) = "
                         f"{np.argwhere(not_pd)[0].tolist()}")
