"""The success test: true when the hook hangs over the bar, false otherwise."""

import numpy as np
import pytest

from gps_sim.success import Bar, HookGeometry, check_hang
from gps_sim.scripted_hang import scripted_hang

HOOK = HookGeometry(stem_x=0.0, tip_x=0.06, tip_end_z=0.03, centre_x=0.03, centre_z=0.05,
                    radius=0.03)
UP = np.array([0.0, 0.0, 1.0])


def _bar_through(point, axis=(0.0, 1.0, 0.0)):
    return Bar(centre=np.asarray(point, float), axis=np.asarray(axis, float), half_length=0.15)


def test_hook_geometry_is_read_from_the_model(nominal_env):
    nominal_env.reset(0)
    assert nominal_env._rt.hook == HOOK


@pytest.mark.parametrize("point, inside", [
    ((0.03, 0.05), True),     # curl centre
    ((0.01, 0.035), True),    # low, near the stem, above the tip's end
    ((0.03, 0.075), True),    # just under the top of the curl
    ((0.03, 0.02), False),    # below the tip's end: the hook has not closed over it
    ((-0.01, 0.05), False),   # outside the stem
    ((0.07, 0.05), False),    # outside the tip
    ((0.005, 0.077), False),  # above the curl, in the corner outside the half circle
])
def test_enclosure_region(point, inside):
    assert HOOK.encloses(*point) == inside


def test_check_hang_each_condition():
    identity = np.eye(3)
    hung = check_hang(np.zeros(3), identity, HOOK, _bar_through((0.03, 0.0, 0.05)), UP)
    assert hung.success
    beyond_end = check_hang(np.zeros(3), identity, HOOK, _bar_through((0.03, 0.2, 0.05)), UP)
    assert not beyond_end.on_bar and not beyond_end.success
    along_plane = check_hang(np.zeros(3), identity, HOOK,
                             _bar_through((0.03, 0.0, 0.05), (1.0, 0.0, 0.0)), UP)
    assert not along_plane.crossing and not along_plane.success
    upside_down = np.diag([1.0, -1.0, -1.0])
    flipped = check_hang(np.zeros(3), upside_down, HOOK, _bar_through((0.03, 0.0, -0.05)), UP)
    assert flipped.enclosed and not flipped.upright and not flipped.success


@pytest.mark.parametrize("condition", [0, 1])
def test_success_false_at_start_true_when_hand_placed_on_targets(nominal_env, condition):
    nominal_env.reset(condition)
    assert not nominal_env.success()
    solution = nominal_env.right_arm_ik(nominal_env.target_points())
    assert solution.max_error < 1e-4
    nominal_env.set_right_arm_state(solution.q)
    assert nominal_env.success()
    np.testing.assert_allclose(nominal_env.state()[14:23], 0.0, atol=1e-4)


def test_hand_placed_below_the_bar_is_not_success(nominal_env):
    nominal_env.reset(0)
    lowered = nominal_env.target_points() - np.array([0.0, 0.0, 0.05])
    nominal_env.set_right_arm_state(nominal_env.right_arm_ik(lowered).q)
    check = nominal_env.hang_check()
    assert check.on_bar and not check.enclosed and not nominal_env.success()


def test_hanging_is_reachable_under_torque_limits_for_every_training_condition(train_env):
    # A computed-torque PD controller at 20 Hz, torques clipped to the effort limits, threads
    # the bar through the hook within one episode: the learner's task is feasible.
    for index, condition in enumerate(train_env.conditions):
        assert scripted_hang(train_env, index), condition.name
        x = train_env.state()
        final_error = np.abs(x[train_env.layout.state_slice("ee_points_rel_target")]).max()
        assert final_error < 0.01, condition.name


@pytest.mark.parametrize("condition", [0, 1])
@pytest.mark.parametrize("offset, why", [
    ((0.0, 0.0, 0.03), "3 cm too high: the bar passes below the hook's tip"),
    ((-0.03, 0.0, 0.0), "3 cm towards the robot: the bar lies beyond the hook's tip"),
])
def test_near_misses_are_not_success(nominal_env, condition, offset, why):
    nominal_env.reset(condition)
    solution = nominal_env.right_arm_ik(nominal_env.target_points() + np.array(offset))
    assert solution.max_error < 1e-4
    nominal_env.set_right_arm_state(solution.q)
    assert not nominal_env.success(), why
