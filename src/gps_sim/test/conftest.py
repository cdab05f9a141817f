"""Shared fixtures: the project's condition files and environments built from them."""

import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402

from gps_sim import HangerCondition, HangerEnv  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


@pytest.fixture(scope="session")
def conditions_file() -> Path:
    return CONFIG_DIR / "hanger_conditions.yaml"


@pytest.fixture(scope="session")
def visual_test_file() -> Path:
    return CONFIG_DIR / "visual_test_conditions.yaml"


@pytest.fixture(scope="module")
def train_env(conditions_file):
    """The training conditions of config/hanger_conditions.yaml, without image observations."""
    env = HangerEnv.from_yaml(conditions_file, "train", render_observations=False)
    yield env
    env.close()


@pytest.fixture(scope="module")
def nominal_env():
    """One condition at the nominal rack pose with each grasp."""
    env = HangerEnv([HangerCondition("nominal_g0", (0.75, 0.0, -0.10), grasp=0),
                     HangerCondition("nominal_g1", (0.75, 0.0, -0.10), grasp=1)],
                    render_observations=False)
    yield env
    env.close()
