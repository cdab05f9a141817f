"""One trajectory-optimisation step for every condition (paper Sec. 4; GPS Alg. 1 lines 3-4).

Given this iteration's samples (one or more per condition), the phase
  1. refits the GMM dynamics prior on (x_t, u_t, x_t+1) of recent samples of all conditions,
  2. fits time-varying linear-Gaussian dynamics p(x_t+1 | x_t, u_t) with that prior, either
     shared by all conditions (pooled samples) or per condition, and p(x_0) per condition,
  3. fits the local quadratic cost model around each condition's samples,
  4. adapts each condition's step size from the improvement its last step predicted and the one
     the new models show, and
  5. solves min E[l] s.t. KL(p_new || p_prev) <= epsilon by the eta dual search, with the BADMM
     terms when given (all conditions' searches batched).
It holds no simulator or ROS: samples in, controllers out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from gps_controller.typed_config import ConfigError, read_yaml_mapping

from gps_controller.layout import Layout
from gps_trainer.costs import CostConfig, build_cost
from gps_trainer.dynamics import DynamicsConfig, fit_dynamics, fit_initial_state
from gps_trainer.dynamics_prior import DynamicsPriorGMM
from gps_trainer.init_controller import InitControllerConfig, init_lqr_controller
from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import InitialState, LinearGaussianDynamics
from gps_controller.noise import NoiseConfig
from gps_trainer.quadratic_cost import QuadraticCost, fit_quadratic_cost
from gps_trainer.sample import SampleBatch
from gps_trainer.step_size import (StepSizeConfig, expected_objective, kl_epsilon,
                                   update_step_mult)
from gps_trainer.traj_opt import BadmmTerms, TrajOptConfig, optimize_trajectories


@dataclass(frozen=True)
class TrajectoryPhaseConfig:
    """Everything the trajectory step needs, one YAML section each."""

    cost: CostConfig = field(default_factory=CostConfig)
    dynamics: DynamicsConfig = field(default_factory=DynamicsConfig)
    traj_opt: TrajOptConfig = field(default_factory=TrajOptConfig)
    step_size: StepSizeConfig = field(default_factory=StepSizeConfig)
    init_controller: InitControllerConfig = field(default_factory=InitControllerConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    share_dynamics: bool = True


def read_run_config(path: str | Path, what: str = "config file",
                    _chain: tuple[Path, ...] = ()) -> dict:
    """A run config file as a mapping, its `phase_file` (relative to it) read in as `phase` and
    its `conditions_file` made absolute, so one phase description serves every run config.

    A `base_file` (relative to it) is another run config this one varies: the base is read the
    same way, then this file's keys replace the base's, mappings key by key at every depth
    (`policy_opt: {iterations: 0}` changes that one key of the base's policy_opt section), any
    other value (a list, a number) as a whole. `what` names the file in errors."""
    path = Path(path)
    mapping = read_yaml_mapping(path, what)
    if "phase_file" in mapping:
        if "phase" in mapping:
            raise ConfigError(f"{path}: give phase or phase_file, not both")
        mapping["phase"] = read_yaml_mapping(path.parent / mapping.pop("phase_file"),
                                             f"{path}: phase_file")
    if "conditions_file" in mapping:
        mapping["conditions_file"] = str((path.parent / mapping["conditions_file"]).resolve())
    if "base_file" not in mapping:
        return mapping
    base_path = (path.parent / mapping.pop("base_file")).resolve()
    chain = _chain + (path.resolve(),)
    if base_path in chain:
        raise ConfigError(f"{path}: base_file {base_path} is already in the chain "
                          f"{' -> '.join(str(p) for p in chain)}")
    return _merged(read_run_config(base_path, f"{path}: base_file", chain), mapping)


def _merged(base: dict, changes: dict) -> dict:
    """`base` with the keys of `changes` replacing its own, mappings merged key by key."""
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True, eq=False)
class LocalModel:
    """What one iteration's samples say about a condition: dynamics, p(x_0), cost model."""

    dynamics: LinearGaussianDynamics
    initial_state: InitialState
    cost: QuadraticCost

    def objective(self, controller: LinearGaussianController) -> float:
        """Expected cost of `controller` under this model (the 'Laplace' objective)."""
        return expected_objective(controller, self.dynamics, self.initial_state, self.cost)


@dataclass
class ConditionTrajectory:
    """The trajectory distribution of one condition and its dual/step-size state."""

    controller: LinearGaussianController
    eta: float = 1.0
    step_mult: float = 1.0
    previous: tuple[LinearGaussianController, LocalModel] | None = None
    sampling: LinearGaussianController | None = None
    """The controller that produced this iteration's samples: p_prev of the KL constraint."""


@dataclass(frozen=True)
class ConditionUpdate:
    """Metrics of one condition's trajectory step."""

    condition: int
    sample_cost: float
    predicted_cost: float
    kl: float
    epsilon: float
    eta: float
    step_mult: float
    converged: bool


class TrajectoryPhase:
    """Linear-Gaussian trajectory distributions p_i for each condition, improved from samples."""

    def __init__(self, config: TrajectoryPhaseConfig, layout: Layout,
                 initial_states: Sequence[np.ndarray], T: int, rng: np.random.Generator):
        self.config = config
        self.layout = layout
        self.T = T
        self.cost = build_cost(config.cost, layout)
        self.prior = (DynamicsPriorGMM(config.dynamics.prior, rng)
                      if config.dynamics.prior is not None else None)
        self.conditions = [
            ConditionTrajectory(init_lqr_controller(x0, T, config.init_controller, layout))
            for x0 in initial_states]
        self._sample_costs: list[float] = []

    @property
    def controllers(self) -> list[LinearGaussianController]:
        return [c.controller for c in self.conditions]

    def sample_costs(self, batch: SampleBatch) -> np.ndarray:
        """Total cost of each sample (N)."""
        return np.array([self.cost.evaluate(s.X, s.U).l.sum() for s in batch])

    def fit_models(self, batch: SampleBatch) -> list[LocalModel]:
        """Dynamics (with the GMM prior), p(x_0) and the cost model for every condition."""
        self._check_batch(batch)
        regularization = self.config.dynamics.regularization
        if self.prior is not None:
            self.prior.update(batch.X, batch.U)
        shared = (fit_dynamics(batch.X, batch.U, self.prior, regularization)
                  if self.config.share_dynamics else None)
        x0_prior = self.prior.initial_state() if self.prior is not None else None
        models = []
        for i in range(len(self.conditions)):
            mine = batch.for_condition(i)
            dynamics = shared or fit_dynamics(mine.X, mine.U, self.prior, regularization)
            models.append(LocalModel(
                dynamics,
                fit_initial_state(mine.X[:, 0], x0_prior,
                                  self.config.dynamics.initial_state_min_variance),
                fit_quadratic_cost(self.cost, mine.X, mine.U)))
        return models

    def update(self, batch: SampleBatch) -> list[ConditionUpdate]:
        """One trajectory step for every condition from this iteration's samples."""
        return self.optimize(self.begin_iteration(batch))

    def begin_iteration(self, batch: SampleBatch) -> list[LocalModel]:
        """Fit the models to this iteration's samples, adapt each condition's step size, and fix
        the sampling controllers as p_prev for the iteration's trajectory steps."""
        models = self.fit_models(batch)
        costs = self.sample_costs(batch)
        self._sample_costs = [float(costs[batch.conditions == i].mean())
                              for i in range(len(self.conditions))]
        for state, model in zip(self.conditions, models):
            if state.previous is not None:
                self._adapt_step(state, model)
            state.sampling = state.controller
        return models

    def optimize(self, models: list[LocalModel],
                 badmm: Sequence[BadmmTerms | None] | None = None) -> list[ConditionUpdate]:
        """min E[l] (+ BADMM terms) s.t. KL(p || p_sampling) <= epsilon for every condition,
        all dual searches batched. BADMM's inner loop calls this once per inner iteration."""
        epsilons = [kl_epsilon(self.config.step_size, c.step_mult, self.T)
                    for c in self.conditions]
        results = optimize_trajectories(
            [m.cost for m in models], [m.dynamics for m in models],
            [m.initial_state for m in models], [c.sampling for c in self.conditions], epsilons,
            [c.eta for c in self.conditions], self.config.traj_opt, badmm)
        updates = []
        for i, (state, model, result) in enumerate(zip(self.conditions, models, results)):
            state.previous = (state.sampling, model)
            state.controller, state.eta = result.controller, result.eta
            updates.append(ConditionUpdate(
                condition=i, sample_cost=self._sample_costs[i],
                predicted_cost=model.objective(result.controller), kl=result.kl,
                epsilon=epsilons[i], eta=result.eta, step_mult=state.step_mult,
                converged=result.converged))
        return updates

    def _adapt_step(self, state: ConditionTrajectory, model: LocalModel) -> None:
        """step_mult from predicted vs actual improvement of the last step (GPS step rule)."""
        old_controller, old_model = state.previous
        before = old_model.objective(old_controller)
        predicted = before - old_model.objective(state.controller)
        actual = before - model.objective(state.controller)
        state.step_mult = update_step_mult(self.config.step_size, state.step_mult, predicted,
                                           actual)

    def _check_batch(self, batch: SampleBatch) -> None:
        present = set(int(c) for c in batch.conditions)
        missing = sorted(set(range(len(self.conditions))) - present)
        if missing:
            raise ValueError(f"batch: no sample for condition(s) {missing}")
        if batch.X.shape[1:] != (self.T, self.layout.dX) or batch.U.shape[2] != self.layout.dU:
            raise ValueError(f"batch: samples are {batch.X.shape[1:]} / {batch.U.shape[2]}, "
                             f"expected (T, dX) = {(self.T, self.layout.dX)}, dU = "
                             f"{self.layout.dU}")
