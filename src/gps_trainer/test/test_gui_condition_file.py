"""Saving a condition into a conditions file (gps_trainer.gui.condition_file) and the reach limits.

Given a copy of config/hanger_conditions.yaml:
- a saved condition is appended to its set, read back by gps_sim.conditions, the sim resets to
  it with the rack where it was asked, and the rest of the file (comments included) is as it was;
- an unknown set, a malformed, ambiguous or duplicate name, a non-finite or out-of-limits pose
  and a grasp the task does not have are refused with a message saying so, and leave the file
  byte for byte as it was, with no temporary file behind;
- a set written inline is still appended to (the file is dumped anew);
- every corner of the limits box is within the left arm's reach.
"""

import itertools
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from gps_sim import HangerEnv
from gps_sim.conditions import HangerCondition, condition_sets, load_conditions, load_task_config
from gps_trainer.gui.condition_file import ConditionFileError, NewCondition, append_condition
from gps_trainer.gui.target_limits import TargetLimits

CONFIG = Path(__file__).resolve().parents[3] / "config" / "hanger_conditions.yaml"
GOOD = NewCondition("gui_near_left", (0.72, 0.04, -0.12), 0.08, 1)


@pytest.fixture
def conditions_file(tmp_path):
    path = tmp_path / "conditions.yaml"
    shutil.copy(CONFIG, path)
    return path


def test_a_saved_condition_is_appended_and_the_sim_resets_to_it(conditions_file):
    before = yaml.safe_load(conditions_file.read_text())

    stored = append_condition(conditions_file, "spatial_test", GOOD)

    assert stored == GOOD
    after = yaml.safe_load(conditions_file.read_text())
    assert {k: v for k, v in after.items() if k != "spatial_test"} == \
        {k: v for k, v in before.items() if k != "spatial_test"}
    assert after["spatial_test"][:-1] == before["spatial_test"]
    assert load_conditions(conditions_file, "spatial_test")[-1] == HangerCondition(
        "gui_near_left", (0.72, 0.04, -0.12), 0.08, 1)
    for line in CONFIG.read_text().splitlines():
        assert line in conditions_file.read_text()       # comments and layout kept
    env = HangerEnv.from_yaml(conditions_file, "spatial_test", render_observations=False)
    env.reset("gui_near_left")
    position, yaw = env.rack_pose()
    np.testing.assert_allclose(position, GOOD.rack_position, atol=1e-3)
    assert yaw == pytest.approx(GOOD.rack_yaw, abs=1e-3)


def test_values_are_stored_to_a_tenth_of_a_millimetre(conditions_file):
    stored = append_condition(conditions_file, "train",
                              NewCondition("gui_rounded", (0.700049, -0.0, -0.1), -0.00001, 0))
    assert stored.rack_position == (0.7, 0.0, -0.1)
    assert stored.rack_yaw == 0.0
    assert "-0.0000" not in conditions_file.read_text()


@pytest.mark.parametrize("set_name, condition, message", [
    ("test", GOOD, "unknown condition set 'test'; sets in conditions.yaml: ['train', "
                   "'spatial_test', 'validation', 'spatial_extrapolation']"),
    ("task", GOOD, "unknown condition set 'task'"),
    ("train", NewCondition("spatial_centre_g0", (0.72, 0.0, -0.1), 0.0, 0),
     "a condition named 'spatial_centre_g0' already exists in set 'spatial_test'"),
    ("train", NewCondition("", (0.72, 0.0, -0.1), 0.0, 0), "name '' is malformed"),
    ("train", NewCondition("bad name!", (0.72, 0.0, -0.1), 0.0, 0), "malformed"),
    ("train", NewCondition("1st", (0.72, 0.0, -0.1), 0.0, 0), "malformed"),
    ("train", NewCondition("x" * 65, (0.72, 0.0, -0.1), 0.0, 0), "malformed"),
    ("train", NewCondition("yes", (0.72, 0.0, -0.1), 0.0, 0), "would read back from YAML as True"),
    ("train", NewCondition("null", (0.72, 0.0, -0.1), 0.0, 0), "as None"),
    ("train", NewCondition("gui_a", (0.72, math.nan, -0.1), 0.0, 0), "3 finite numbers"),
    ("train", NewCondition("gui_a", (0.72, 0.0, -0.1), math.inf, 0), "finite number"),
    ("train", NewCondition("gui_a", (0.9, 0.0, -0.1), 0.0, 0),
     "x = 0.9000 m is out of the reach limits [0.650, 0.850] m"),
    ("train", NewCondition("gui_a", (0.72, -0.11, -0.1), 0.0, 0), "y = -0.1100 m is out"),
    ("train", NewCondition("gui_a", (0.72, 0.0, 0.01), 0.0, 0), "z = 0.0100 m is out"),
    ("train", NewCondition("gui_a", (0.72, 0.0, -0.1), 0.2, 0),
     "yaw = 0.2000 rad is out of the reach limits [-0.170, 0.170] rad"),
    ("train", NewCondition("gui_a", (0.72, 0.0, -0.1), 0.0, 2),
     "grasp must be an integer in [0, 1]"),
    ("train", NewCondition("gui_a", (0.72, 0.0, -0.1), 0.0, True), "grasp must be an integer"),
])
def test_bad_conditions_are_refused_and_leave_the_file_untouched(conditions_file, set_name,
                                                                 condition, message):
    before = conditions_file.read_bytes()
    with pytest.raises(ConditionFileError) as refused:
        append_condition(conditions_file, set_name, condition)
    assert message in str(refused.value)
    assert conditions_file.read_bytes() == before
    assert [p.name for p in conditions_file.parent.iterdir()] == [conditions_file.name]


def test_a_missing_or_malformed_file_is_refused(tmp_path):
    with pytest.raises(ConditionFileError, match="conditions file not found"):
        append_condition(tmp_path / "none.yaml", "train", GOOD)
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [unclosed\n")
    with pytest.raises(ConditionFileError, match="malformed YAML"):
        append_condition(broken, "train", GOOD)


def test_an_inline_set_is_appended_to_by_dumping_the_file(tmp_path):
    path = tmp_path / "inline.yaml"
    path.write_text("# inline sets\ntrain: [{name: a, rack_position: [0.75, 0.0, -0.1]}]\n"
                    "test: [{name: b, rack_position: [0.7, 0.0, -0.1], grasp: 1}]\n")

    append_condition(path, "test", GOOD)

    assert condition_sets(path) == ["train", "test"]
    assert [c.name for c in load_conditions(path, "test")] == ["b", "gui_near_left"]
    assert [c.name for c in load_conditions(path, "train")] == ["a"]


def test_every_corner_of_the_limits_is_within_the_left_arms_reach():
    limits = TargetLimits.from_task(load_task_config(CONFIG))
    env = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
    for position in itertools.product(*zip(limits.low, limits.high)):
        for yaw in (-limits.yaw_max, limits.yaw_max):
            env.reset(0)
            env.move_rack(position, yaw)                  # raises when out of reach
