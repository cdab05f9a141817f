"""The head camera renders the scene; scene variations change what it sees."""

import numpy as np
import pytest

from gps_sim import (Distractor, HangerCondition, HangerEnv, Lighting, SceneVariation,
                     load_conditions)

RACK = (0.75, 0.0, -0.10)


@pytest.fixture(scope="module")
def scene_env():
    plain = HangerCondition("plain", RACK)
    with_box = HangerCondition("with_box", RACK, scene=SceneVariation(distractors=(
        Distractor("box", (0.95, -0.20, -0.47), (0.06, 0.06, 0.06), (0.9, 0.1, 0.1, 1.0)),)))
    dim = HangerCondition("dim", RACK, scene=SceneVariation(
        lighting=Lighting(key_diffuse=(0.1, 0.1, 0.1), fill_diffuse=(0.0, 0.0, 0.0))))
    env = HangerEnv([plain, with_box, dim])
    yield env
    env.close()


@pytest.mark.parametrize("size", [64, 240])
def test_render_returns_rgb_uint8_of_the_requested_size(scene_env, size):
    scene_env.reset("plain")
    image = scene_env.render(size)
    assert image.shape == (size, size, 3)
    assert image.dtype == np.uint8
    assert image.std() > 10


def test_observation_image_uses_the_task_image_size(scene_env):
    _, obs = scene_env.reset("plain")
    assert obs.image.shape == (64, 64, 3)


def test_a_distractor_changes_the_image(scene_env):
    scene_env.reset("plain")
    plain = scene_env.render(64).astype(int)
    scene_env.reset("with_box")
    with_box = scene_env.render(64).astype(int)
    changed = np.abs(with_box - plain).max(axis=2) > 30
    assert changed.sum() > 20
    assert with_box[..., 0][changed].mean() > with_box[..., 1][changed].mean()


def test_dimmer_light_darkens_the_image(scene_env):
    scene_env.reset("plain")
    plain = scene_env.render(64).mean()
    scene_env.reset("dim")
    assert scene_env.render(64).mean() < plain - 10


def test_distractors_do_not_change_the_physics(scene_env):
    torque = np.array([3.0, -2.0, 1.0, 2.0, 0.5, 0.2, -0.2])
    states = []
    for name in ("plain", "with_box"):
        scene_env.reset(name)
        for _ in range(10):
            x, _ = scene_env.step(torque)
        states.append(x)
    np.testing.assert_allclose(states[0], states[1], atol=1e-9)


def test_visual_test_file_builds_every_scene(visual_test_file):
    env = HangerEnv(load_conditions(visual_test_file, "visual_test"))
    for index in range(len(env.conditions)):
        _, obs = env.reset(index)
        assert obs.image.shape == (64, 64, 3)
    env.close()


def test_oversized_image_is_rejected(scene_env):
    scene_env.reset("plain")
    with pytest.raises(ValueError, match="offscreen buffer"):
        scene_env.render(1000)


def test_moving_the_rack_changes_the_image(scene_env):
    """The policy must find the rack in the image: moving it 8 cm changes what the camera sees
    (and holding still does not)."""
    scene_env.reset("plain")

    def hold():                                    # the right arm compensates its load
        scene_env.step(scene_env.right_arm_bias_torque())
    for _ in range(5):
        hold()
    still = scene_env.render(64).astype(int)
    hold()
    assert np.abs(scene_env.render(64).astype(int) - still).mean() < 0.5
    scene_env.move_rack(np.array(RACK) + np.array([0.0, 0.08, 0.0]), 0.0)
    for _ in range(20):
        hold()
    moved = scene_env.render(64).astype(int)
    changed = np.abs(moved - still).max(axis=2) > 30
    assert changed.mean() > 0.01
