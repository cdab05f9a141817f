"""The evaluation tool on the real MuJoCo scene: a policy alone, its trials per condition, and
start-pose noise that makes repeated mean-action trials differ."""

import json

import pytest
import yaml

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import FullStateMLP, FullStateMLPConfig
from gps_trainer import evaluation


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
