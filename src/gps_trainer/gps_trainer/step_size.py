"""KL step-size adaptation from predicted and actual improvement (paper Sec. 4; GPS step rule).

The trust region is epsilon = kl_step * step_mult * T. After an iteration, with objective
J = sum_t E[l_t] + nu_t E KL(p(u_t|x_t) || pi(u_t|x_t)) evaluated on the linear-Gaussian models,

    predicted = J(p_prev; old model) - J(p_new; old model)
    actual    = J(p_prev; old model) - J(p_new; new model)
    step_mult <- clip(step_mult * clip(predicted / (2 max(1e-4, predicted - actual)), 0.1, 5),
                      min_step_mult, max_step_mult)

so the step grows when the models predicted the improvement well and shrinks when they did not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import InitialState, LinearGaussianDynamics, forward_pass
from gps_trainer.quadratic_cost import QuadraticCost, expected_cost
from gps_trainer.traj_opt import BadmmTerms
from gps_trainer.trajectory_kl import action_kl_per_step


@dataclass(frozen=True)
class StepSizeConfig:
    """epsilon = kl_step * step_mult * T; step_mult in [min_step_mult, max_step_mult], each
    update multiplying it by a factor in [min_change, max_change]."""

    kl_step: float = 0.2
    min_step_mult: float = 0.01
    max_step_mult: float = 10.0
    min_change: float = 0.1
    max_change: float = 5.0

    def __post_init__(self) -> None:
        if self.kl_step <= 0:
            raise ValueError(f"kl_step: must be positive, got {self.kl_step}")
        if not 0 < self.min_step_mult <= self.max_step_mult:
            raise ValueError(f"min_step_mult, max_step_mult: need 0 < min <= max, got "
                             f"{self.min_step_mult}, {self.max_step_mult}")
        if not 0 < self.min_change <= self.max_change:
            raise ValueError(f"min_change, max_change: need 0 < min <= max, got "
                             f"{self.min_change}, {self.max_change}")


def kl_epsilon(config: StepSizeConfig, step_mult: float, T: int) -> float:
    """epsilon = kl_step * step_mult * T, the bound on the KL summed over time."""
    return config.kl_step * step_mult * T


def expected_objective(controller: LinearGaussianController, dynamics: LinearGaussianDynamics,
                       initial_state: InitialState, cost: QuadraticCost,
                       badmm: BadmmTerms | None = None) -> float:
    """J = sum_t E[l_t] + nu_t E KL(p(u_t|x_t) || pi(u_t|x_t)) under the controller's marginals."""
    marginals = forward_pass(controller, dynamics, initial_state)
    objective = float(np.sum(expected_cost(cost, marginals)))
    if badmm is not None:
        kl = action_kl_per_step(controller, badmm.policy, marginals)
        objective += float(np.sum(badmm.weights * kl))
    return objective


def update_step_mult(config: StepSizeConfig, step_mult: float, predicted_improvement: float,
                     actual_improvement: float) -> float:
    """step_mult * clip(pred / (2 max(1e-4, pred - actual)), min_change, max_change), clipped."""
    change = predicted_improvement / (2.0 * max(1e-4, predicted_improvement - actual_improvement))
    change = float(np.clip(change, config.min_change, config.max_change))
    return float(np.clip(step_mult * change, config.min_step_mult, config.max_step_mult))
