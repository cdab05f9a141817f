"""The evaluation tool on the real MuJoCo scene: a policy alone, its trials per condition,
start-pose noise that makes repeated mean-action trials differ, and the pose-prediction
baseline (a full-state policy whose target comes from a pose regressor on the first frame)."""

import json

import numpy as np
import pytest
import torch
import yaml

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import (FullStateMLP, FullStateMLPConfig,
                                              PoseRegressionCNN, PoseRegressionConfig,
                                              VisuomotorCNN, VisuomotorCNNConfig)
from gps_sim import HangerEnv, load_conditions
from gps_trainer import evaluation
from gps_trainer.pose_pretraining import PoseTrainingStats, save_pose_regressor


@pytest.fixture
def policy_and_conditions(tmp_path):
    """A random full-state policy (no rendering) and a one-condition file of 12 steps."""
    conditions = tmp_path / "conditions.yaml"
    conditions.write_text(yaml.safe_dump({
        "task": {"episode_steps": 12},
        "train": [{"name": "a", "rack_position": [0.75, 0.0, -0.10], "grasp": 0}]}))
    policy = tmp_path / "policy.pt"
    GaussianPolicy(FullStateMLP(FullStateMLPConfig(fc_units=(8,))), device="cpu").save(policy)
    return policy, conditions


def _evaluate(policy, conditions, out, *extra):
    code = evaluation.main(["--policy", str(policy), "--conditions", str(conditions),
                            "--trials", "3", "--out", str(out), *extra])
    assert code == 0
    return json.loads((out / "results.json").read_text())


def test_start_noise_makes_mean_action_trials_differ(policy_and_conditions, tmp_path):
    policy, conditions = policy_and_conditions
    exact = _evaluate(policy, conditions, tmp_path / "exact")
    noisy = _evaluate(policy, conditions, tmp_path / "noisy", "--start-noise", "0.1")
    assert exact["start_noise_std"] == 0.0 and noisy["start_noise_std"] == 0.1
    same = exact["conditions"]["a"]["final_distances"]
    assert len(same) == 3 and len(set(same)) == 1
    spread = noisy["conditions"]["a"]["final_distances"]
    assert len(spread) == 3 and len(set(spread)) == 3
    assert noisy["conditions"]["a"]["final_distance"] == pytest.approx(sum(spread) / 3)
    again = _evaluate(policy, conditions, tmp_path / "again", "--start-noise", "0.1")
    assert again["conditions"]["a"]["final_distances"] == spread


@pytest.mark.parametrize("value", ["-0.1", "nan", "inf"])
def test_a_bad_start_noise_is_refused_in_one_line(policy_and_conditions, capsys, value):
    policy, conditions = policy_and_conditions
    with pytest.raises(SystemExit) as stop:
        evaluation.main(["--policy", str(policy), "--conditions", str(conditions),
                         "--start-noise", value])
    assert stop.value.code == 2
    assert "error: task.initial_joint_noise_std: expected a finite number >= 0" in \
        capsys.readouterr().err


def test_the_estimated_state_with_the_true_targets_is_the_state(policy_and_conditions):
    _, conditions = policy_and_conditions
    env = HangerEnv(load_conditions(conditions, "train"), render_observations=False)
    env.reset(0)
    for torque in ([3.0] * 7, [-2.0] * 7):
        _, obs = env.step(torque)
        np.testing.assert_array_equal(
            evaluation.estimated_state(env.layout, obs.config, env.target_points()), env.state())
    env.close()


def _regressor_file(path, targets):
    """A pose regressor (32x32 images) that predicts `targets` (3 x 3) for every frame: zero
    weights, the targets as its bias."""
    regressor = PoseRegressionCNN(PoseRegressionConfig(image_size=(32, 32), conv_filters=(4, 4, 4)))
    with torch.no_grad():
        regressor.pose.weight.zero_()
        regressor.pose.bias.copy_(torch.as_tensor(np.ravel(targets)))
    stats = PoseTrainingStats(0.0, 0.0, 0.0, 1, 1, 0, 0.0, "cpu", (0.0,) * 9, (1.0,) * 9)
    return save_pose_regressor(regressor, stats, path)


def test_the_pose_prediction_baseline_drives_the_policy_with_the_predicted_target(
        policy_and_conditions, tmp_path):
    """With a regressor that predicts the true target points the baseline repeats the
    full-state policy's episodes (to the regressor's float32 rounding); one that is 5 cm off
    steers the same policy elsewhere."""
    policy, conditions = policy_and_conditions
    env = HangerEnv(load_conditions(conditions, "train"), render_observations=False)
    env.reset(0)
    truth = env.target_points()
    env.close()
    exact = _evaluate(policy, conditions, tmp_path / "state")
    oracle = _evaluate(policy, conditions, tmp_path / "oracle", "--pose-regressor",
                       str(_regressor_file(tmp_path / "oracle.pt", truth)))
    shifted = _evaluate(policy, conditions, tmp_path / "shifted", "--pose-regressor",
                        str(_regressor_file(tmp_path / "shifted.pt", truth + [0.05, 0.0, 0.0])))
    assert oracle["pose_regressor"].endswith("oracle.pt") and exact["pose_regressor"] is None
    distance = exact["conditions"]["a"]["final_distance"]
    assert oracle["conditions"]["a"]["final_distance"] == pytest.approx(distance, abs=1e-5)
    assert abs(shifted["conditions"]["a"]["final_distance"] - distance) > 1e-3


def test_the_pose_prediction_baseline_refuses_an_image_policy(policy_and_conditions, tmp_path,
                                                              capsys):
    _, conditions = policy_and_conditions
    cnn = tmp_path / "cnn.pt"
    GaussianPolicy(VisuomotorCNN(VisuomotorCNNConfig(image_size=(32, 32),
                                                     conv_filters=(4, 4, 4), fc_units=(8,))),
                   device="cpu").save(cnn)
    with pytest.raises(SystemExit) as stop:
        evaluation.main(["--policy", str(cnn), "--conditions", str(conditions),
                         "--pose-regressor", str(_regressor_file(tmp_path / "r.pt",
                                                                 np.zeros((3, 3))))])
    assert stop.value.code == 2
    assert "--pose-regressor needs a full-state --policy" in capsys.readouterr().err


def _looks_file(path, looks):
    path.write_text(yaml.safe_dump({"seed": 0, "appearance_randomisation": looks}))
    return path


def test_random_looks_vary_what_an_image_policy_sees_and_nothing_else(policy_and_conditions,
                                                                      tmp_path):
    """Each trial draws its own look: a CNN's mean-action trials then differ (and repeat with
    the seed), a full-state policy's do not (the look changes no physics)."""
    full_state, conditions = policy_and_conditions
    looks = _looks_file(tmp_path / "looks.yaml", {"colour_jitter": 0.4,
                                                  "light_scale": [0.4, 1.5]})
    torch.manual_seed(0)
    cnn = tmp_path / "cnn.pt"
    GaussianPolicy(VisuomotorCNN(VisuomotorCNNConfig(image_size=(32, 32),
                                                     conv_filters=(4, 4, 4), fc_units=(8,))),
                   device="cpu").save(cnn)
    plain = _evaluate(cnn, conditions, tmp_path / "plain")
    varied = _evaluate(cnn, conditions, tmp_path / "varied", "--random-looks", str(looks))
    assert len(set(plain["conditions"]["a"]["final_distances"])) == 1
    assert len(set(varied["conditions"]["a"]["final_distances"])) == 3
    assert plain["random_looks"] is None
    assert varied["random_looks"]["colour_jitter"] == 0.4
    again = _evaluate(cnn, conditions, tmp_path / "again", "--random-looks", str(looks))
    assert again["conditions"] == varied["conditions"]
    state_plain = _evaluate(full_state, conditions, tmp_path / "state_plain")
    state_varied = _evaluate(full_state, conditions, tmp_path / "state_varied",
                             "--random-looks", str(looks))
    assert state_varied["conditions"] == state_plain["conditions"]


@pytest.mark.parametrize("looks, message", [
    (None, "sets no appearance_randomisation"),
    ({"colour_jitter": 2.0}, "colour_jitter"),
])
def test_random_looks_without_a_change_are_refused_in_one_line(policy_and_conditions, tmp_path,
                                                               capsys, looks, message):
    policy, conditions = policy_and_conditions
    with pytest.raises(SystemExit) as stop:
        evaluation.main(["--policy", str(policy), "--conditions", str(conditions),
                         "--random-looks", str(_looks_file(tmp_path / "looks.yaml", looks))])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
