"""Exploration noise eps_t for u_t = K_t x_t + k_t + L_t eps_t.

i.i.d. N(0, 1) noise, optionally smoothed along time per action dimension by a Gaussian filter of
standard deviation `sigma` steps and renormalised to unit variance; smoothing gives smoother
motions on the robot at the price of correlated noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d


@dataclass(frozen=True)
class NoiseConfig:
    """Smoothing of the exploration noise along time (sigma in time steps)."""

    smooth: bool = True
    sigma: float = 2.0
    renormalize: bool = True

    def __post_init__(self) -> None:
        if self.sigma <= 0:
            raise ValueError(f"sigma: must be positive, got {self.sigma}")


def exploration_noise(T: int, dU: int, rng: np.random.Generator,
                      config: NoiseConfig = NoiseConfig()) -> np.ndarray:
    """eps (T x dU): N(0, 1), filtered along time, each column rescaled to unit variance."""
    noise = rng.standard_normal((T, dU))
    if config.smooth:
        noise = gaussian_filter1d(noise, config.sigma, axis=0)
        if config.renormalize:
            noise = noise / noise.std(axis=0)
    return noise
