"""Local quadratic cost model l(x_t, u_t) ~ 0.5 z^T C_t z + c_t^T z + cc_t, z = [x_t; u_t].

The trajectory optimiser works with this model in absolute coordinates. It is the second-order
expansion of the task cost around each sample tau_i, re-centred at z = 0 and averaged over the N
samples of a condition:

    C_t  = mean_i l_zz(z_it)
    c_t  = mean_i [ l_z(z_it) - l_zz(z_it) z_it ]
    cc_t = mean_i [ l(z_it) - l_z(z_it)^T z_it + 0.5 z_it^T l_zz(z_it) z_it ]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_trainer.costs import Cost
from gps_trainer.linear_gaussian import TrajectoryMarginals


@dataclass(frozen=True, eq=False)
class QuadraticCost:
    """l_t(z) = 0.5 z^T C_t z + c_t^T z + cc_t with z = [x; u]."""

    C: np.ndarray   # T x (dX+dU) x (dX+dU)
    c: np.ndarray   # T x (dX+dU)
    cc: np.ndarray  # T

    def __post_init__(self) -> None:
        C = np.asarray(self.C, dtype=float)
        if C.ndim != 3 or C.shape[1] != C.shape[2]:
            raise ValueError(f"C: expected shape (T, n, n), got {C.shape}")
        if np.asarray(self.c).shape != C.shape[:2]:
            raise ValueError(f"c: expected shape {C.shape[:2]}, got {np.asarray(self.c).shape}")
        if np.asarray(self.cc).shape != C.shape[:1]:
            raise ValueError(f"cc: expected shape {C.shape[:1]}, got {np.asarray(self.cc).shape}")
        for name in ("C", "c", "cc"):
            if not np.all(np.isfinite(getattr(self, name))):
                raise ValueError(f"{name}: contains non-finite values")

    @property
    def T(self) -> int:
        return self.C.shape[0]

    def __add__(self, other: "QuadraticCost") -> "QuadraticCost":
        return QuadraticCost(self.C + other.C, self.c + other.c, self.cc + other.cc)

    def scaled(self, weight: np.ndarray | float) -> "QuadraticCost":
        """Multiply step t by weight (a scalar or one weight per step)."""
        w = np.broadcast_to(np.asarray(weight, dtype=float), (self.T,))
        return QuadraticCost(w[:, None, None] * self.C, w[:, None] * self.c, w * self.cc)


def fit_quadratic_cost(cost: Cost, X: np.ndarray, U: np.ndarray) -> QuadraticCost:
    """Average over samples of the cost's expansion around each sample, re-centred at z = 0."""
    N, T, dX = X.shape
    n = dX + U.shape[2]
    C, c, cc = np.zeros((T, n, n)), np.zeros((T, n)), np.zeros(T)
    for X_i, U_i in zip(X, U):
        e = cost.evaluate(X_i, U_i)
        z = np.concatenate([X_i, U_i], axis=1)
        lz = np.concatenate([e.lx, e.lu], axis=1)
        lzz = np.block([[e.lxx, np.swapaxes(e.lux, 1, 2)], [e.lux, e.luu]])
        lzz_z = np.einsum("tij,tj->ti", lzz, z)
        C += lzz
        c += lz - lzz_z
        cc += e.l - np.sum(lz * z, axis=1) + 0.5 * np.sum(z * lzz_z, axis=1)
    return QuadraticCost(C / N, c / N, cc / N)


def expected_cost(model: QuadraticCost, marginals: TrajectoryMarginals) -> np.ndarray:
    """E[l_t] under N(mu_t, S_t): 0.5 mu^T C mu + 0.5 tr(C S) + c^T mu + cc, per step."""
    mu, S = marginals.mu, marginals.sigma
    quadratic = np.einsum("ti,tij,tj->t", mu, model.C, mu) + np.einsum("tij,tji->t", model.C, S)
    return 0.5 * quadratic + np.sum(model.c * mu, axis=1) + model.cc
