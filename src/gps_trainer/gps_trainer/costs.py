"""Costs l(x_t, u_t) with analytic first and second derivatives (paper Sec. 4, Appendix).

    end-effector points:  l_t = 0.5 l2 sum_j w_tj d_j^2 + 0.5 l1 log(alpha + sum_j (w_tj d_j)^2)
                          d = x[ee_points_rel_target] - offset, w_tj = r_t wp_j with r_t a ramp
                          over time (its final step multiplied by final_weight), zero outside
                          the term's time window; offset 0 pulls the points onto their targets,
                          a non-zero offset onto a waypoint placed relative to them
    torque:               l_t = 0.5 u^T diag(w) u,   w = scale / PR2_GAINS
    sum:                  l_t = sum_i c_i l_t^(i)

Each cost maps a trajectory (X: T x dX, U: T x dU) to a `CostExpansion`: l (T), lx (T x dX),
lu (T x dU), lxx (T x dX x dX), luu (T x dU x dU), lux (T x dU x dX).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gps_controller.layout import PR2_RIGHT_ARM, Layout

from gps_trainer.pr2 import PR2_GAINS

RAMPS = ("constant", "linear", "quadratic", "final_only")


@dataclass(frozen=True, eq=False)
class CostExpansion:
    """Values and derivatives of a cost along one trajectory."""

    l: np.ndarray
    lx: np.ndarray
    lu: np.ndarray
    lxx: np.ndarray
    luu: np.ndarray
    lux: np.ndarray

    @classmethod
    def zeros(cls, T: int, dX: int, dU: int) -> "CostExpansion":
        return cls(np.zeros(T), np.zeros((T, dX)), np.zeros((T, dU)), np.zeros((T, dX, dX)),
                   np.zeros((T, dU, dU)), np.zeros((T, dU, dX)))

    def __add__(self, other: "CostExpansion") -> "CostExpansion":
        return CostExpansion(self.l + other.l, self.lx + other.lx, self.lu + other.lu,
                             self.lxx + other.lxx, self.luu + other.luu, self.lux + other.lux)

    def scaled(self, weight: float) -> "CostExpansion":
        return CostExpansion(weight * self.l, weight * self.lx, weight * self.lu,
                             weight * self.lxx, weight * self.luu, weight * self.lux)


class Cost(Protocol):
    def evaluate(self, X: np.ndarray, U: np.ndarray) -> CostExpansion:
        """Values and derivatives along the trajectory X (T x dX), U (T x dU)."""


def time_ramp(ramp: str, T: int, final_weight: float) -> np.ndarray:
    """r_t: constant 1, linear (t+1)/T, quadratic ((t+1)/T)^2 or final-only; r_T-1 *= final."""
    progress = np.arange(1, T + 1) / T
    if ramp == "constant":
        weights = np.ones(T)
    elif ramp == "linear":
        weights = progress
    elif ramp == "quadratic":
        weights = progress ** 2
    elif ramp == "final_only":
        weights = np.zeros(T)
        weights[-1] = 1.0
    else:
        raise ValueError(f"ramp: expected one of {RAMPS}, got {ramp!r}")
    weights[-1] *= final_weight
    return weights


@dataclass(frozen=True)
class PointCostConfig:
    """Penalty on the end-effector points' offsets from their targets (one entry per coordinate)."""

    weight: float = 1.0
    l1: float = 0.1
    l2: float = 1e-4
    alpha: float = 1e-5
    ramp: str = "linear"
    final_weight: float = 1.0
    point_weights: tuple[float, ...] | None = None
    block: str = "ee_points_rel_target"
    target_offset: tuple[float, ...] | None = None
    window: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        if self.ramp not in RAMPS:
            raise ValueError(f"ramp: expected one of {RAMPS}, got {self.ramp!r}")
        if not 0.0 <= self.window[0] < self.window[1] <= 1.0:
            raise ValueError(f"window: need 0 <= start < end <= 1 (fractions of the episode), "
                             f"got {self.window}")
        if self.alpha <= 0:
            raise ValueError(f"alpha: must be positive, got {self.alpha}")
        for name in ("l1", "l2", "final_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: must be non-negative, got {getattr(self, name)}")


@dataclass(frozen=True)
class TorqueCostConfig:
    """0.5 u^T diag(w) u with w = scale / gains (gains default to PR2_GAINS)."""

    weight: float = 1.0
    scale: float = 5e-3
    gains: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.gains is not None and min(self.gains) <= 0:
            raise ValueError(f"gains: must be positive, got {self.gains}")


@dataclass(frozen=True)
class CostConfig:
    """The task cost: a torque penalty plus end-effector point terms (pr2_badmm defaults)."""

    torque: TorqueCostConfig = field(default_factory=TorqueCostConfig)
    points: tuple[PointCostConfig, ...] = (
        PointCostConfig(l1=0.1, l2=1e-4, ramp="linear"),
        PointCostConfig(l1=1.0, l2=0.0, ramp="final_only", final_weight=10.0),
    )


class PointCost:
    """l_t = 0.5 l2 sum w d^2 + 0.5 l1 log(alpha + sum (w d)^2), d = x[block] - target,
    w = r_t wp."""

    def __init__(self, config: PointCostConfig, layout: Layout = PR2_RIGHT_ARM,
                 target: np.ndarray | None = None) -> None:
        self.config = config
        self.block = layout.state_slice(config.block)
        size = self.block.stop - self.block.start
        self.point_weights = (np.ones(size) if config.point_weights is None
                              else np.asarray(config.point_weights, dtype=float))
        if self.point_weights.shape != (size,):
            raise ValueError(f"point_weights: expected {size} entries for block "
                             f"{config.block!r}, got {self.point_weights.shape[0]}")
        if target is None and config.target_offset is not None:
            offset = np.asarray(config.target_offset, dtype=float)
            target = np.tile(offset, size // 3) if offset.shape == (3,) else offset
        self.target = np.zeros(size) if target is None else np.asarray(target, dtype=float)
        if self.target.shape != (size,):
            raise ValueError(f"target_offset: expected 3 or {size} entries, got "
                             f"{self.target.shape[0]}")

    def evaluate(self, X: np.ndarray, U: np.ndarray) -> CostExpansion:
        T, dX = X.shape
        c = self.config
        progress = np.arange(1, T + 1) / T
        inside = (progress > c.window[0]) & (progress <= c.window[1])
        ramp = (time_ramp(c.ramp, T, c.final_weight) * inside)[:, None]
        wp = ramp * self.point_weights                # T x D: w_tj = r_t wp_j
        d = X[:, self.block] - self.target
        s = c.alpha + np.sum((wp * d) ** 2, axis=1)   # T
        l = 0.5 * c.l2 * np.sum(wp * d ** 2, axis=1) + 0.5 * c.l1 * np.log(s)
        wp2d = wp ** 2 * d
        ld = c.l2 * wp * d + c.l1 * wp2d / s[:, None]
        ldd = (c.l2 * _diag(wp) + c.l1 * _diag(wp ** 2) / s[:, None, None]
               - 2.0 * c.l1 * wp2d[:, :, None] * wp2d[:, None, :] / (s ** 2)[:, None, None])
        out = CostExpansion.zeros(T, dX, U.shape[1])
        out.l[:] = l
        out.lx[:, self.block] = ld
        out.lxx[:, self.block, self.block] = ldd
        return out


class TorqueCost:
    """l_t = 0.5 u^T diag(w) u, l_u = w * u, l_uu = diag(w)."""

    def __init__(self, config: TorqueCostConfig) -> None:
        gains = PR2_GAINS if config.gains is None else np.asarray(config.gains, dtype=float)
        self.weights = config.scale / gains

    def evaluate(self, X: np.ndarray, U: np.ndarray) -> CostExpansion:
        T, dU = U.shape
        if dU != self.weights.size:
            raise ValueError(f"U: expected {self.weights.size} action dimensions, got {dU}")
        out = CostExpansion.zeros(T, X.shape[1], dU)
        out.l[:] = 0.5 * np.sum(self.weights * U ** 2, axis=1)
        out.lu[:] = self.weights * U
        out.luu[:] = np.diag(self.weights)
        return out


class WeightedSumCost:
    """l = sum_i c_i l^(i), and likewise for every derivative."""

    def __init__(self, costs: list[Cost], weights: list[float]) -> None:
        if len(costs) != len(weights):
            raise ValueError(f"weights: expected {len(costs)} entries, got {len(weights)}")
        self.costs = costs
        self.weights = weights

    def evaluate(self, X: np.ndarray, U: np.ndarray) -> CostExpansion:
        total = CostExpansion.zeros(X.shape[0], X.shape[1], U.shape[1])
        for cost, weight in zip(self.costs, self.weights):
            total = total + cost.evaluate(X, U).scaled(weight)
        return total


def build_cost(config: CostConfig, layout: Layout = PR2_RIGHT_ARM) -> WeightedSumCost:
    """The task cost described by `config`, for states laid out by `layout`."""
    costs: list[Cost] = [TorqueCost(config.torque)]
    weights = [config.torque.weight]
    for point_config in config.points:
        costs.append(PointCost(point_config, layout))
        weights.append(point_config.weight)
    return WeightedSumCost(costs, weights)


def _diag(v: np.ndarray) -> np.ndarray:
    """Stack of diagonal matrices from the rows of v (T x D -> T x D x D)."""
    return v[:, :, None] * np.eye(v.shape[1])
