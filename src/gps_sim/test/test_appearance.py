"""Appearance randomisation: each training episode's colours and lights are drawn within the
configured ranges from the reset's seed, change only what the camera sees, and leave the next
episode without randomisation in the condition's own look."""

import numpy as np
import pytest

from gps_controller.typed_config import ConfigError, from_mapping
from gps_sim import AppearanceRandomisation, HangerCondition, HangerEnv, SceneVariation
from gps_sim.scene import SceneLook, build_model

RACK = (0.75, 0.0, -0.10)
STRONG = AppearanceRandomisation(colour_jitter=0.4, light_scale=(0.4, 1.5), light_tint=0.3,
                                 key_light_shift=0.3)


@pytest.fixture(scope="module")
def env():
    env = HangerEnv([HangerCondition("plain", RACK)])
    yield env
    env.close()


def _frame(env, seed=0, appearance=None):
    env.reset("plain", seed, appearance=appearance)
    return env.render(64).astype(int)


def test_a_random_look_follows_the_seed_and_the_next_plain_reset_restores_the_look(env):
    nominal = _frame(env)
    first, again, other = _frame(env, 3, STRONG), _frame(env, 3, STRONG), _frame(env, 4, STRONG)
    assert np.array_equal(first, again)
    assert np.abs(first - nominal).mean() > 10
    assert np.abs(other - first).mean() > 10
    assert np.array_equal(_frame(env), nominal)
    assert np.array_equal(_frame(env, 3, AppearanceRandomisation()), nominal)


def test_a_random_look_leaves_the_physics_alone(env):
    torque = np.array([3.0, -2.0, 1.0, 2.0, 0.5, 0.2, -0.2])
    finals = []
    for appearance in (None, STRONG):
        x0, _ = env.reset("plain", 5, appearance=appearance)
        for _ in range(10):
            x, _ = env.step(torque)
        finals.append((x0, x))
    np.testing.assert_array_equal(finals[0][0], finals[1][0])
    np.testing.assert_allclose(finals[0][1], finals[1][1], atol=1e-12)


def test_draws_fill_the_configured_ranges_and_nothing_else_changes():
    model = build_model(SceneVariation())
    look = SceneLook.of(model)
    others = np.setdiff1d(np.arange(model.ngeom), np.concatenate(look.colour_groups))
    rng = np.random.default_rng(0)
    shifts, light_ratios, key_moves, head_ratios = [], [], [], []
    for _ in range(400):
        look.apply(model, STRONG, rng)
        shifts.append([model.geom_rgba[g, :3] - look.geom_rgba[g, :3]
                       for g in look.colour_groups])
        for shift in shifts[-1]:
            assert np.allclose(shift, shift[0])     # one colour per object
        np.testing.assert_array_equal(model.geom_rgba[others], look.geom_rgba[others])
        np.testing.assert_array_equal(model.geom_rgba[:, 3], look.geom_rgba[:, 3])
        light_ratios.append(model.light_diffuse[look.lights] / look.light_diffuse)
        head_ratios.append(model.vis.headlight.ambient / look.headlight_ambient)
        key_moves.append(model.light_pos[look.lights[0]] - look.key_light_pos)
    unclipped = np.array([[s[0] for s in per_episode] for per_episode in shifts])
    nominal = look.geom_rgba[[g[0] for g in look.colour_groups], :3]
    inside = (nominal + unclipped > 0.0) & (nominal + unclipped < 1.0)
    assert np.all(np.abs(unclipped) <= 0.4 + 1e-6)
    assert unclipped[inside].max() > 0.38 and unclipped[inside].min() < -0.38
    ratios = np.array(light_ratios)
    low, high = 0.4 * 0.7, 1.5 * 1.3
    assert np.all(ratios >= low - 1e-9) and np.all(ratios <= high + 1e-9)
    assert ratios.min() < 0.35 and np.percentile(ratios, 99) > 1.3
    assert np.all(np.array(head_ratios) <= high + 1e-9)
    moves = np.array(key_moves)
    assert np.all(np.abs(moves) <= 0.3 + 1e-12) and np.abs(moves).max() > 0.29
    look.apply(model, None, rng)
    np.testing.assert_array_equal(model.geom_rgba, look.geom_rgba)
    np.testing.assert_array_equal(model.light_diffuse[look.lights], look.light_diffuse)
    np.testing.assert_array_equal(model.vis.headlight.diffuse, look.headlight_diffuse)


def test_the_default_changes_nothing():
    assert not AppearanceRandomisation().enabled
    assert AppearanceRandomisation(light_scale=(0.9, 1.0)).enabled


@pytest.mark.parametrize("values, message", [
    ({"colour_jitter": -0.1}, "colour_jitter"),
    ({"colour_jitter": 1.5}, "colour_jitter"),
    ({"light_scale": [1.2, 0.8]}, "light_scale"),
    ({"light_scale": [-0.1, 1.0]}, "light_scale"),
    ({"light_tint": 1.0}, "light_tint"),
    ({"key_light_shift": -0.2}, "key_light_shift"),
    ({"key_light_shift": float("nan")}, "key_light_shift"),
])
def test_bad_ranges_are_refused_with_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(AppearanceRandomisation, values, "appearance_randomisation")


@pytest.mark.parametrize("values", [{"key_light_shift": float("inf")},
                                    {"light_scale": (0.5, float("inf"))},
                                    {"colour_jitter": float("nan")}])
def test_non_finite_ranges_built_in_code_are_refused(values):
    """The sim node builds the ranges from a set_condition request, past YAML's checks."""
    with pytest.raises(ConfigError, match="finite"):
        AppearanceRandomisation(**values)
