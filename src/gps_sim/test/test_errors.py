"""Bad input fails early with a message that says what is wrong."""

import numpy as np
import pytest

from gps_controller.typed_config import ConfigError
from gps_sim import HangerCondition, HangerEnv, HangerTaskConfig, load_conditions, load_task_config


@pytest.mark.parametrize("torque, message", [
    ([np.nan, 0, 0, 0, 0, 0, 0], "finite"),
    ([np.inf, 0, 0, 0, 0, 0, 0], "finite"),
    (np.zeros(6), r"shape \(7,\)"),
    (np.zeros((7, 1)), r"shape \(7,\)"),
    ("torque", "7 numbers"),
])
def test_bad_torque_is_rejected(nominal_env, torque, message):
    nominal_env.reset(0)
    with pytest.raises(ValueError, match=message):
        nominal_env.step(torque)


@pytest.mark.parametrize("condition, message", [
    ("no_such_condition", "unknown condition 'no_such_condition'; known: "),
    (5, "out of range"),
    (-1, "out of range"),
    (1.5, "index or a name"),
])
def test_unknown_condition_is_rejected(nominal_env, condition, message):
    with pytest.raises(ValueError, match=message):
        nominal_env.reset(condition)


@pytest.mark.parametrize("offset", [(0.01, 0.02), (0.0, np.nan, 0.0), (np.inf, 0, 0), "far"])
def test_bad_rack_offset_is_rejected(nominal_env, offset):
    with pytest.raises(ValueError, match="rack_offset must be 3 finite numbers"):
        nominal_env.reset(0, rack_offset=offset)


@pytest.mark.parametrize("yaw", [np.nan, np.inf, "a bit", None, True])
def test_bad_rack_yaw_offset_is_rejected(nominal_env, yaw):
    with pytest.raises(ValueError, match="rack_yaw_offset must be a finite number"):
        nominal_env.reset(0, rack_yaw_offset=yaw)


def test_step_before_reset_is_rejected():
    env = HangerEnv([HangerCondition("c", (0.75, 0.0, -0.10))], render_observations=False)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(7))


def test_grasp_the_model_lacks_is_rejected():
    with pytest.raises(ValueError, match="grasp 2 does not exist"):
        HangerEnv([HangerCondition("c", (0.75, 0.0, -0.10), grasp=2)])


def test_unreachable_rack_pose_is_rejected():
    env = HangerEnv([HangerCondition("far", (1.60, 0.0, -0.10))], render_observations=False)
    with pytest.raises(ValueError, match="out of the left arm's reach"):
        env.reset(0)


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_conditions(tmp_path / "absent.yaml", "train")


def test_malformed_yaml_is_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [ {name: a, rack_position: [0.7, 0.0\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_conditions(path, "train")


def test_missing_section_is_reported(conditions_file):
    with pytest.raises(ConfigError, match="no condition set 'nowhere'.*'train'"):
        load_conditions(conditions_file, "nowhere")


@pytest.mark.parametrize("entry, message", [
    ("{name: a, rack_position: [0.7, 0.0]}", r"train.conditions\[0\].rack_position"),
    ("{name: a, rack_position: [0.7, 0.0, x]}", "expected a number"),
    ("{name: a, rack_position: [0.7, .nan, 0.0]}",
     r"rack_position\[1\]: expected a finite number, got nan"),
    ("{name: a, rack_position: [0.7, 0.0, 0.0], rack_yaw: .inf}",
     "rack_yaw: expected a finite number, got inf"),
    ("{name: a, rack_position: [0.7, 0.0, 0.0], colour: red}", r"unknown key\(s\) \['colour'\]"),
    ("{name: a, rack_position: [0.7, 0.0, 0.0], grasp: -1}", "grasp must be >= 0"),
    ("{name: a, rack_position: [0.7, 0.0, 0.0], scene: {distractors: "
     "[{shape: cone, position: [0, 0, 0], size: [0.1]}]}}", "shape 'cone' unknown"),
    ("{name: a, rack_position: [0.7, 0.0, 0.0], scene: {distractors: "
     "[{shape: box, position: [0, 0, 0], size: [0.1]}]}}", "needs 3 positive size"),
])
def test_malformed_condition_is_reported(tmp_path, entry, message):
    path = tmp_path / "conditions.yaml"
    path.write_text(f"train:\n  - {entry}\n")
    with pytest.raises(ConfigError, match=message):
        load_conditions(path, "train")


def test_duplicate_names_are_reported(tmp_path):
    path = tmp_path / "conditions.yaml"
    path.write_text("train:\n  - {name: a, rack_position: [0.7, 0, 0]}\n"
                    "  - {name: a, rack_position: [0.8, 0, 0]}\n")
    with pytest.raises(ConfigError, match="duplicate condition names"):
        load_conditions(path, "train")


def test_control_period_must_be_whole_physics_steps():
    with pytest.raises(ConfigError, match="whole number of physics steps"):
        HangerTaskConfig(control_dt=0.05, physics_dt=0.003)


def test_task_section_is_read_from_the_conditions_file(conditions_file):
    task = load_task_config(conditions_file)
    assert (task.episode_steps, task.control_dt, task.substeps) == (100, 0.05, 25)
