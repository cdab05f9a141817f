"""What the GUI accepts from the page (gps_trainer.gui.page_requests), checked before anything
goes out over ROS: numbers typed as text, steps added to the current target, the reach limits,
and clear messages for everything else."""

import pytest

from gps_sim.conditions import HangerTaskConfig
from gps_trainer.gui.page_requests import (Pose, RequestError, SaveRequest, TrialRequest,
                                           condition_name, parse_number, save_request,
                                           target_pose, trial_request)
from gps_trainer.gui.target_limits import TargetLimits

LIMITS = TargetLimits.from_task(HangerTaskConfig())     # x 0.65..0.85, y, z +-0.1, yaw +-0.17
CURRENT = Pose((0.75, 0.0, -0.1), 0.0)


@pytest.mark.parametrize("value, number", [(0.7, 0.7), (1, 1.0), ("0.72", 0.72),
                                           (" -3e-2 ", -0.03)])
def test_numbers_come_as_json_numbers_or_typed_text(value, number):
    assert parse_number(value, "x") == number


@pytest.mark.parametrize("value, message", [
    ("abc", "x must be a number, got 'abc'"), ("", "x must be a number, got ''"),
    (None, "x must be a number, got None"), (True, "x must be a number, got True"),
    ([1], "x must be a number"), ("nan", "x must be a finite number, got 'nan'"),
    ("inf", "finite"),
])
def test_anything_else_is_not_a_number(value, message):
    with pytest.raises(RequestError) as refused:
        parse_number(value, "x")
    assert message in str(refused.value)


def test_set_replaces_and_step_adds_to_the_current_target():
    assert target_pose({"set": {"x": "0.7", "yaw": 0.1}}, CURRENT, LIMITS) == \
        Pose((0.7, 0.0, -0.1), 0.1)
    stepped = target_pose({"step": {"y": 0.01, "z": -0.02}}, CURRENT, LIMITS)
    assert stepped.position == pytest.approx((0.75, 0.01, -0.12))
    both = target_pose({"set": {"x": 0.8}, "step": {"x": 0.01}}, CURRENT, LIMITS)
    assert both.position[0] == pytest.approx(0.81)


def test_ten_steps_reach_the_limit_exactly():
    pose = CURRENT
    for _ in range(10):
        pose = target_pose({"step": {"x": 0.01}}, pose, LIMITS)
    assert pose.position[0] == pytest.approx(0.85)
    with pytest.raises(RequestError, match="x = 0.8600 m is out of the reach limits"):
        target_pose({"step": {"x": 0.01}}, pose, LIMITS)


@pytest.mark.parametrize("body, message", [
    ({"set": {"x": 1.5}},
     "target refused: x = 1.5000 m is out of the reach limits [0.650, 0.850] m"),
    ({"set": {"yaw": -0.5}}, "yaw = -0.5000 rad is out of the reach limits"),
    ({"set": {"z": "high"}}, "z must be a number, got 'high'"),
    ({"set": {"w": 1}}, "set has unknown field(s) ['w']"),
    ({"move": {"x": 1}}, "request has unknown field(s) ['move']"),
    ({"set": [0.7]}, "set must be a JSON object, got list"),
    ([1, 2], "request must be a JSON object, got list"),
])
def test_bad_targets_are_refused_with_a_message(body, message):
    with pytest.raises(RequestError) as refused:
        target_pose(body, CURRENT, LIMITS)
    assert message in str(refused.value)


def test_save_reset_and_trial_requests():
    assert save_request({"name": " gui_a ", "set_name": "train", "grasp": "1"}) == \
        SaveRequest("gui_a", "train", 1)
    assert condition_name({"condition": "train_0"}) == "train_0"
    assert trial_request({"condition": "c", "policy_version": "3"}) == TrialRequest("c", 3)
    assert trial_request({"condition": "c"}) == TrialRequest("c", 0)


@pytest.mark.parametrize("parse, body, message", [
    (save_request, {"name": "", "set_name": "train"}, "name must be a non-empty text"),
    (save_request, {"name": "a", "set_name": 3}, "set_name must be a non-empty text, got 3"),
    (save_request, {"name": "a", "set_name": "train", "grasp": "1.5"}, "grasp must be a whole"),
    (save_request, {"name": "a", "set_name": "train", "grasp": -1}, "grasp must be a whole"),
    (condition_name, {}, "condition must be a non-empty text, got None"),
    (trial_request, {"condition": "c", "policy_version": "x"}, "policy_version must be a number"),
    (trial_request, {"condition": "c", "policy_version": -2}, "policy_version must be a whole"),
])
def test_bad_requests_are_refused_with_a_message(parse, body, message):
    with pytest.raises(RequestError) as refused:
        parse(body)
    assert message in str(refused.value)
