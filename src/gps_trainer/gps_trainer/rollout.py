"""Running a policy for one episode on the direct (in-process) simulator and recording it.

The recorded sample holds x_t, u_t, the exploration noise eps_t and the observation's
configuration part o_t for t = 0..T-1 (u_t acts on x_t), and the camera frames when the
environment renders them. Success is the task's geometric test after the last action.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gps_sim.conditions import AppearanceRandomisation
from gps_trainer.sample import Sample

Policy = Callable[[int, np.ndarray, object, np.ndarray], np.ndarray]
"""u_t = policy(t, x_t, observation_t, eps_t)."""


@dataclass(frozen=True, eq=False)
class Rollout:
    """One episode: the sample, its camera frames (T x H x W x 3 or None), the task's success
    test at the end and the mean end-effector point distance to the targets at the end (m)."""

    sample: Sample
    images: np.ndarray | None
    success: bool
    final_distance: float


def rollout(env, policy: Policy, condition: int, noise: np.ndarray, seed: int,
            rack_offset=None, appearance: AppearanceRandomisation | None = None) -> Rollout:
    """Run `policy` for len(noise) steps in `condition` of `env` (a gps_sim HangerEnv), the
    rack moved by `rack_offset` (m) from the condition's position, the look drawn from
    `appearance` with `seed` (None: the condition's look)."""
    layout = env.layout
    T = noise.shape[0]
    x, obs = env.reset(condition, seed, rack_offset, appearance=appearance)
    X, U = np.zeros((T, layout.dX)), np.zeros((T, layout.dU))
    O = np.zeros((T, layout.dO_config))
    frames = []
    for t in range(T):
        u = np.asarray(policy(t, x, obs, noise[t]), dtype=float)
        X[t], U[t], O[t] = x, u, obs.config
        if obs.image is not None:
            frames.append(obs.image)
        x, obs = env.step(u)
    return Rollout(
        sample=Sample(X, U, condition, obs=O, noise=noise),
        images=np.stack(frames) if frames else None,
        success=bool(env.success()),
        final_distance=target_distance(layout, x),
    )


def target_distance(layout, x: np.ndarray) -> float:
    """Mean distance (m) of the end-effector points to their targets in state x."""
    offsets = x[layout.state_slice("ee_points_rel_target")].reshape(-1, 3)
    return float(np.linalg.norm(offsets, axis=1).mean())
