"""The time-varying linear-Gaussian controller  p(u_t | x_t) = N(K_t x_t + k_t, Sigma_t).

The trajectory optimiser produces it and the controller node executes it, so it lives with the
policies that run on the robot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def as_finite_array(name: str, value, shape: tuple[int, ...]) -> np.ndarray:
    """`value` as a float array of `shape` with finite entries, or a ValueError naming `name`."""
    array = np.asarray(value, dtype=float)
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: contains non-finite values")
    return array


def cholesky_per_step(name: str, covariance: np.ndarray) -> np.ndarray:
    """Lower Cholesky factors of a stack of covariances (one batched factorisation), naming the
    first step that is not PD."""
    if not np.allclose(covariance, np.swapaxes(covariance, -1, -2), rtol=1e-8, atol=1e-10):
        raise ValueError(f"{name}: not symmetric")
    try:
        return np.linalg.cholesky(covariance)
    except np.linalg.LinAlgError:
        t = next(t for t, matrix in enumerate(covariance) if not is_positive_definite(matrix))
        raise ValueError(f"{name}[{t}]: not positive definite") from None


def is_positive_definite(matrix: np.ndarray) -> bool:
    """Whether a Cholesky factorisation of the matrix succeeds."""
    try:
        np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError:
        return False
    return True


@dataclass(frozen=True, eq=False)
class LinearGaussianController:
    """u_t = K_t x_t + k_t + L_t eps_t with eps_t ~ N(0, I) and L_t L_t^T = Sigma_t."""

    K: np.ndarray           # T x dU x dX
    k: np.ndarray           # T x dU
    covariance: np.ndarray  # T x dU x dU
    chol_covariance: np.ndarray = field(init=False, repr=False)  # L_t, lower triangular
    inv_covariance: np.ndarray = field(init=False, repr=False)   # Sigma_t^-1

    def __post_init__(self) -> None:
        K = np.asarray(self.K, dtype=float)
        if K.ndim != 3:
            raise ValueError(f"K: expected shape (T, dU, dX), got {K.shape}")
        T, dU, dX = K.shape
        object.__setattr__(self, "K", as_finite_array("K", K, (T, dU, dX)))
        object.__setattr__(self, "k", as_finite_array("k", self.k, (T, dU)))
        covariance = as_finite_array("covariance", self.covariance, (T, dU, dU))
        object.__setattr__(self, "covariance", covariance)
        chol = cholesky_per_step("covariance", covariance)
        object.__setattr__(self, "chol_covariance", chol)
        eye = np.broadcast_to(np.eye(dU), covariance.shape)
        object.__setattr__(self, "inv_covariance", np.linalg.solve(covariance, eye))

    @property
    def T(self) -> int:
        return self.K.shape[0]

    @property
    def dU(self) -> int:
        return self.K.shape[1]

    @property
    def dX(self) -> int:
        return self.K.shape[2]

    def act(self, t: int, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """u = K_t x + k_t + L_t noise (noise-free mean when noise is None)."""
        u = self.K[t] @ x + self.k[t]
        if noise is not None:
            u = u + self.chol_covariance[t] @ noise
        return u
