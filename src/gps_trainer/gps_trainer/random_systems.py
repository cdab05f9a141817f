"""Random linear-Gaussian systems, controllers and initial states for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from gps_controller.policies.linear_gaussian import LinearGaussianController
from gps_trainer.linear_gaussian import InitialState, LinearGaussianDynamics


def random_stable_dynamics(rng: np.random.Generator, T: int, dX: int, dU: int,
                           noise: float = 0.01, radius: float = 0.9) -> LinearGaussianDynamics:
    """Time-invariant x' = A x + B u + f + w, w ~ N(0, noise I), spectral radius of A = radius."""
    A = rng.standard_normal((dX, dX))
    A *= radius / np.max(np.abs(np.linalg.eigvals(A)))
    B = 0.5 * rng.standard_normal((dX, dU))
    f = 0.1 * rng.standard_normal(dX)
    return LinearGaussianDynamics(np.repeat(np.hstack([A, B])[None], T - 1, axis=0),
                                  np.repeat(f[None], T - 1, axis=0),
                                  np.repeat(noise * np.eye(dX)[None], T - 1, axis=0))


def random_controller(rng: np.random.Generator, T: int, dX: int, dU: int, gain: float = 0.3,
                      variance: float = 0.5) -> LinearGaussianController:
    """Random gains and offsets; covariances variance I plus a random PSD part."""
    M = 0.3 * rng.standard_normal((T, dU, dU))
    return LinearGaussianController(gain * rng.standard_normal((T, dU, dX)),
                                    0.5 * rng.standard_normal((T, dU)),
                                    variance * np.eye(dU) + M @ np.swapaxes(M, 1, 2))


def random_initial_state(rng: np.random.Generator, dX: int,
                         variance: float = 0.1) -> InitialState:
    """N(mu, variance I) with a standard-normal mu."""
    return InitialState(rng.standard_normal(dX), variance * np.eye(dX))
