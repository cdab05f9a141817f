"""BADMM guided policy search (paper Sec. 4.1-4.2, Alg. 2): the glue between trajectories and
the policy.

Per GPS iteration, with the samples of every condition:
  1. fit dynamics, cost models and step sizes (TrajectoryPhase.begin_iteration) and linearise
     the policy around the samples (PolicyPriorGMM);
  2. repeat `inner_iterations` times
       trajectory step:  min_p E_p[l - u^T lambda_t] + nu_t E_p KL(p(u|x) || pi_lin(u|x))
                         s.t. KL(p || p_sampling) <= epsilon;
       policy step:      min_theta sum_{i,t} nu_t (pi_theta(o_ti) - mu^p_ti)^T C_t^-1 (...),
                         mu^p_ti = K_t x_ti + k_t - C_t lambda_t / nu_t  (completing the square
                         of nu_t KL(pi || p) + lambda_t^T E_pi[u]), C_t the trajectory's action
                         covariance, over this and recent iterations' samples with importance
                         weights under the current trajectory distribution;
       dual step:        lambda_t <- lambda_t + alpha nu_t (E_pi[u_t] - E_p[u_t]);
  3. adapt nu_t: x2 where KL_t(p || pi) is above its mean over t, /2 where it is 2 standard
     deviations below.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import forward_pass
from gps_trainer.policy_linearization import PolicyPriorConfig, PolicyPriorGMM
from gps_trainer.sample import SampleBatch
from gps_trainer.traj_opt import BadmmTerms
from gps_trainer.trajectory_kl import action_kl_per_step
from gps_trainer.trajectory_phase import ConditionUpdate, TrajectoryPhase


@dataclass(frozen=True)
class BadmmConfig:
    """The paper's BADMM settings (alpha = 0.1, nu_t from 0.01) and sample reuse."""

    inner_iterations: int = 4
    dual_rate: float = 0.1
    initial_nu: float = 0.01
    nu_increase: float = 2.0
    nu_decrease: float = 0.5
    min_nu: float = 1e-6
    max_nu: float = 1e3
    reuse_iterations: int = 3
    min_sample_ess: float = 0.0
    """Least effective sample size, as a fraction of the stored samples of a condition, that
    the policy step's importance weights must keep (tempered_weights); 0: exact weights."""
    policy_prior: PolicyPriorConfig = field(default_factory=PolicyPriorConfig)

    def __post_init__(self) -> None:
        if self.inner_iterations < 1 or self.reuse_iterations < 1:
            raise ValueError("inner_iterations, reuse_iterations: must be at least 1")
        if not 0.0 <= self.min_sample_ess <= 1.0:
            raise ValueError(f"min_sample_ess: a fraction in [0, 1], got {self.min_sample_ess}")
        if not 0 < self.min_nu <= self.initial_nu <= self.max_nu:
            raise ValueError(f"initial_nu: need 0 < min_nu <= initial_nu <= max_nu, got "
                             f"{self.min_nu}, {self.initial_nu}, {self.max_nu}")
        if self.dual_rate <= 0 or self.nu_increase <= 1 or not 0 < self.nu_decrease < 1:
            raise ValueError("dual_rate > 0, nu_increase > 1 and 0 < nu_decrease < 1 required")


@dataclass
class Duals:
    """BADMM's dual variables of one condition: lambda_t (T x dU) and the weights nu_t (T)."""

    lagrange: np.ndarray
    nu: np.ndarray

    @classmethod
    def initial(cls, T: int, dU: int, nu: float) -> "Duals":
        return cls(np.zeros((T, dU)), np.full(T, nu))


@dataclass(frozen=True, eq=False)
class PolicyData:
    """What the policy sees for N samples: obs (N x T x dO) and images (N x T x H x W x 3 or
    None), in the order of the SampleBatch they belong to."""

    obs: np.ndarray
    images: np.ndarray | None = None

    def select(self, index: np.ndarray) -> "PolicyData":
        return PolicyData(self.obs[index], None if self.images is None else self.images[index])


class Policy(Protocol):
    covariance: np.ndarray

    def mean_actions(self, obs: np.ndarray, images: np.ndarray | None = None) -> np.ndarray:
        """Mean actions (M x dU) for M observations."""


class PolicyTrainer(Protocol):
    def update(self, obs, images, target_mean, target_precision, weights):
        """Fit the policy to the targets (policy_opt.PolicyOptimizer)."""


def dual_step(duals: Duals, policy_actions: np.ndarray, trajectory_actions: np.ndarray,
              rate: float) -> None:
    """lambda_t <- lambda_t + alpha nu_t (E_pi[u_t] - E_p[u_t]), expectations over the samples
    of the condition (actions N x T x dU)."""
    gap = policy_actions.mean(axis=0) - trajectory_actions.mean(axis=0)
    duals.lagrange = duals.lagrange + rate * duals.nu[:, None] * gap


def nu_step(nu: np.ndarray, kl: np.ndarray, config: BadmmConfig) -> np.ndarray:
    """x nu_increase where KL_t > mean KL, x nu_decrease where KL_t <= mean - 2 std."""
    mean, std = kl.mean(), kl.std()
    factor = np.where(kl > mean, config.nu_increase,
                      np.where(kl <= mean - 2.0 * std, config.nu_decrease, 1.0))
    return np.clip(nu * factor, config.min_nu, config.max_nu)


def trajectory_mean_actions(controller: LinearGaussianController, X: np.ndarray) -> np.ndarray:
    """mu^p_t(x_ti) = K_t x_ti + k_t for samples X (N x T x dX) -> N x T x dU."""
    return np.einsum("tux,ntx->ntu", controller.K, X) + controller.k


def policy_targets(controller: LinearGaussianController, duals: Duals, X: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets of the policy step for samples X (N x T x dX) of one condition: mean
    K_t x + k_t - C_t lambda_t / nu_t, precision C_t^-1 and weight nu_t (each N x T x ...)."""
    N = X.shape[0]
    offset = np.einsum("tuv,tv->tu", controller.covariance, duals.lagrange) / duals.nu[:, None]
    mean = trajectory_mean_actions(controller, X) - offset
    precision = np.broadcast_to(controller.inv_covariance, (N, *controller.inv_covariance.shape))
    weights = np.broadcast_to(duals.nu, (N, duals.nu.size))
    return mean, precision, weights


def log_likelihood(controller: LinearGaussianController, X: np.ndarray, U: np.ndarray
                   ) -> np.ndarray:
    """sum_t log p(u_t | x_t) under the controller for each of N samples (N)."""
    diff = U - trajectory_mean_actions(controller, X)
    maha = np.einsum("ntu,tuv,ntv->n", diff, controller.inv_covariance, diff)
    log_det = 2.0 * np.log(np.diagonal(controller.chol_covariance, axis1=1, axis2=2)).sum()
    return -0.5 * (maha + log_det + X.shape[1] * controller.dU * np.log(2.0 * np.pi))


def importance_weights(current: LinearGaussianController, X: np.ndarray, U: np.ndarray,
                       sampling_log_likelihood: np.ndarray, min_ess: float = 0.0) -> np.ndarray:
    """Self-normalised weights p_current(tau_i) / q_i(tau_i) of N samples of one condition,
    scaled to sum to N (the dynamics cancel in the ratio); q_i is the controller that drew
    sample i, given by its log-likelihood at drawing time. Tempered (tempered_weights) where
    they would keep fewer than min_ess * N effective samples."""
    log_w = log_likelihood(current, X, U) - sampling_log_likelihood
    return tempered_weights(log_w, min_ess)


def effective_sample_size(w: np.ndarray) -> float:
    """(sum w)^2 / sum w^2: N for equal weights, 1 when one sample holds all the weight."""
    return float(w.sum() ** 2 / np.square(w).sum())


def tempered_weights(log_w: np.ndarray, min_ess: float, steps: int = 40) -> np.ndarray:
    """Weights proportional to exp(beta log_w), summing to N, with the largest beta in [0, 1]
    whose effective sample size is at least min_ess * N (bisection on beta).

    Trajectory-level ratios over T = 100 steps span tens of nats between samples of successive
    iterations, so exact weights (beta = 1) give nearly all weight to one sample per condition
    and the stored samples of earlier iterations drop out of the policy step. Tempering keeps
    their states in the fit (labelled with the current trajectories' actions, as policy_targets
    does for every stored state) while still preferring samples the current trajectories would
    draw; beta = 0 weighs every sample equally, like fitting the current iteration's samples."""
    def weights(beta: float) -> np.ndarray:
        scaled = beta * (log_w - log_w.max())
        w = np.exp(scaled)
        return w * (len(w) / w.sum())

    target = min_ess * len(log_w)
    exact = weights(1.0)
    if effective_sample_size(exact) >= target:
        return exact
    low, high = 0.0, 1.0
    for _ in range(steps):
        mid = 0.5 * (low + high)
        if effective_sample_size(weights(mid)) >= target:
            low = mid
        else:
            high = mid
    return weights(low)


@dataclass
class _StoredIteration:
    batch: SampleBatch
    data: PolicyData
    log_q: np.ndarray          # log-likelihood of each sample under its sampling controller


class GuidedPolicySearch:
    """The BADMM outer iteration over a TrajectoryPhase, a policy and its trainer."""

    def __init__(self, config: BadmmConfig, phase: TrajectoryPhase, policy: Policy,
                 trainer: PolicyTrainer, rng: np.random.Generator):
        self.config = config
        self.phase = phase
        self.policy = policy
        self.trainer = trainer
        n_conditions, dU = len(phase.conditions), phase.layout.dU
        self.duals = [Duals.initial(phase.T, dU, config.initial_nu) for _ in range(n_conditions)]
        self.prior = PolicyPriorGMM(config.policy_prior, rng)
        self.history: list[_StoredIteration] = []

    def iteration(self, batch: SampleBatch, data: PolicyData) -> list[dict]:
        """One BADMM iteration from this iteration's samples and the policy's view of them;
        returns per-condition metrics."""
        models = self.phase.begin_iteration(batch)
        self._remember(batch, data)
        policy_actions = self._policy_actions(data, batch.X.shape[:2])
        self.prior.update(batch.X, policy_actions)
        linear = self._linearize(batch, policy_actions)
        for _ in range(self.config.inner_iterations):
            terms = [BadmmTerms(d.lagrange, d.nu, pi) for d, pi in zip(self.duals, linear)]
            updates = self.phase.optimize(models, terms)
            policy_stats, ess = self._policy_step()
            policy_actions = self._policy_actions(data, batch.X.shape[:2])
            linear = self._linearize(batch, policy_actions)
            for i, duals in enumerate(self.duals):
                mine = batch.conditions == i
                dual_step(duals, policy_actions[mine],
                          trajectory_mean_actions(self.phase.conditions[i].controller,
                                                  batch.X[mine]), self.config.dual_rate)
        return self._finish(models, linear, updates, policy_stats, ess)

    def _finish(self, models, linear, updates: list[ConditionUpdate], policy_stats,
                ess: list[float]) -> list[dict]:
        records = []
        for i, (duals, model, pi, update) in enumerate(zip(self.duals, models, linear, updates)):
            p = self.phase.conditions[i].controller
            kl = action_kl_per_step(p, pi, forward_pass(p, model.dynamics, model.initial_state))
            records.append({
                "condition": i, "sample_cost": update.sample_cost, "kl": update.kl,
                "epsilon": update.epsilon, "eta": update.eta, "step_mult": update.step_mult,
                "kl_policy_traj": float(kl.sum()), "kl_policy_traj_per_step": kl.tolist(),
                "nu_mean": float(duals.nu.mean()),
                "lagrange_norm": float(np.linalg.norm(duals.lagrange)),
                "policy_loss": float(getattr(policy_stats, "loss_after", np.nan)),
                "policy_sample_ess": ess[i],
            })
            duals.nu = nu_step(duals.nu, kl, self.config)
        return records

    def _remember(self, batch: SampleBatch, data: PolicyData) -> None:
        log_q = np.array([
            log_likelihood(self.phase.conditions[s.condition].sampling, s.X[None], s.U[None])[0]
            for s in batch])
        self.history.append(_StoredIteration(batch, data, log_q))
        self.history = self.history[-self.config.reuse_iterations:]

    def _policy_actions(self, data: PolicyData, shape: tuple[int, int]) -> np.ndarray:
        N, T = shape
        images = None if data.images is None else data.images.reshape(N * T, *data.images.shape[2:])
        actions = self.policy.mean_actions(data.obs.reshape(N * T, -1), images)
        return np.asarray(actions).reshape(N, T, -1)

    def _linearize(self, batch: SampleBatch, policy_actions: np.ndarray
                   ) -> list[LinearGaussianController]:
        return [self.prior.linearize(batch.X[batch.conditions == i],
                                     policy_actions[batch.conditions == i],
                                     self.policy.covariance)
                for i in range(len(self.duals))]

    def _policy_step(self) -> tuple[object, list[float]]:
        """Fit the policy to the current trajectories on the stored samples, importance-weighted
        within each condition; returns the trainer's statistics and each condition's effective
        sample size."""
        obs, images, means, precisions, weights, ess = [], [], [], [], [], []
        for i, (state, duals) in enumerate(zip(self.phase.conditions, self.duals)):
            X = np.concatenate([h.batch.X[h.batch.conditions == i] for h in self.history])
            U = np.concatenate([h.batch.U[h.batch.conditions == i] for h in self.history])
            log_q = np.concatenate([h.log_q[h.batch.conditions == i] for h in self.history])
            mean, precision, nu = policy_targets(state.controller, duals, X)
            w = importance_weights(state.controller, X, U, log_q, self.config.min_sample_ess)
            ess.append(effective_sample_size(w))
            for h in self.history:
                part = h.data.select(h.batch.conditions == i)
                obs.append(part.obs)
                if part.images is not None:
                    images.append(part.images)
            means.append(mean)
            precisions.append(precision)
            weights.append(nu * w[:, None])
        stats = self.trainer.update(np.concatenate(obs),
                                    np.concatenate(images) if images else None,
                                    np.concatenate(means), np.concatenate(precisions),
                                    np.concatenate(weights))
        return stats, ess
