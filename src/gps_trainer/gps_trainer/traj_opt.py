"""Trajectory optimisation under a KL trust region, with the BADMM terms (paper Sec. 4, Alg. 2).

For one condition the trajectory step solves

    min_p  E_p[ sum_t l(x_t, u_t) - u_t^T lambda_t ] + sum_t nu_t E_p KL(p(u_t|x_t) || pi(u_t|x_t))
    s.t.   KL(p(tau) || p_prev(tau)) <= epsilon

through its Lagrangian with multiplier eta. Per time step that is the maximum-entropy problem
min E_p[f_t] - H(p(u_t|x_t)) with the augmented cost

    f_t = (l_t - u^T lambda_t - eta log p_prev(u|x) - nu_t log pi(u|x)) / (eta + nu_t),

solved by the LQR backward pass with value scale s_t = (eta + nu_t+1) / (eta + nu_t). With
lambda = 0 and nu = 0 this is the plain GPS cost l/eta - log p_prev(u|x). The dual search finds
the root of y(s) = log KL(eta) - log epsilon in s = log eta until |KL - epsilon| < tol * epsilon
(see EtaSearch): KL falls monotonically in eta, and in these coordinates it is nearly linear, with
a slope between about -2 (large eta: p_new - p_prev = O(1/eta), so KL = O(1/eta^2)) and 0 (small
eta: only the entropy term still grows, like -log eta), so that interpolation needs about three
passes where the original code base's factor-of-10 geometric bisection needs five or six.

`optimize_trajectories` runs the searches of several conditions in lock step, so that each round
is one batched backward pass, forward pass and KL over the conditions still searching; each
condition follows exactly the eta sequence of its own search. The eta-independent parts of the
augmented cost are built once, in homogeneous form (see lqr) and unnormalised:
(eta + nu_t) f_t = H_l + eta H_prev with H_l = H(l - u^T lambda - nu log pi) and
H_prev = H(-log p_prev) = J^T P J, kept as its dU-row factors J = [K k -I] and P J.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import (InitialState, LinearGaussianDynamics,
                                         check_compatible, state_moments)
from gps_trainer.lqr import (BatchedControllers, homogeneous_cost, homogeneous_dynamics,
                             lqr_backward_batch)
from gps_trainer.quadratic_cost import QuadraticCost
from gps_trainer.trajectory_kl import expected_action_kl, log_det

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrajOptConfig:
    """Dual search on eta: bounds, the first increase on a non-PD Q_uu, tolerance, passes."""

    min_eta: float = 1e-8
    max_eta: float = 1e16
    eta_increase: float = 1e-4
    kl_tolerance: float = 0.1
    max_iterations: int = 50

    def __post_init__(self) -> None:
        if not 0 < self.min_eta < self.max_eta:
            raise ValueError(f"min_eta, max_eta: need 0 < min_eta < max_eta, got "
                             f"{self.min_eta}, {self.max_eta}")
        if self.eta_increase <= 0:
            raise ValueError(f"eta_increase: must be positive, got {self.eta_increase}")
        if not 0 < self.kl_tolerance < 1:
            raise ValueError(f"kl_tolerance: must lie in (0, 1), got {self.kl_tolerance}")
        if self.max_iterations < 1:
            raise ValueError(f"max_iterations: must be at least 1, got {self.max_iterations}")


@dataclass(frozen=True, eq=False)
class BadmmTerms:
    """-u^T lambda_t in the cost and nu_t KL(p(u|x) || pi(u|x)) to the linearised policy pi."""

    lagrange: np.ndarray              # lambda, T x dU
    weights: np.ndarray               # nu, T
    policy: LinearGaussianController  # pi(u|x), the policy linearised around the trajectory

    def __post_init__(self) -> None:
        T, dU = self.policy.T, self.policy.dU
        lagrange = np.asarray(self.lagrange, dtype=float)
        weights = np.asarray(self.weights, dtype=float)
        if lagrange.shape != (T, dU):
            raise ValueError(f"lagrange: expected shape {(T, dU)}, got {lagrange.shape}")
        if weights.shape != (T,):
            raise ValueError(f"weights: expected shape {(T,)}, got {weights.shape}")
        if not (np.all(np.isfinite(lagrange)) and np.all(np.isfinite(weights))):
            raise ValueError("lagrange, weights: contain non-finite values")
        if np.any(weights < 0):
            raise ValueError("weights: nu must be non-negative")
        object.__setattr__(self, "lagrange", lagrange)
        object.__setattr__(self, "weights", weights)


@dataclass(frozen=True, eq=False)
class TrajOptResult:
    """The new controller, its eta and KL(p_new || p_prev), and whether the search converged."""

    controller: LinearGaussianController
    eta: float
    kl: float
    epsilon: float
    converged: bool
    iterations: int


def negative_log_likelihood(controller: LinearGaussianController) -> QuadraticCost:
    """-log p(u|x) = 0.5 (u - Kx - k)^T P (u - Kx - k) + 0.5 log|2 pi Sigma| as a quadratic in z.

    C = [[K^T P K, -K^T P], [-P K, P]],  c = [K^T P k; -P k],
    cc = 0.5 k^T P k + 0.5 log|2 pi Sigma|.
    """
    K, k, P = controller.K, controller.k, controller.inv_covariance
    PK = P @ K
    Pk = np.einsum("tij,tj->ti", P, k)
    C = np.block([[np.swapaxes(K, 1, 2) @ PK, -np.swapaxes(PK, 1, 2)], [-PK, P]])
    c = np.concatenate([np.einsum("tux,tu->tx", K, Pk), -Pk], axis=1)
    log_det = 2.0 * np.sum(np.log(np.diagonal(controller.chol_covariance, axis1=1, axis2=2)), 1)
    cc = 0.5 * np.sum(k * Pk, axis=1) + 0.5 * (log_det + controller.dU * math.log(2 * math.pi))
    return QuadraticCost(C, c, cc)


def nll_factors(controller: LinearGaussianController, J: np.ndarray, PJ: np.ndarray) -> None:
    """J = [K k -I] and P J (P = Sigma^-1) written into `J`, `PJ` (T x dU x n), so that
    J [x; 1; u] = Kx + k - u and H(-log p(u|x)) (see lqr.homogeneous_cost) is J^T P J up to the
    constant log|2 pi Sigma|, which changes no gain: the quadratic of negative_log_likelihood
    with only dU-row factors, never the n x n matrix."""
    dX, dU = controller.dX, controller.dU
    J[..., :dX] = controller.K
    J[..., dX] = controller.k
    J[..., dX + 1:] = -np.eye(dU)
    np.matmul(controller.inv_covariance, J, out=PJ)


@dataclass(frozen=True, eq=False)
class AugmentedCosts:
    """The augmented costs of M conditions in homogeneous form (see lqr), unnormalised:

        H~_t(eta) = H_l,t + eta J_t^T P_t J_t,  w_t = eta + nu_t,  so that f_t = H~_t / w_t,

    with H_l = H(l - u^T lambda - nu log pi) (T x M x n x n, time first, so that the pass reads
    one contiguous block per step) and J^T P J = H(-log p_prev) up to its constant, kept as
    its factors J = [K k -I] and P J of p_prev (T x M x dU x n each)."""

    loss: np.ndarray
    J: np.ndarray
    PJ: np.ndarray
    nu: np.ndarray      # M x T
    dX: int

    @classmethod
    def build(cls, costs: Sequence[QuadraticCost], prevs: Sequence[LinearGaussianController],
              badmms: Sequence[BadmmTerms | None]) -> "AugmentedCosts":
        T, dX, dU = prevs[0].T, prevs[0].dX, prevs[0].dU
        M, n = len(costs), dX + dU + 1
        # One allocation for the three (large allocations get transparent huge pages, so far
        # fewer page faults than three separate ones of a few MB).
        storage = np.empty(T * M * n * (n + 2 * dU))
        loss = storage[:T * M * n * n].reshape(T, M, n, n)
        J, PJ = storage[T * M * n * n:].reshape(2, T, M, dU, n)
        nu = np.zeros((M, T))
        for i, (cost, prev, badmm) in enumerate(zip(costs, prevs, badmms)):
            if cost.C.shape != (T, dX + dU, dX + dU) or (prev.T, prev.dX, prev.dU) != (T, dX, dU):
                raise ValueError(f"cost, prev: expected C of shape {(T, dX + dU, dX + dU)} and "
                                 f"(T, dX, dU) = {(T, dX, dU)}, got {cost.C.shape} and "
                                 f"{(prev.T, prev.dX, prev.dU)}")
            total = cost
            if badmm is not None:
                nu[i] = badmm.weights
                lagrange = np.concatenate([np.zeros((T, dX)), -badmm.lagrange], axis=1)
                total = total + QuadraticCost(np.zeros_like(cost.C), lagrange, np.zeros(T))
                total = total + negative_log_likelihood(badmm.policy).scaled(badmm.weights)
            homogeneous_cost(total.C, total.c, total.cc, dX, out=loss[:, i])
            nll_factors(prev, J[:, i], PJ[:, i])
        return cls(loss, J, PJ, nu, dX)

    def add_cost(self, items: np.ndarray | None,
                 eta: np.ndarray) -> Callable[[int, np.ndarray], None]:
        """(t, Q) -> Q += H~_t(eta_i) for conditions `items` (None: all), one eta each. The
        factors are scaled and selected one step at a time, into small work arrays: a scaled
        copy of all of P J per pass would be fresh memory, whose page faults cost more."""
        B = self.J.shape[1] if items is None else items.size
        scale = eta[:, None, None]
        ePJ = np.empty((B,) + self.PJ.shape[2:])
        prev = np.empty((B,) + self.loss.shape[2:])
        J, PJ, loss = self.J, self.PJ, self.loss

        def add(t: int, Q: np.ndarray) -> None:
            if items is None:
                np.multiply(PJ[t], scale, out=ePJ)
                np.matmul(J[t].mT, ePJ, out=prev)
                Q += prev
                Q += loss[t]
            else:
                np.multiply(PJ[t, items], scale, out=ePJ)
                np.matmul(J[t, items].mT, ePJ, out=prev)
                Q += prev
                Q += loss[t, items]
        return add

    def weight(self, items: np.ndarray | None, eta: np.ndarray) -> np.ndarray:
        """w_t = eta_i + nu_t for conditions `items` (None: all)."""
        return eta[:, None] + (self.nu if items is None else self.nu[items])


@dataclass(frozen=True, eq=False)
class _Batch:
    """What the dual searches of M conditions share: augmented costs, dynamics (one copy when
    all conditions share the same object), p(x_0) and p_prev."""

    costs: AugmentedCosts
    G: np.ndarray              # 1 or M x T-1 x (dX+1) x n, homogeneous dynamics
    dynamics: tuple[np.ndarray, np.ndarray, np.ndarray]   # F, f, W: 1 or M x ...
    x0: tuple[np.ndarray, np.ndarray]                     # mu_0, Sigma_0: M x ...
    prev: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # K, k, Sigma^-1, log|Sigma|

    @classmethod
    def build(cls, costs: Sequence[QuadraticCost], dynamics: Sequence[LinearGaussianDynamics],
              initial_states: Sequence[InitialState], prevs: Sequence[LinearGaussianController],
              badmms: Sequence[BadmmTerms | None]) -> "_Batch":
        for p, d, x0 in zip(prevs, dynamics, initial_states):
            check_compatible(p, d, x0)
        if all(d is dynamics[0] for d in dynamics):      # shared: views, no copies
            F, f, W = (getattr(dynamics[0], name)[None] for name in ("F", "f", "covariance"))
        else:
            F, f, W = (np.stack([getattr(d, name) for d in dynamics])
                       for name in ("F", "f", "covariance"))
        return cls(AugmentedCosts.build(costs, prevs, badmms), homogeneous_dynamics(F, f),
                   (F, f, W),
                   (np.stack([x.mu for x in initial_states]),
                    np.stack([x.sigma for x in initial_states])),
                   (np.stack([p.K for p in prevs]), np.stack([p.k for p in prevs]),
                    np.stack([p.inv_covariance for p in prevs]),
                    np.stack([log_det(p.chol_covariance) for p in prevs])))

    def _subset(self, items: np.ndarray) -> np.ndarray | None:
        return None if items.size == self.costs.nu.shape[0] else items

    def _shared(self, array: np.ndarray, items: np.ndarray) -> np.ndarray:
        subset = self._subset(items)
        return array if array.shape[0] == 1 or subset is None else array[subset]

    def backward(self, items: np.ndarray, eta: np.ndarray) -> BatchedControllers:
        """LQR on the augmented costs at eta_i for conditions `items` (sorted)."""
        subset = self._subset(items)
        G = self._shared(self.G, items)
        dX = self.costs.dX
        return lqr_backward_batch(self.costs.add_cost(subset, eta), lambda t: G[:, t],
                                  self.costs.weight(subset, eta), dX, self.costs.J.shape[2])

    def kl(self, items: np.ndarray, passes: BatchedControllers) -> np.ndarray:
        """KL(p_new(tau) || p_prev(tau)) of each item, under p_new's state marginals."""
        K, k = passes.gains[..., :-1], passes.gains[..., -1]
        subset = self._subset(items)       # no copies of p_prev when all items still search
        K_q, k_q, P_q, log_det_q = (a if subset is None else a[subset] for a in self.prev)
        dK = K - K_q
        mu_x, dK_sigma_x = state_moments(K, k, passes.covariance,
                                         *(self._shared(a, items) for a in self.dynamics),
                                         *(a if subset is None else a[subset] for a in self.x0),
                                         project=dK)
        log_det_ratio = log_det_q + log_det(passes.chol_precision)    # log|S_q| - log|S_p|
        kl = expected_action_kl(dK, k - k_q, P_q, passes.covariance, log_det_ratio, mu_x,
                                dK_sigma_x)
        return kl.sum(axis=1)


def _backward_passes(backward: Callable[[np.ndarray, np.ndarray], BatchedControllers],
                     items: np.ndarray, eta: np.ndarray,
                     config: TrajOptConfig) -> tuple[BatchedControllers, np.ndarray]:
    """Batched LQR on the augmented costs; an item whose Q_uu is not PD retries with
    eta0 + delta, delta doubling, until it is PD (ValueError once eta >= max_eta)."""
    eta0, eta = eta, eta.copy()
    delta = np.full(eta.shape, config.eta_increase)
    passes = backward(items, eta)
    failing = np.flatnonzero(passes.failed_step >= 0)
    while failing.size:
        too_large = failing[eta[failing] >= config.max_eta]
        if too_large.size:
            i = too_large[0]
            raise ValueError(
                f"eta: no positive-definite Q_uu (first failing step {passes.failed_step[i]}) "
                f"even for eta = {eta[i]:.3g} >= max_eta = {config.max_eta:.3g}; check the "
                f"cost for negative curvature in u and the dynamics fit")
        eta[failing] = eta0[failing] + delta[failing]
        delta[failing] *= 2.0
        retry = backward(items[failing], eta[failing])
        for name in ("gains", "precision", "covariance", "chol_precision", "failed_step"):
            getattr(passes, name)[failing] = getattr(retry, name)
        failing = failing[retry.failed_step >= 0]
    return passes, eta


def backward_pass(cost: QuadraticCost, dynamics: LinearGaussianDynamics,
                  prev: LinearGaussianController, eta: float, config: TrajOptConfig,
                  badmm: BadmmTerms | None = None) -> tuple[LinearGaussianController, float]:
    """LQR on the augmented cost; where Q_uu is not PD, retry with eta0 + delta, delta doubling."""
    if cost.C.shape[0] != dynamics.T or (prev.dX, prev.dU) != (dynamics.dX, dynamics.dU):
        raise ValueError(f"cost, prev: do not match the dynamics' (T, dX, dU) = "
                         f"{(dynamics.T, dynamics.dX, dynamics.dU)}")
    costs = AugmentedCosts.build([cost], [prev], [badmm])
    G = homogeneous_dynamics(dynamics.F, dynamics.f)

    def backward(items: np.ndarray, etas: np.ndarray) -> BatchedControllers:
        return lqr_backward_batch(costs.add_cost(None, etas), lambda t: G[t][None],
                                  costs.weight(None, etas), dynamics.dX, dynamics.dU)

    passes, etas = _backward_passes(backward, np.zeros(1, dtype=int), np.array([float(eta)]),
                                    config)
    return passes.controller(0), float(etas[0])


def optimize_trajectory(cost: QuadraticCost, dynamics: LinearGaussianDynamics,
                        initial_state: InitialState, prev: LinearGaussianController,
                        epsilon: float, eta: float = 1.0,
                        config: TrajOptConfig = TrajOptConfig(),
                        badmm: BadmmTerms | None = None) -> TrajOptResult:
    """Dual search on eta (EtaSearch) for KL(p_new(tau) || p_prev(tau)) = epsilon (within
    tolerance)."""
    return optimize_trajectories([cost], [dynamics], [initial_state], [prev], [epsilon], [eta],
                                 config, [badmm])[0]


class EtaSearch:
    """The dual search on eta for one condition, as a root search on y(s) = log(KL / epsilon) over
    s = log eta (module doc), one pass per step:

    - first step: the line through the pass with slope -1 where KL > epsilon (eta must grow,
      towards the flat side) and -2 where KL < epsilon (towards the 1/eta^2 asymptote);
    - then inverse quadratic interpolation through the last three passes (s as a quadratic in y)
      where KL clearly falls between them, else the secant through the last two; until the root is
      bracketed the secant's slope is at least 1 in magnitude (the curve only steepens towards
      larger eta, so a flatter secant would overshoot), and each step moves eta by at most a
      factor of 100;
    - where the last two passes show KL flat in eta (|slope| < 0.05: nu_t KL to the policy
      dominates there), the first-step line again, but at least twice as far as the last step;
    - once bracketed (a pass with KL > epsilon below, one with KL < epsilon above), a step that
      leaves the bracket or fails to halve it within two passes is a bisection in s instead.

    The bracket starts as [min_eta, max_eta]; a pass at a bound whose KL asks to go beyond it ends
    the search unconverged (KL < epsilon at min_eta: the constraint is inactive). A pass whose eta
    the backward pass raised (no PD Q_uu) counts at the eta it ran with.
    """

    FIRST_SLOPE_KL_HIGH = -1.0
    FIRST_SLOPE_KL_LOW = -2.0
    FLAT_SLOPE = -0.05
    MAX_STEP = math.log(100.0)

    def __init__(self, epsilon: float, eta: float, config: TrajOptConfig) -> None:
        self.epsilon, self.config = epsilon, config
        self.next_eta = float(np.clip(eta, config.min_eta, config.max_eta))
        self.low: tuple[float, float] | None = None     # (s, y) of the last pass, KL > epsilon
        self.high: tuple[float, float] | None = None    # (s, y) of the last pass, KL < epsilon
        self.points: list[tuple[float, float]] = []
        self.widths: list[float] = []
        self.eta, self.kl = math.nan, math.inf
        self.iterations = 0
        self.converged = self.done = False

    def record(self, eta: float, kl: float) -> None:
        """Take a pass's KL and choose the next eta (or stop when |KL - epsilon| < tol epsilon)."""
        self.eta, self.kl = eta, kl
        self.iterations += 1
        self.converged = abs(kl - self.epsilon) < self.config.kl_tolerance * self.epsilon
        at_bound = ((kl < self.epsilon and eta <= self.config.min_eta)
                    or (kl > self.epsilon and eta >= self.config.max_eta))
        self.done = self.converged or at_bound or self.iterations == self.config.max_iterations
        if self.done:
            return
        s, y = math.log(eta), math.log(max(kl, 1e-300) / self.epsilon)
        self.points.append((s, y))
        if y > 0:
            self.low = (s, y)
        else:
            self.high = (s, y)
        bracketed = self.low is not None and self.high is not None
        step = self._interpolate(bracketed)
        if step is None:
            step = s - y / (self.FIRST_SLOPE_KL_HIGH if y > 0 else self.FIRST_SLOPE_KL_LOW)
            if len(self.points) >= 2:
                last = abs(s - self.points[-2][0])
                step = s + math.copysign(max(abs(step - s), 2.0 * last), step - s)
        step = min(max(step, s - self.MAX_STEP), s + self.MAX_STEP)
        if bracketed:
            low, high = self.low[0], self.high[0]
            self.widths.append(abs(high - low))
            stalled = len(self.widths) > 2 and self.widths[-1] > 0.5 * self.widths[-3]
            if stalled or not min(low, high) < step < max(low, high):
                step = 0.5 * (low + high)
        self.next_eta = min(max(math.exp(step), self.config.min_eta), self.config.max_eta)

    def _interpolate(self, bracketed: bool) -> float | None:
        """The interpolated root from the last three (or two) passes; None where the last two
        show no clear fall of KL with eta."""
        if len(self.points) >= 3:
            (s0, y0), (s1, y1), (s2, y2) = sorted(self.points[-3:])
            if s0 < s1 < s2 and max((y1 - y0) / (s1 - s0),
                                    (y2 - y1) / (s2 - s1)) < self.FLAT_SLOPE:
                return (s0 * y1 * y2 / ((y0 - y1) * (y0 - y2))
                        + s1 * y0 * y2 / ((y1 - y0) * (y1 - y2))
                        + s2 * y0 * y1 / ((y2 - y0) * (y2 - y1)))
        if len(self.points) >= 2:
            (s0, y0), (s1, y1) = self.points[-2:]
            slope = (y1 - y0) / (s1 - s0) if s1 != s0 else 0.0
            if slope < self.FLAT_SLOPE:
                return s1 - y1 / (slope if bracketed else min(slope, -1.0))
        return None


@dataclass
class _Search:
    """One condition's dual search and its latest pass."""

    search: EtaSearch
    passes: BatchedControllers | None = None
    index: int = 0

    def record(self, passes: BatchedControllers, index: int, eta: float, kl: float) -> None:
        self.passes, self.index = passes, index
        self.search.record(eta, kl)

    def result(self) -> TrajOptResult:
        """The latest pass's controller, eta and KL (warning when stopped above epsilon)."""
        search = self.search
        if not search.converged and search.kl > search.epsilon:
            logger.warning("KL %.4g after the dual search is above epsilon %.4g (eta %.4g)",
                           search.kl, search.epsilon, search.eta)
        return TrajOptResult(self.passes.controller(self.index), search.eta, search.kl,
                             search.epsilon, search.converged, search.iterations)


def optimize_trajectories(costs: Sequence[QuadraticCost],
                          dynamics: Sequence[LinearGaussianDynamics],
                          initial_states: Sequence[InitialState],
                          prevs: Sequence[LinearGaussianController], epsilons: Sequence[float],
                          etas: Sequence[float] | None = None,
                          config: TrajOptConfig = TrajOptConfig(),
                          badmms: Sequence[BadmmTerms | None] | None = None
                          ) -> list[TrajOptResult]:
    """`optimize_trajectory` for M conditions at once (same results, one per condition): each
    round batches the backward pass, forward pass and KL of the conditions still searching."""
    M = len(costs)
    etas = [1.0] * M if etas is None else etas
    badmms = [None] * M if badmms is None else badmms
    if {len(dynamics), len(initial_states), len(prevs), len(epsilons), len(etas),
            len(badmms)} != {M}:
        raise ValueError("costs, dynamics, initial_states, prevs, epsilons, etas, badmms: need one "
                         "entry per condition each")
    for epsilon in epsilons:
        if not epsilon > 0:
            raise ValueError(f"epsilon: must be positive, got {epsilon}")
    batch = _Batch.build(costs, dynamics, initial_states, prevs, badmms)
    searches = [_Search(EtaSearch(float(epsilon), float(eta), config))
                for epsilon, eta in zip(epsilons, etas)]
    while not all(search.search.done for search in searches):
        items = np.array([i for i, search in enumerate(searches) if not search.search.done])
        passes, eta = _backward_passes(batch.backward, items,
                                       np.array([searches[i].search.next_eta for i in items]),
                                       config)
        kl = batch.kl(items, passes)
        for j, i in enumerate(items):
            searches[i].record(passes, j, float(eta[j]), float(kl[j]))
    return [search.result() for search in searches]
