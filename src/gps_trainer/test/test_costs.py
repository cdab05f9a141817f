"""Costs: analytic derivatives against central finite differences; ramps; config loading."""

import numpy as np
import pytest

from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.typed_config import ConfigError, from_mapping
from gps_trainer.costs import (CostConfig, PointCost, PointCostConfig, TorqueCost,
                               TorqueCostConfig, WeightedSumCost, build_cost, time_ramp)
from gps_trainer.pr2 import PR2_GAINS
from gps_trainer.quadratic_cost import expected_cost, fit_quadratic_cost
from gps_trainer.linear_gaussian import TrajectoryMarginals

T, dX, dU = 6, PR2_RIGHT_ARM.dX, PR2_RIGHT_ARM.dU
H = 1e-5


def _finite_differences(cost, X, U):
    """Central differences of l (for lx, lu) and of the analytic gradient (for the Hessians)."""
    def total(Z):
        return cost.evaluate(Z[:, :dX], Z[:, dX:]).l

    def gradient(Z):
        e = cost.evaluate(Z[:, :dX], Z[:, dX:])
        return np.concatenate([e.lx, e.lu], axis=1)

    Z = np.concatenate([X, U], axis=1)
    lz = np.zeros((T, dX + dU))
    lzz = np.zeros((T, dX + dU, dX + dU))
    for j in range(dX + dU):
        step = np.zeros_like(Z)
        step[:, j] = H
        lz[:, j] = (total(Z + step) - total(Z - step)) / (2 * H)
        lzz[:, :, j] = (gradient(Z + step) - gradient(Z - step)) / (2 * H)
    return lz, lzz


def _random_trajectory(seed):
    rng = np.random.default_rng(seed)
    return 0.1 * rng.standard_normal((T, dX)), rng.standard_normal((T, dU))


@pytest.mark.parametrize("cost", [
    PointCost(PointCostConfig(l1=0.1, l2=10.0, alpha=1e-2, ramp="constant")),
    PointCost(PointCostConfig(l1=1.0, l2=0.0, alpha=1e-3, ramp="final_only", final_weight=10.0)),
    PointCost(PointCostConfig(l1=0.5, l2=2.0, alpha=1e-2, ramp="quadratic",
                              point_weights=(2, 2, 1, 2, 2, 1, 1, 1, 1)),
              target=np.linspace(-0.1, 0.1, 9)),
    PointCost(PointCostConfig(l1=0.1, l2=10.0, alpha=1e-2, ramp="constant",
                              target_offset=(0.0, -0.21, 0.0), window=(0.2, 0.6))),
    TorqueCost(TorqueCostConfig(scale=1e-3)),
    build_cost(CostConfig()),
], ids=["point-constant", "point-final", "point-quadratic-target", "point-waypoint-window",
        "torque", "default-sum"])
def test_derivatives_match_finite_differences(cost):
    X, U = _random_trajectory(0)
    e = cost.evaluate(X, U)
    lz, lzz = _finite_differences(cost, X, U)
    scale = 1.0 + np.abs(lzz).max()
    np.testing.assert_allclose(np.concatenate([e.lx, e.lu], axis=1), lz, atol=1e-6 * scale)
    np.testing.assert_allclose(e.lxx, lzz[:, :dX, :dX], atol=1e-6 * scale)
    np.testing.assert_allclose(e.luu, lzz[:, dX:, dX:], atol=1e-6 * scale)
    np.testing.assert_allclose(e.lux, lzz[:, dX:, :dX], atol=1e-6 * scale)


def test_point_cost_value_matches_the_formula():
    X, U = _random_trajectory(1)
    cost = PointCost(PointCostConfig(l1=0.3, l2=2.0, alpha=1e-5, ramp="linear", final_weight=4))
    d = X[:, PR2_RIGHT_ARM.state_slice("ee_points_rel_target")]
    w = np.arange(1, T + 1) / T
    w[-1] *= 4
    expected = [0.5 * 2.0 * np.sum(w[t] * d[t] ** 2)
                + 0.5 * 0.3 * np.log(1e-5 + np.sum((w[t] * d[t]) ** 2)) for t in range(T)]
    np.testing.assert_allclose(cost.evaluate(X, U).l, expected)


def test_waypoint_window_and_offset():
    """A waypoint term is zero outside its window and pulls every point to target + offset."""
    X, U = _random_trajectory(2)
    block = PR2_RIGHT_ARM.state_slice("ee_points_rel_target")
    X[:, block] = np.tile([0.0, -0.21, 0.0], 3)
    cost = PointCost(PointCostConfig(l1=0.0, l2=1.0, ramp="constant",
                                     target_offset=(0.0, -0.21, 0.0), window=(0.25, 0.5)))
    e = cost.evaluate(X, U)
    np.testing.assert_allclose(e.l, 0.0)
    np.testing.assert_allclose(e.lx, 0.0)
    active = (np.arange(1, T + 1) / T > 0.25) & (np.arange(1, T + 1) / T <= 0.5)
    assert np.all(e.lxx[active][:, block, block].diagonal(axis1=1, axis2=2) == 1.0)
    assert np.all(e.lxx[~active] == 0.0)
    with pytest.raises(ValueError, match="window"):
        PointCostConfig(window=(0.5, 0.2))
    with pytest.raises(ValueError, match="target_offset"):
        PointCost(PointCostConfig(target_offset=(0.0, 1.0)))


def test_ramps():
    np.testing.assert_allclose(time_ramp("constant", 4, 1.0), [1, 1, 1, 1])
    np.testing.assert_allclose(time_ramp("linear", 4, 1.0), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(time_ramp("quadratic", 4, 2.0), [1 / 16, 1 / 4, 9 / 16, 2.0])
    np.testing.assert_allclose(time_ramp("final_only", 4, 10.0), [0, 0, 0, 10.0])


def test_torque_weights_scale_inverse_pr2_gains():
    U = np.ones((1, dU))
    e = TorqueCost(TorqueCostConfig(scale=5e-3)).evaluate(np.zeros((1, dX)), U)
    np.testing.assert_allclose(np.diag(e.luu[0]), 5e-3 / PR2_GAINS)
    np.testing.assert_allclose(e.l[0], 0.5 * np.sum(5e-3 / PR2_GAINS))


def test_weighted_sum_is_linear():
    X, U = _random_trajectory(2)
    a, b = TorqueCost(TorqueCostConfig()), PointCost(PointCostConfig())
    total = WeightedSumCost([a, b], [2.0, 0.5]).evaluate(X, U)
    np.testing.assert_allclose(total.lxx, 2.0 * a.evaluate(X, U).lxx + 0.5 * b.evaluate(X, U).lxx)
    np.testing.assert_allclose(total.l, 2.0 * a.evaluate(X, U).l + 0.5 * b.evaluate(X, U).l)


def test_cost_config_from_mapping():
    config = from_mapping(CostConfig, {
        "torque": {"scale": 1e-3},
        "points": [{"l1": 0.1, "l2": 10.0, "ramp": "constant"},
                   {"l1": 1.0, "l2": 0.0, "ramp": "final_only", "final_weight": 10.0}],
    }, "cost")
    assert config.points[1].ramp == "final_only" and config.torque.scale == 1e-3
    with pytest.raises(ConfigError, match="cost.points"):
        from_mapping(CostConfig, {"points": [{"l3": 1.0}]}, "cost")
    with pytest.raises(ValueError, match="ramp"):
        PointCostConfig(ramp="cubic")


def test_quadratic_model_of_a_quadratic_cost_is_exact_and_its_expectation_matches_samples():
    cost = TorqueCost(TorqueCostConfig(scale=1.0))
    rng = np.random.default_rng(3)
    X, U = rng.standard_normal((3, T, dX)), rng.standard_normal((3, T, dU))
    model = fit_quadratic_cost(cost, X, U)
    Z = rng.standard_normal((T, dX + dU))
    model_value = (0.5 * np.einsum("ti,tij,tj->t", Z, model.C, Z) + np.sum(model.c * Z, 1)
                   + model.cc)
    np.testing.assert_allclose(model_value, cost.evaluate(Z[:, :dX], Z[:, dX:]).l, atol=1e-12)

    mu = rng.standard_normal((T, dX + dU))
    S = np.repeat(0.2 * np.eye(dX + dU)[None], T, axis=0)
    samples = mu + np.sqrt(0.2) * rng.standard_normal((20000, T, dX + dU))
    mc = np.mean([cost.evaluate(z[:, :dX], z[:, dX:]).l for z in samples], axis=0)
    np.testing.assert_allclose(expected_cost(model, TrajectoryMarginals(mu, S, dX)), mc, rtol=0.03)
