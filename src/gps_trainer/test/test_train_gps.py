"""The end-to-end run on the real MuJoCo scene with a tiny network: every stage runs, writes its
part of the run folder, and a resumed run finishes what a killed one started."""

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import VisuomotorCNN, VisuomotorCNNConfig
from gps_controller.typed_config import ConfigError, to_mapping
from gps_sim import HangerEnv, load_conditions
from gps_trainer import evaluation, pose_pretraining
from gps_trainer.run_folder import RunFolder
from gps_trainer.train_gps import (END_TO_END, TRAJECTORY_PRETRAINING, GpsRunConfig, KeptPolicy,
                                   keep_best, load_config, main, rack_offset)
from gps_trainer.trajectory_phase import read_run_config

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"


@pytest.fixture
def tiny(tiny_preset):
    return tiny_preset()[1]


def test_every_stage_runs_and_fills_the_run_folder(tiny, tmp_path):
    run = RunFolder(tmp_path / "run")
    assert main(["--config", str(tiny), "--run-dir", str(run.path)]) == 0
    records = run.read_metrics()
    assert [(r["iteration"], r["stage"]) for r in records[::2]] == [
        (0, TRAJECTORY_PRETRAINING), (1, TRAJECTORY_PRETRAINING), (2, END_TO_END)]
    assert all(len(r["kl_policy_traj_per_step"]) == 12 for r in records)
    assert all(("policy_success" in r) == (r["stage"] == END_TO_END) for r in records)
    assert all(r["policy_success"] in (0.0, 1.0) for r in records if r["stage"] == END_TO_END)
    report = json.loads((run.path / "evaluation.json").read_text())
    assert report["samples"] == 3 * 2
    assert report["train"]["trials"] == 2 and report["spatial_test"]["trials"] == 1
    policy = GaussianPolicy.load(run.path / "policy.pt", device="cpu")
    assert policy.uses_images and policy.architecture["image_size"] == [32, 32]
    full_state = GaussianPolicy.load(run.path / "policy_full_state.pt", device="cpu")
    assert not full_state.uses_images and full_state.architecture["fc_units"] == [8]
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
    baseline = tmp_path / "pose_prediction"
    assert evaluation.main(["--policy", str(run.path / "policy_full_state.pt"),
                            "--pose-regressor", str(run.path / "pose" / "pose_regressor.pt"),
                            "--conditions", str(conditions), "--set", "spatial_test",
                            "--trials", "1", "--out", str(baseline)]) == 0
    assert json.loads((baseline / "results.json").read_text())["trials"] == 1


def test_resume_finishes_a_killed_run(tiny, tmp_path):
    run = RunFolder(tmp_path / "run")
    config = load_config(tiny)
    from gps_trainer.train_gps import train
    with pytest.raises(KeyboardInterrupt):
        train(config, run, log=_interrupt_after("itr  1"))
    assert run.latest_checkpoint()[0] == 1
    assert main(["--run-dir", str(run.path), "--resume"]) == 0
    assert sorted({r["iteration"] for r in run.read_metrics()}) == [0, 1, 2]


def test_rack_offsets_fill_the_jitter_box_and_follow_the_noise_seed():
    jitter = np.array([0.03, 0.04, 0.025])
    offsets = np.array([rack_offset(seed, jitter) for seed in range(2000)])
    assert np.all(np.abs(offsets) <= jitter)
    np.testing.assert_allclose(offsets.max(axis=0), jitter, rtol=0.01)
    np.testing.assert_allclose(offsets.min(axis=0), -jitter, rtol=0.01)
    np.testing.assert_allclose(offsets.mean(axis=0), 0.0, atol=0.05 * jitter.max())
    assert np.array_equal(rack_offset(7, jitter), offsets[7])
    assert not np.any(rack_offset(7, (0.0, 0.0, 0.0)))


def test_jittered_samples_start_with_the_targets_moved_by_their_offset(tiny, tmp_path):
    """Each stored sample's first state holds the EE points relative to targets that moved by
    the offset its metrics record: the jitter reached the simulator, the state reflects it."""
    preset = yaml.safe_load(tiny.read_text())
    preset.update(rack_jitter=[0.02, 0.03, 0.02], trajectory_pretraining_iterations=2,
                  end_to_end_iterations=1)
    tiny.write_text(yaml.safe_dump(preset))
    run = RunFolder(tmp_path / "run")
    assert main(["--config", str(tiny), "--run-dir", str(run.path)]) == 0
    env = HangerEnv.from_yaml(tmp_path / "conditions.yaml", "train", render_observations=False)
    relative = env.layout.state_slice("ee_points_rel_target")
    for record in run.read_metrics():
        offset = np.array(record["rack_offset"])
        assert np.all(np.abs(offset) <= [0.02, 0.03, 0.02]) and np.any(offset)
        nominal = env.reset(record["condition"])[0][relative].reshape(3, 3)
        with np.load(run.path / "samples" / f"itr_{record['iteration']:03d}_cond_"
                     f"{record['condition']:02d}.npz") as sample:
            start = sample["X"][0, relative].reshape(3, 3)
        np.testing.assert_allclose(start, nominal - offset, atol=0.003)
    env.close()


def test_randomised_looks_reach_the_samples_and_pose_frames_only(tiny, tmp_path):
    """With appearance_randomisation for the samples and the pose frames, every stored sample
    starts in a frame that differs from the condition's own look with the same rack offset, and
    every pose frame from the plain frame of its rack pose; the physics do not see it (the
    first state is the plain one)."""
    preset = yaml.safe_load(tiny.read_text())
    looks = {"colour_jitter": 0.3, "light_scale": [0.5, 1.5]}
    preset.update(rack_jitter=[0.02, 0.02, 0.02], trajectory_pretraining_iterations=1,
                  end_to_end_iterations=1, appearance_randomisation=looks)
    preset["pose_pretraining"]["appearance_randomisation"] = looks
    tiny.write_text(yaml.safe_dump(preset))
    run = RunFolder(tmp_path / "run")
    assert main(["--config", str(tiny), "--run-dir", str(run.path)]) == 0
    env = HangerEnv.from_yaml(tmp_path / "conditions.yaml", "train")
    env = HangerEnv(env.conditions, replace(env.task, image_size=32))
    for record in run.read_metrics():
        plain_x, plain = env.reset(record["condition"], rack_offset=record["rack_offset"])
        with np.load(run.path / "samples" / f"itr_{record['iteration']:03d}_cond_"
                     f"{record['condition']:02d}.npz") as sample:
            np.testing.assert_allclose(sample["X"][0], plain_x, atol=1e-9)
            assert np.abs(sample["images"][0].astype(int) - plain.image).mean() > 5
    poses = pose_pretraining.load_pose_dataset(run.path / "pose" / "pose_dataset.npz")
    for image, condition, position, yaw in zip(poses.images, poses.conditions,
                                               poses.rack_positions, poses.rack_yaws):
        offset, yaw_offset = pose_pretraining.rack_pose_offsets(env.conditions[condition],
                                                                position, yaw)
        env.reset(int(condition), rack_offset=offset, rack_yaw_offset=yaw_offset)
        assert np.abs(image.astype(int) - env.render()).mean() > 5
    env.close()


def test_keep_best_keeps_the_most_validation_successes_and_the_latest_on_ties():
    policy = GaussianPolicy(VisuomotorCNN(VisuomotorCNNConfig(
        image_size=(32, 32), conv_filters=(4, 4, 4), fc_units=(8,))))
    kept = None
    for iteration, successes in enumerate([3, 5, 4, 5, 2]):
        for p in policy.network.parameters():
            p.data.fill_(float(iteration))
        kept = keep_best(kept, iteration, successes, 16, policy)
    assert (kept.iteration, kept.successes, kept.trials) == (3, 5, 16)
    assert all(float(p.data.flatten()[0]) == 3.0 for p in kept.policy.network.parameters())
    assert kept.policy is not policy


def _add_validation_set(tiny, tmp_path, **preset_changes):
    """Give the tiny preset a one-condition validation set and one trajectory pre-training
    iteration (plus preset_changes); returns the conditions file."""
    conditions = tmp_path / "conditions.yaml"
    sets = yaml.safe_load(conditions.read_text())
    sets["validation"] = [{"name": "v", "rack_position": [0.72, 0.02, -0.08], "grasp": 1}]
    conditions.write_text(yaml.safe_dump(sets))
    preset = yaml.safe_load(tiny.read_text())
    preset.update(validation_set="validation", trajectory_pretraining_iterations=1,
                  **preset_changes)
    tiny.write_text(yaml.safe_dump(preset))
    return conditions


def test_validation_picks_the_run_policy_and_survives_a_kill(tiny, tmp_path):
    """With a validation set the policy alone is checked on it after every end-to-end
    iteration; policy.pt is the best iteration's (the latest on ties), also after a resume."""
    conditions = _add_validation_set(tiny, tmp_path, end_to_end_iterations=3)
    run = RunFolder(tmp_path / "run")
    from gps_trainer.train_gps import train
    with pytest.raises(KeyboardInterrupt):
        train(load_config(tiny), run, log=_interrupt_after("itr  2"))
    assert main(["--run-dir", str(run.path), "--resume"]) == 0
    rates = {r["iteration"]: r["policy_validation_success"] for r in run.read_metrics()
             if r["stage"] == END_TO_END}
    assert sorted(rates) == [1, 2, 3]
    best = max(i for i in rates if rates[i] == max(rates.values()))
    report = json.loads((run.path / "evaluation.json").read_text())
    assert report["policy_iteration"] == best
    assert (run.path / "policy_last.pt").is_file() == (best != 3)
    checked = evaluation.main(["--policy", str(run.path / "policy.pt"), "--conditions",
                               str(conditions), "--set", "validation", "--trials", "1",
                               "--out", str(tmp_path / "eval")])
    assert checked == 0
    again = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert again["success_rate"] == rates[best]


def test_command_line_checkpoints_load_in_another_process(tiny, tmp_path):
    """`python -m gps_trainer.train_gps` runs as __main__; its checkpoints must still name
    gps_trainer.train_gps classes (the kept policy) so the trainer node and tools can load them."""
    _add_validation_set(tiny, tmp_path)
    run = RunFolder(tmp_path / "run")
    subprocess.run([sys.executable, "-m", "gps_trainer.train_gps", "--config", str(tiny),
                    "--run-dir", str(run.path)], check=True, capture_output=True, timeout=300)
    iteration, state = run.latest_checkpoint()
    assert iteration == 1 and type(state["kept"]) is KeptPolicy


@pytest.mark.parametrize("validation_set, trials", [("train", 1), ("spatial_test", 1),
                                                    ("validation", 0)])
def test_bad_validation_settings_are_refused(validation_set, trials):
    with pytest.raises(ValueError, match="validation_set"):
        GpsRunConfig(image_size=240, validation_set=validation_set,
                     policy_success_trials=trials)


@pytest.mark.parametrize("jitter", [[0.01, 0.01], [0.0, -0.01, 0.0], [0.0, 0.2, 0.0]])
def test_bad_rack_jitter_is_refused(jitter):
    with pytest.raises(ValueError, match="rack_jitter"):
        GpsRunConfig(rack_jitter=tuple(jitter))


@pytest.mark.parametrize("preset, image_size, parameters", [
    ("hanger_gps_cpu.yaml", 64, 92_143), ("hanger_gps_paper.yaml", 240, 92_143)])
def test_the_presets_build_the_paper_network(preset, image_size, parameters):
    """Both presets load; the paper's filter counts (the CPU preset only shrinks the image)."""
    config = load_config(CONFIG_DIR / preset)
    cnn = VisuomotorCNN(config.network)
    assert config.image_size == image_size and config.network.image_size == (image_size,) * 2
    assert sum(p.numel() for p in cnn.parameters()) == parameters
    assert load_conditions(config.conditions_file, config.train_set)
    assert load_conditions(config.conditions_file, config.test_set)
    assert load_conditions(config.conditions_file, config.validation_set)


def test_the_pose_features_preset_is_the_cpu_preset_with_frozen_vision():
    """The paper's baseline differs from the quick preset in the policy step alone: head-only
    steps in every call, no end-to-end steps."""
    cpu = to_mapping(load_config(CONFIG_DIR / "hanger_gps_cpu.yaml"))
    frozen = to_mapping(load_config(CONFIG_DIR / "hanger_gps_pose_features.yaml"))
    assert {key for key in cpu if cpu[key] != frozen[key]} == {"policy_opt"}
    assert frozen["policy_opt"] == dict(cpu["policy_opt"], iterations=0,
                                        fc_only_iterations=1200, fc_only_calls=1_000_000)


def test_the_randomised_looks_preset_is_the_cpu_preset_with_random_looks():
    """Samples and pose frames draw their looks from the same ranges, pose pre-training takes
    more poses and steps; nothing else changes."""
    cpu = to_mapping(load_config(CONFIG_DIR / "hanger_gps_cpu.yaml"))
    looks = load_config(CONFIG_DIR / "hanger_gps_randomised_looks.yaml")
    assert looks.appearance_randomisation.enabled
    assert looks.pose_pretraining.appearance_randomisation == looks.appearance_randomisation
    randomised = to_mapping(looks)
    assert {key for key in cpu if cpu[key] != randomised[key]} == {
        "appearance_randomisation", "pose_pretraining"}
    assert dict(randomised["pose_pretraining"], appearance_randomisation=None) == dict(
        cpu["pose_pretraining"], appearance_randomisation=None, n_poses=4000, sgd_steps=8000)


def test_a_base_file_is_varied_key_by_key(tmp_path):
    presets = tmp_path / "presets"
    presets.mkdir()
    (presets / "phase.yaml").write_text("noise: {smooth: true, sigma: 2.0}\n")
    (presets / "base.yaml").write_text(
        "seed: 3\nconditions_file: conditions.yaml\nphase_file: phase.yaml\n"
        "rack_jitter: [0.01, 0.01, 0.01]\npolicy_opt: {iterations: 10, batch_size: 5}\n")
    (tmp_path / "child.yaml").write_text(
        "base_file: presets/base.yaml\nrack_jitter: [0.02, 0.0, 0.0]\n"
        "policy_opt: {iterations: 0}\nphase: {noise: {sigma: 1.0}}\n")
    assert read_run_config(tmp_path / "child.yaml") == {
        "seed": 3, "conditions_file": str((presets / "conditions.yaml").resolve()),
        "phase": {"noise": {"smooth": True, "sigma": 1.0}},
        "rack_jitter": [0.02, 0.0, 0.0], "policy_opt": {"iterations": 0, "batch_size": 5}}


def test_a_missing_or_circular_base_file_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("base_file: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base_file: a.yaml\n")
    with pytest.raises(ConfigError, match="b.yaml: base_file .*a.yaml is already in the chain"):
        read_run_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base_file: none.yaml\n")
    with pytest.raises(ConfigError, match="c.yaml: base_file not found: .*none.yaml"):
        read_run_config(tmp_path / "c.yaml")


def test_mismatched_image_sizes_are_refused():
    with pytest.raises(ValueError, match="image_size"):
        GpsRunConfig(image_size=64, network=GpsRunConfig().network.__class__(image_size=(32, 32)))


def _interrupt_after(prefix):
    def log(line, *_):
        if str(line).startswith(prefix):
            raise KeyboardInterrupt
    return log


@pytest.mark.parametrize("content,message", [
    (None, "policy file not found: .*policy.pt"),
    (b"not a policy\n", "policy.pt: torch cannot read it as a saved policy"),
])
def test_evaluation_refuses_a_bad_policy_file_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "policy.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit) as stop:
        evaluation.main(["--policy", str(path), "--conditions",
                         str(CONFIG_DIR / "hanger_conditions.yaml")])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert re.search(f"error: .*{message}", err), err
