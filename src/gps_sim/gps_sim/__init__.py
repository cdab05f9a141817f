"""MuJoCo simulation of the PR2 coat-hanger task: model, conditions and in-process environment."""

from gps_sim.conditions import (AppearanceRandomisation, Distractor, HangerCondition,
                                HangerTaskConfig, Lighting, SceneVariation, load_conditions,
                                load_task_config)
from gps_sim.env import HangerEnv, JointStateReading, Observation

__all__ = [
    "AppearanceRandomisation", "Distractor", "HangerCondition", "HangerEnv", "HangerTaskConfig",
    "JointStateReading", "Lighting", "Observation", "SceneVariation", "load_conditions", "load_task_config",
]
