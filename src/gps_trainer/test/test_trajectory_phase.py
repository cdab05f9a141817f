"""The trajectory phase end to end on an unknown linear system: sample, fit dynamics with the
GMM prior, fit the local cost model, adapt the step and solve the KL-constrained problem."""

import numpy as np

from gps_controller.layout import Layout
from gps_trainer.costs import CostConfig, PointCostConfig, TorqueCostConfig, build_cost
from gps_trainer.dynamics import fit_dynamics, fit_initial_state
from gps_trainer.dynamics_prior import DynamicsPriorConfig, DynamicsPriorGMM
from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import InitialState, sample_trajectories
from gps_trainer.quadratic_cost import fit_quadratic_cost
from gps_trainer.random_systems import random_stable_dynamics
from gps_trainer.step_size import (StepSizeConfig, expected_objective, kl_epsilon,
                                   update_step_mult)
from gps_trainer.traj_opt import optimize_trajectory

T = 30


def test_trajectory_phase_lowers_the_true_cost_of_an_unknown_system():
    rng = np.random.default_rng(0)
    layout = Layout(joints=("j0", "j1"), n_ee_points=1)       # dX = 10, dU = 2
    truth = random_stable_dynamics(rng, T, layout.dX, layout.dU, noise=1e-4, radius=0.95)
    start = InitialState(rng.standard_normal(layout.dX), 1e-4 * np.eye(layout.dX))
    cost = build_cost(CostConfig(
        torque=TorqueCostConfig(scale=1e-2, gains=(1.0, 1.0)),
        points=(PointCostConfig(l1=0.1, l2=1.0, ramp="constant"),)), layout)
    prior = DynamicsPriorGMM(DynamicsPriorConfig(), rng)
    step = StepSizeConfig(kl_step=1.0)
    controller = LinearGaussianController(np.zeros((T, layout.dU, layout.dX)),
                                          np.zeros((T, layout.dU)),
                                          np.repeat(np.eye(layout.dU)[None], T, axis=0))
    step_mult, eta, previous = 1.0, 1.0, None
    true_costs = []
    for _ in range(8):
        X, U = sample_trajectories(controller, truth, start, 200, rng)
        true_costs.append(np.mean([cost.evaluate(x, u).l.sum() for x, u in zip(X, U)]))
        X, U = X[:5], U[:5]
        prior.update(X, U)
        model = (fit_dynamics(X, U, prior), fit_initial_state(X[:, 0]),
                 fit_quadratic_cost(cost, X, U))
        if previous is not None:
            old_controller, old_model = previous
            before = expected_objective(old_controller, *old_model)
            predicted = before - expected_objective(controller, *old_model)
            actual = before - expected_objective(controller, *model)
            step_mult = update_step_mult(step, step_mult, predicted, actual)
        result = optimize_trajectory(model[2], model[0], model[1], controller,
                                     kl_epsilon(step, step_mult, T), eta)
        previous = (controller, model)
        controller, eta = result.controller, result.eta
    assert true_costs[1] < 0.2 * true_costs[0]
    assert true_costs[-1] < 0.05 * true_costs[0]
