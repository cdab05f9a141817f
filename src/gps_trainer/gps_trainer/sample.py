"""Trajectory samples: what one rollout on the robot or in simulation records.

A sample of condition i is tau = (x_0, u_0, ..., x_T-1, u_T-1) with observations o_t and the
exploration noise eps_t that produced u_t = K_t x_t + k_t + L_t eps_t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np


def _finite(name: str, value, ndim: int) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains non-finite values")
    return array


@dataclass(frozen=True, eq=False)
class Sample:
    """One trajectory: X (T x dX), U (T x dU), optional obs (T x dO) and noise (T x dU)."""

    X: np.ndarray
    U: np.ndarray
    condition: int
    obs: np.ndarray | None = None
    noise: np.ndarray | None = None

    def __post_init__(self) -> None:
        X = _finite("X", self.X, 2)
        U = _finite("U", self.U, 2)
        if U.shape[0] != X.shape[0]:
            raise ValueError(f"U: expected {X.shape[0]} time steps like X, got {U.shape[0]}")
        object.__setattr__(self, "X", X)
        object.__setattr__(self, "U", U)
        if self.obs is not None:
            obs = _finite("obs", self.obs, 2)
            if obs.shape[0] != X.shape[0]:
                raise ValueError(f"obs: expected {X.shape[0]} time steps, got {obs.shape[0]}")
            object.__setattr__(self, "obs", obs)
        if self.noise is not None:
            noise = _finite("noise", self.noise, 2)
            if noise.shape != U.shape:
                raise ValueError(f"noise: expected shape {U.shape} like U, got {noise.shape}")
            object.__setattr__(self, "noise", noise)
        if int(self.condition) != self.condition or self.condition < 0:
            raise ValueError(f"condition: expected a non-negative integer, got {self.condition!r}")

    @property
    def T(self) -> int:
        return self.X.shape[0]


@dataclass(frozen=True, eq=False)
class SampleBatch:
    """N samples stacked: X (N x T x dX), U (N x T x dU), obs, noise, conditions (N)."""

    samples: tuple[Sample, ...]

    def __post_init__(self) -> None:
        samples = tuple(self.samples)
        if not samples:
            raise ValueError("samples: a batch needs at least one sample")
        first = samples[0]
        for i, sample in enumerate(samples):
            if sample.X.shape != first.X.shape or sample.U.shape != first.U.shape:
                raise ValueError(f"samples[{i}]: X/U shapes {sample.X.shape}/{sample.U.shape} "
                                 f"differ from samples[0]'s {first.X.shape}/{first.U.shape}")
            if (sample.obs is None) != (first.obs is None):
                raise ValueError(f"samples[{i}]: obs present in some samples but not all")
            if (sample.noise is None) != (first.noise is None):
                raise ValueError(f"samples[{i}]: noise present in some samples but not all")
        object.__setattr__(self, "samples", samples)

    @classmethod
    def from_arrays(cls, X: np.ndarray, U: np.ndarray, condition: int | Sequence[int] = 0,
                    obs: np.ndarray | None = None,
                    noise: np.ndarray | None = None) -> "SampleBatch":
        """Split N x T x ... arrays into samples; one condition for all or one per sample."""
        X = np.asarray(X)
        conditions = np.broadcast_to(np.asarray(condition), (X.shape[0],))
        return cls(tuple(
            Sample(X=X[i], U=U[i], condition=int(conditions[i]),
                   obs=None if obs is None else obs[i], noise=None if noise is None else noise[i])
            for i in range(X.shape[0])))

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    @property
    def X(self) -> np.ndarray:
        return np.stack([s.X for s in self.samples])

    @property
    def U(self) -> np.ndarray:
        return np.stack([s.U for s in self.samples])

    @property
    def obs(self) -> np.ndarray | None:
        return None if self.samples[0].obs is None else np.stack([s.obs for s in self.samples])

    @property
    def noise(self) -> np.ndarray | None:
        return None if self.samples[0].noise is None else np.stack([s.noise for s in self.samples])

    @property
    def conditions(self) -> np.ndarray:
        return np.array([s.condition for s in self.samples])

    def for_condition(self, condition: int) -> "SampleBatch":
        """The samples of one condition."""
        return SampleBatch(tuple(s for s in self.samples if s.condition == condition))

    def __add__(self, other: "SampleBatch") -> "SampleBatch":
        return SampleBatch(self.samples + other.samples)

    def last(self, n: int) -> "SampleBatch":
        """The n most recent samples."""
        return SampleBatch(self.samples[-n:])
