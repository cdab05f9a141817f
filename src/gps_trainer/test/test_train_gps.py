"""The end-to-end run on the real MuJoCo scene with a tiny network: every stage runs, writes its
part of the run folder, and a resumed run finishes what a killed one started."""

import json

import pytest
import yaml

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_trainer import evaluation
from gps_trainer.run_folder import RunFolder
from gps_trainer.train_gps import END_TO_END, TRAJECTORY_PRETRAINING, GpsRunConfig, load_config, main

TINY_CNN = {"image_size": [32, 32], "conv_filters": [4, 4, 4], "fc_units": [8]}


@pytest.fixture
def tiny(tmp_path, request):
    conditions = tmp_path / "conditions.yaml"
    conditions.write_text(yaml.safe_dump({
        "task": {"episode_steps": 12},
        "train": [{"name": "a", "rack_position": [0.69, -0.08, -0.15], "grasp": 0},
                  {"name": "b", "rack_position": [0.81, 0.08, -0.05], "grasp": 1}],
        "spatial_test": [{"name": "c", "rack_position": [0.75, 0.0, -0.10], "grasp": 0}],
    }))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({
        "conditions_file": "conditions.yaml", "image_size": 32,
        "trajectory_pretraining_iterations": 2, "end_to_end_iterations": 1,
        "evaluation_trials": 1,
        "pose_pretraining": {"n_poses": 6, "sgd_steps": 5,
                             "validation_fraction": 0.34},
        "full_state_network": {"fc_units": [8]},
        "full_state_badmm": {"inner_iterations": 1, "initial_nu": 0.1},
        "full_state_policy_opt": {"iterations": 5, "fc_only_calls": 0},
        "network": TINY_CNN,
        "badmm": {"inner_iterations": 1, "initial_nu": 0.1},
        "policy_opt": {"iterations": 3, "fc_only_iterations": 3},
    }))
    return config


def test_every_stage_runs_and_fills_the_run_folder(tiny, tmp_path):
    run = RunFolder(tmp_path / "run")
    assert main(["--config", str(tiny), "--run-dir", str(run.path)]) == 0
    records = run.read_metrics()
    assert [(r["iteration"], r["stage"]) for r in records[::2]] == [
        (0, TRAJECTORY_PRETRAINING), (1, TRAJECTORY_PRETRAINING), (2, END_TO_END)]
    assert all(len(r["kl_policy_traj_per_step"]) == 12 for r in records)
    report = json.loads((run.path / "evaluation.json").read_text())
    assert report["samples"] == 3 * 2
    assert report["train"]["trials"] == 2 and report["spatial_test"]["trials"] == 1
    policy = GaussianPolicy.load(run.path / "policy.pt", device="cpu")
    assert policy.uses_images and policy.architecture["image_size"] == [32, 32]
    assert (run.path / "pose" / "pose_regressor.pt").is_file()
    assert (run.path / "eval" / "train" / "a.png").is_file()
    assert (run.path / "training.png").is_file()
    conditions = tmp_path / "conditions.yaml"
    out = tmp_path / "eval"
    assert evaluation.main(["--policy", str(run.path / "policy.pt"), "--conditions",
                            str(conditions), "--set", "spatial_test", "--trials", "2",
                            "--out", str(out)]) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["trials"] == 2 and set(again["conditions"]) == {"c"}


def test_resume_finishes_a_killed_run(tiny, tmp_path):
    run = RunFolder(tmp_path / "run")
    config = load_config(tiny)
    from gps_trainer.train_gps import train
    with pytest.raises(KeyboardInterrupt):
        train(config, run, log=_interrupt_after("itr  1"))
    assert run.latest_checkpoint()[0] == 1
    assert main(["--run-dir", str(run.path), "--resume"]) == 0
    assert sorted({r["iteration"] for r in run.read_metrics()}) == [0, 1, 2]


def test_mismatched_image_sizes_are_refused():
    with pytest.raises(ValueError, match="image_size"):
        GpsRunConfig(image_size=64, network=GpsRunConfig().network.__class__(image_size=(32, 32)))


def _interrupt_after(prefix):
    def log(line, *_):
        if str(line).startswith(prefix):
            raise KeyboardInterrupt
    return log
