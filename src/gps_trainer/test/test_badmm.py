"""BADMM on a toy linear problem whose policy class can represent the trajectories, and the
pieces of BADMM against their definitions.

The toy policy is time-varying linear, u = W_t x + b_t with a state-independent covariance,
fitted exactly by precision-weighted least squares: an independent, noise-free policy step, so
what is tested is the BADMM coupling (duals, nu, linearisation), not SGD.
"""

import numpy as np
import pytest

from gps_controller.layout import Layout
from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.badmm import (BadmmConfig, Duals, GuidedPolicySearch, PolicyData, dual_step,
                               effective_sample_size, importance_weights, log_likelihood,
                               nu_step, policy_targets, tempered_weights)
from gps_trainer.costs import CostConfig, PointCostConfig, TorqueCostConfig
from gps_trainer.init_controller import InitControllerConfig
from gps_trainer.linear_gaussian import InitialState, sample_trajectories
from gps_trainer.random_systems import random_stable_dynamics
from gps_trainer.sample import SampleBatch
from gps_trainer.step_size import StepSizeConfig
from gps_trainer.trajectory_phase import TrajectoryPhase, TrajectoryPhaseConfig

T = 20
LAYOUT = Layout(joints=("j0", "j1"), n_ee_points=1)          # dX = 10, dU = 2


class TimeVaryingLinearPolicy:
    """u = W_t x + b_t; obs rows are [x, t]. Fitted exactly by weighted least squares."""

    def __init__(self, dX, dU):
        self.W = np.zeros((T, dU, dX))
        self.b = np.zeros((T, dU))
        self.covariance = np.eye(dU)

    def mean_actions(self, obs, images=None):
        t = obs[:, -1].astype(int)
        return np.einsum("nux,nx->nu", self.W[t], obs[:, :-1]) + self.b[t]

    def update(self, obs, images, target_mean, target_precision, weights):
        N, T_, dU = target_mean.shape
        x = obs[..., :-1]
        z = np.concatenate([x, np.ones((N, T_, 1))], axis=2)     # N x T x (dX + 1)
        for t in range(T_):
            # sum_i w (A z - mu)^T P (A z - mu) over A = [W_t b_t]: normal equations in vec(A)
            lhs = np.einsum("n,ni,nj,uv->uivj", weights[:, t], z[:, t], z[:, t],
                            target_precision[0, t]).reshape(dU * z.shape[2], -1)
            rhs = np.einsum("n,ni,uv,nv->ui", weights[:, t], z[:, t], target_precision[0, t],
                            target_mean[:, t]).reshape(-1)
            A = np.linalg.solve(lhs + 1e-9 * np.eye(lhs.shape[0]), rhs).reshape(dU, -1)
            self.W[t], self.b[t] = A[:, :-1], A[:, -1]
        w = weights.reshape(-1)
        P = target_precision.reshape(-1, dU, dU)
        self.covariance = np.linalg.inv(np.einsum("n,nij->ij", w, P) / w.sum())


def toy_problem(seed):
    rng = np.random.default_rng(seed)
    truth = random_stable_dynamics(rng, T, LAYOUT.dX, LAYOUT.dU, noise=1e-4, radius=0.95)
    start = InitialState(rng.standard_normal(LAYOUT.dX), 1e-4 * np.eye(LAYOUT.dX))
    config = TrajectoryPhaseConfig(
        cost=CostConfig(torque=TorqueCostConfig(scale=1e-2, gains=(1.0, 1.0)),
                        points=(PointCostConfig(l1=0.1, l2=1.0, ramp="constant"),)),
        step_size=StepSizeConfig(kl_step=1.0),
        init_controller=InitControllerConfig(gains=(1.0, 1.0)))
    phase = TrajectoryPhase(config, LAYOUT, [start.mu, start.mu], T, rng)
    return rng, truth, start, phase


def run_badmm(seed, iterations):
    rng, truth, start, phase = toy_problem(seed)
    policy = TimeVaryingLinearPolicy(LAYOUT.dX, LAYOUT.dU)
    # nu is relative to the cost's scale: this toy's costs are O(10), the hanger's O(100)
    gps = GuidedPolicySearch(BadmmConfig(initial_nu=1.0), phase, policy, policy, rng)
    history = []
    for _ in range(iterations):
        samples = []
        for condition, controller in enumerate(phase.controllers):
            X, U = sample_trajectories(controller, truth, start, 5, rng)
            samples += [(condition, x, u) for x, u in zip(X, U)]
        batch = SampleBatch.from_arrays(np.stack([s[1] for s in samples]),
                                        np.stack([s[2] for s in samples]),
                                        [s[0] for s in samples])
        obs = np.concatenate([batch.X, np.broadcast_to(np.arange(T)[None, :, None],
                                                       (len(samples), T, 1))], axis=2)
        history.append(gps.iteration(batch, PolicyData(obs)))
    return gps, history, policy


def test_badmm_drives_the_policy_trajectory_kl_toward_zero():
    gps, history, _ = run_badmm(seed=0, iterations=10)
    kl = [np.mean([r["kl_policy_traj"] for r in records]) for records in history]
    cost = [np.mean([r["sample_cost"] for r in records]) for records in history]
    assert np.all(np.isfinite(kl))
    assert kl[-1] < 0.05 * kl[0]
    assert kl[-1] < 0.1                                  # nats summed over T = 20 steps
    assert cost[-1] < 0.2 * cost[0]                      # while the task is still learned


def test_lambda_is_the_dual_of_the_action_constraint():
    """At the end the policy and trajectory mean actions agree on the samples (the constraint
    E_pi[u] = E_p[u] holds) and lambda has settled: one more dual step moves it by under 30% of
    its norm over all steps. Not tighter: nu doubles at the steps whose KL is above the mean, and
    such a doubling alone moved lambda by 3-25% after 10-20 iterations, depending on round-off
    (1 or 2 BLAS threads)."""
    gps, _, policy = run_badmm(seed=0, iterations=10)
    for i, duals in enumerate(gps.duals):
        stored = gps.history[-1]
        mine = stored.batch.conditions == i
        X = stored.batch.X[mine]
        obs = stored.data.obs[mine]
        pi = policy.mean_actions(obs.reshape(-1, obs.shape[2])).reshape(X.shape[0], T, -1)
        p = np.einsum("tux,ntx->ntu", gps.phase.conditions[i].controller.K, X) + \
            gps.phase.conditions[i].controller.k
        gap = np.abs(pi.mean(0) - p.mean(0)).max()
        assert gap < 0.05 * np.abs(p).max()
        before = duals.lagrange.copy()
        dual_step(duals, pi, p, gps.config.dual_rate)
        moved = np.linalg.norm(duals.lagrange - before)
        assert moved < 0.3 * max(1e-3, np.linalg.norm(before))


def test_dual_step_follows_the_rule():
    duals = Duals(np.zeros((3, 2)), np.array([1.0, 2.0, 4.0]))
    policy = np.ones((5, 3, 2))
    trajectory = np.zeros((5, 3, 2))
    dual_step(duals, policy, trajectory, rate=0.1)
    np.testing.assert_allclose(duals.lagrange, 0.1 * np.array([[1, 1], [2, 2], [4, 4]]))


def test_nu_schedule_follows_the_stated_rule():
    config = BadmmConfig()
    kl = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0, 0.0, 1.0])
    mean, std = kl.mean(), kl.std()
    nu = nu_step(np.full(kl.size, 0.01), kl, config)
    expected = np.where(kl > mean, 0.02, np.where(kl <= mean - 2 * std, 0.005, 0.01))
    np.testing.assert_allclose(nu, expected)
    assert nu[9] == 0.02
    big = nu_step(np.full(3, config.max_nu), np.array([0.0, 0.0, 5.0]), config)
    assert big.max() == config.max_nu


def test_policy_targets_complete_the_square():
    """nu/2 (m - mu)^T C^-1 (m - mu) + lambda^T m is minimised by m = mu - C lambda / nu."""
    rng = np.random.default_rng(3)
    dX, dU = 4, 2
    A = rng.standard_normal((T, dU, dU))
    controller = LinearGaussianController(rng.standard_normal((T, dU, dX)),
                                          rng.standard_normal((T, dU)),
                                          A @ A.transpose(0, 2, 1) + np.eye(dU))
    duals = Duals(rng.standard_normal((T, dU)), rng.uniform(0.1, 2.0, T))
    X = rng.standard_normal((3, T, dX))
    mean, precision, weights = policy_targets(controller, duals, X)
    for t in (0, 7):
        mu = controller.K[t] @ X[1, t] + controller.k[t]
        gradient = duals.nu[t] * precision[1, t] @ (mean[1, t] - mu) + duals.lagrange[t]
        np.testing.assert_allclose(gradient, 0.0, atol=1e-10)
        assert weights[1, t] == duals.nu[t]


def test_importance_weights_favour_samples_likely_under_the_current_controller():
    rng = np.random.default_rng(4)
    dX, dU = 3, 2
    old = LinearGaussianController(np.zeros((T, dU, dX)), np.zeros((T, dU)),
                                   np.broadcast_to(np.eye(dU), (T, dU, dU)))
    new = LinearGaussianController(np.zeros((T, dU, dX)), np.ones((T, dU)),
                                   np.broadcast_to(np.eye(dU), (T, dU, dU)))
    X = rng.standard_normal((2, T, dX))
    U = np.stack([np.zeros((T, dU)), np.ones((T, dU))])        # drawn near old, near new
    w = importance_weights(new, X, U, log_likelihood(old, X, U))
    assert w.sum() == pytest.approx(2.0) and w[1] > 100 * w[0]
    same = importance_weights(old, X, U, log_likelihood(old, X, U))
    np.testing.assert_allclose(same, 1.0)


def test_tempered_weights_keep_the_asked_effective_sample_size():
    """Two samples with log-weights 0 and -a: tempered weights (1, r), r = exp(-beta a), have
    ESS (1 + r)^2 / (1 + r^2); solving ESS = 2 f for r gives the beta the bisection must find."""
    a, fraction = 30.0, 0.8
    target = 2 * fraction
    # (1 + r)^2 = target (1 + r^2)  <=>  (1 - target) r^2 + 2 r + (1 - target) = 0
    c = 1.0 - target
    r = (-2.0 + np.sqrt(4.0 - 4.0 * c * c)) / (2.0 * c)
    w = tempered_weights(np.array([0.0, -a]), fraction)
    assert w.sum() == pytest.approx(2.0)
    assert w[1] / w[0] == pytest.approx(r, rel=1e-6)
    assert effective_sample_size(w) == pytest.approx(target, rel=1e-6)


def test_tempering_leaves_well_spread_weights_exact_and_keeps_their_order():
    rng = np.random.default_rng(5)
    log_w = rng.normal(0.0, 0.1, 12)
    exact = tempered_weights(log_w, 0.0)
    np.testing.assert_allclose(exact, 12 * np.exp(log_w) / np.exp(log_w).sum())
    np.testing.assert_array_equal(tempered_weights(log_w, 0.5), exact)
    spread = rng.normal(0.0, 40.0, 12)
    tempered = tempered_weights(spread, 0.5)
    assert effective_sample_size(tempered) >= 6.0 - 1e-9
    assert effective_sample_size(tempered_weights(spread, 0.0)) < 2.0
    np.testing.assert_array_equal(np.argsort(tempered, kind="stable"),
                                  np.argsort(spread, kind="stable"))
    np.testing.assert_allclose(tempered_weights(spread, 1.0), 1.0)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="initial_nu"):
        BadmmConfig(initial_nu=0.0)
    with pytest.raises(ValueError, match="inner_iterations"):
        BadmmConfig(inner_iterations=0)
    with pytest.raises(ValueError, match="min_sample_ess"):
        BadmmConfig(min_sample_ess=1.5)
