"""Pose pre-training: the left arm puts the rack at random poses, the recorded frames carry
the rack's target points, a small CNN learns to regress them from images, and its vision layers
initialise the policy (gps_trainer.pose_pretraining)."""

import dataclasses
import json
import os
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gps_controller.policies.networks import (PoseRegressionCNN,  # noqa: E402
                                              PoseRegressionConfig, VisionConfig, VisuomotorCNN,
                                              VisuomotorCNNConfig)
from gps_controller.typed_config import ConfigError  # noqa: E402
from gps_sim.conditions import (AppearanceRandomisation, HangerCondition,  # noqa: E402
                                HangerTaskConfig)
from gps_sim.env import HangerEnv  # noqa: E402
from gps_trainer import pose_pretraining as pp  # noqa: E402
from gps_trainer.pose_pretraining import (EnvPoseSource, PosePretrainingConfig,  # noqa: E402
                                          PoseTrainingStats,
                                          collect_pose_data, init_policy_vision, load_config,
                                          load_pose_dataset, load_pose_regressor, main,
                                          point_error_cm,
                                          save_pose_dataset, save_pose_regressor,
                                          train_pose_regressor)

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
CONDITIONS = CONFIG_DIR / "hanger_conditions.yaml"
SIZE = 32
SMALL_VISION = VisionConfig(image_size=(SIZE, SIZE), conv_filters=(16, 16), conv_kernels=(5, 5),
                            conv_strides=(2, 1))
"""Two conv layers at 32x32: trains in seconds on a CPU, still ending in feature points."""
RIGID_TOLERANCE = 0.003
"""m: how far a target point may sit from where the commanded rack pose puts it (the left arm's
IK places the bar centre within 1 mm; the points lie up to 20 cm from it)."""


def quiet(_message):
    pass


def collect(env, config, seed, log=quiet):
    source = EnvPoseSource(env, config.image_size, config.appearance_randomisation)
    return collect_pose_data(source, env.conditions, env.task, config,
                             np.random.default_rng(seed), log)


def rotate_z(points, angle):
    c, s = np.cos(angle), np.sin(angle)
    return points @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T


@pytest.fixture(scope="module")
def env():
    env = HangerEnv.from_yaml(CONDITIONS, "train", render_observations=False)
    yield env
    env.close()


@pytest.fixture(scope="module")
def tiny(env):
    """12 poses at 32x32; the environment is left at the last one."""
    return collect(env, PosePretrainingConfig(n_poses=12, image_size=SIZE), 0)


@pytest.fixture(scope="module")
def trained(env):
    """150 poses at 32x32 and the small CNN trained on them."""
    config = PosePretrainingConfig(n_poses=150, image_size=SIZE, sgd_steps=1000, lr=3e-3,
                                   progress_every=500)
    dataset = collect(env, config, 1)
    regressor, stats = train_pose_regressor(dataset, config, SMALL_VISION, log=quiet)
    return dataset, regressor, stats


# --- collection -------------------------------------------------------------------------------

def test_collection_records_the_requested_frames(tiny):
    assert tiny.images.shape == (12, SIZE, SIZE, 3) and tiny.images.dtype == np.uint8
    assert tiny.targets.shape == (12, 9)
    assert tiny.n_poses == 12
    np.testing.assert_array_equal(tiny.pose_index, np.arange(12))
    assert set(tiny.grasps.tolist()) == {0, 1}
    assert tiny.seconds > 0.0


def test_targets_are_the_environments_target_points_at_the_recorded_frame(env, tiny):
    np.testing.assert_array_equal(tiny.targets[-1], env.target_points().reshape(-1))
    np.testing.assert_array_equal(tiny.images[-1], env.render(SIZE))


def test_images_differ_between_poses(tiny):
    first_frames = tiny.images.astype(float)
    for i in range(len(first_frames)):
        for j in range(i + 1, len(first_frames)):
            assert np.abs(first_frames[i] - first_frames[j]).mean() > 0.5, (i, j)


def test_commanded_rack_poses_lie_within_the_task_ranges(env, tiny):
    task = env.task
    offset = np.abs(tiny.rack_positions - task.rack_nominal_position)
    assert np.all(offset <= task.rack_position_range)
    assert np.all(np.abs(tiny.rack_yaws) <= task.rack_yaw_range)


def test_targets_move_rigidly_with_the_commanded_rack_pose(tiny):
    # In the commanded rack frame (translate by -position, rotate by -yaw) the target points of
    # every frame are the same three points.
    points = tiny.targets.reshape(-1, 3, 3)
    local = np.stack([rotate_z(p - c, -yaw) for p, c, yaw
                      in zip(points, tiny.rack_positions, tiny.rack_yaws)])
    assert np.abs(local - local[0]).max() < RIGID_TOLERANCE
    assert np.ptp(points[:, 0], axis=0).min() > 0.05  # the poses really spread the targets


def test_collection_is_reproducible_from_the_seed(env, tiny):
    again = collect(env, PosePretrainingConfig(n_poses=3, image_size=SIZE), 0)
    np.testing.assert_array_equal(again.targets, tiny.targets[:3])
    np.testing.assert_array_equal(again.images, tiny.images[:3])


def test_randomised_looks_vary_the_frames_of_the_same_poses(env, tiny):
    """appearance_randomisation changes each frame's colours and lights, never the poses: the
    same seed draws the same rack poses and target points, in frames that differ from the
    plain ones and from each other."""
    randomised = PosePretrainingConfig(n_poses=3, image_size=SIZE,
                                       appearance_randomisation=AppearanceRandomisation(
                                           colour_jitter=0.3, light_scale=(0.5, 1.5)))
    looks = collect(env, randomised, 0)
    np.testing.assert_array_equal(looks.targets, tiny.targets[:3])
    change = np.abs(looks.images.astype(int) - tiny.images[:3]).mean(axis=(1, 2, 3))
    assert np.all(change > 5)
    np.testing.assert_array_equal(collect(env, randomised, 0).images, looks.images)


def test_collection_gives_up_when_the_rack_range_is_out_of_reach():
    task = HangerTaskConfig(rack_nominal_position=(2.0, 0.0, 0.0))
    env = HangerEnv([HangerCondition("reachable", (0.75, 0.0, -0.10))], task,
                    render_observations=False)
    config = PosePretrainingConfig(n_poses=2, image_size=SIZE)
    with pytest.raises(RuntimeError, match="reach"):
        collect(env, config, 0)
    env.close()


def test_collection_reports_progress(env):
    messages = []
    config = PosePretrainingConfig(n_poses=4, image_size=SIZE, progress_every=2)
    collect(env, config, 0, log=messages.append)
    assert [m.split()[1] for m in messages] == ["2/4", "4/4"]
    assert all("ms/pose" in m for m in messages)


# --- training ---------------------------------------------------------------------------------

def test_training_predicts_the_target_points_far_better_than_their_mean(trained):
    _, _, stats = trained
    assert stats.validation_error_cm < 0.6 * stats.baseline_validation_error_cm
    assert stats.train_error_cm < stats.baseline_validation_error_cm
    assert stats.n_validation == 30 and stats.n_train == 120


def test_trained_network_predicts_metres(trained):
    dataset, regressor, stats = trained
    with torch.no_grad():
        predicted = regressor(torch.as_tensor(dataset.images)).double().numpy()
    expected = ((stats.n_train * stats.train_error_cm
                 + stats.n_validation * stats.validation_error_cm)
                / (stats.n_train + stats.n_validation))
    assert point_error_cm(predicted, dataset.targets) == pytest.approx(expected, rel=1e-4)


def test_point_error_is_the_mean_euclidean_distance_in_cm():
    targets = np.zeros((2, 9))
    predicted = np.zeros((2, 9))
    predicted[0, :3] = [0.03, 0.04, 0.0]  # one point 5 cm off, five points exact
    assert point_error_cm(predicted, targets) == pytest.approx(5.0 / 6.0)


def test_vision_layers_must_match_the_images(trained):
    dataset, _, _ = trained
    config = PosePretrainingConfig(sgd_steps=1)
    with pytest.raises(ValueError, match="images"):
        train_pose_regressor(dataset, config, VisionConfig(image_size=(64, 64)), log=quiet)


# --- policy initialisation --------------------------------------------------------------------

def test_policy_vision_gets_the_regressors_feature_points(trained):
    dataset, regressor, _ = trained
    policy = VisuomotorCNN(VisuomotorCNNConfig(**SMALL_VISION.vision_fields()))
    images = torch.as_tensor(dataset.images[:8])
    init_policy_vision(policy, regressor)
    with torch.no_grad():
        theirs = regressor.vision(images).reshape(8, -1, 2)
        ours = policy.feature_points(images)
    torch.testing.assert_close(ours, theirs, rtol=0.0, atol=0.0)


def test_policy_with_other_vision_layers_is_refused(trained):
    _, regressor, _ = trained
    policy = VisuomotorCNN(VisuomotorCNNConfig(image_size=(SIZE, SIZE)))
    with pytest.raises(ValueError, match="vision layers differ"):
        init_policy_vision(policy, regressor)


# --- files ------------------------------------------------------------------------------------

def test_dataset_round_trips_through_npz(tiny, tmp_path):
    loaded = load_pose_dataset(save_pose_dataset(tiny, tmp_path / "poses.npz"))
    for field in dataclasses.fields(tiny):
        np.testing.assert_array_equal(getattr(loaded, field.name), getattr(tiny, field.name))


def test_regressor_round_trips_with_weights_only_loading(trained, tmp_path):
    dataset, regressor, stats = trained
    path = save_pose_regressor(regressor, stats, tmp_path / "regressor.pt")
    loaded, loaded_stats = load_pose_regressor(path)
    images = torch.as_tensor(dataset.images[:4])
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), regressor(images), rtol=0.0, atol=0.0)
    assert loaded.config == regressor.config
    assert loaded_stats == stats


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npz"):
        load_pose_dataset(tmp_path / "nothing.npz")
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_pose_regressor(tmp_path / "nothing.pt")


def test_command_line_collects_trains_and_then_reuses_its_folder(tmp_path, capsys):
    args = ["--out", str(tmp_path / "run"), "--config", str(CONFIG_DIR / "pose_pretraining.yaml"),
            "--conditions", str(CONDITIONS), "--n-poses", "5", "--image-size", str(SIZE),
            "--sgd-steps", "5"]
    assert main(args) == 0
    assert (tmp_path / "run" / "pose_dataset.npz").is_file()
    assert (tmp_path / "run" / "pose_regressor.pt").is_file()
    assert "pose error: train" in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "reusing" in out and "collected" not in out and "step" not in out


# --- configuration ----------------------------------------------------------------------------

def test_command_line_evaluates_a_saved_regressor_per_condition(env, tmp_path, capsys):
    """A regressor that always predicts the nominal rack's target points is off by exactly how
    far each new pose moved them: the evaluation's errors, overall and per condition, are the
    mean distances of the poses' true points (collected again from the same seed stream) to
    those fixed points."""
    env.reset(0)
    fixed = env.target_points()
    regressor = PoseRegressionCNN(PoseRegressionConfig(image_size=(SIZE, SIZE),
                                                       conv_filters=(4, 4, 4)))
    with torch.no_grad():
        regressor.pose.weight.zero_()
        regressor.pose.bias.copy_(torch.as_tensor(np.ravel(fixed)))
    stats = PoseTrainingStats(0.0, 0.0, 0.0, 1, 1, 0, 0.0, "cpu", (0.0,) * 9, (1.0,) * 9)
    path = save_pose_regressor(regressor, stats, tmp_path / "fixed.pt")
    out = tmp_path / "eval"
    assert main(["--evaluate", str(path), "--conditions", str(CONDITIONS), "--n-poses", "12",
                 "--out", str(out)]) == 0
    report = json.loads((out / "pose_evaluation.json").read_text())
    poses = collect_pose_data(EnvPoseSource(env, SIZE), env.conditions, env.task,
                              PosePretrainingConfig(n_poses=12, image_size=SIZE),
                              np.random.default_rng([0, 1]), quiet)
    errors = np.array([100 * np.linalg.norm(t.reshape(3, 3) - fixed, axis=1).mean()
                       for t in poses.targets])
    assert report["poses"] == 12
    assert report["error_cm"] == pytest.approx(errors.mean(), rel=1e-4)
    for c in np.unique(poses.conditions):
        assert report["by_condition"][env.conditions[c].name] == pytest.approx(
            errors[poses.conditions == c].mean(), rel=1e-4)
    assert f"pose error on 12 poses of 'train': {report['error_cm']:.2f} cm" in \
        capsys.readouterr().out


def test_command_line_needs_out_or_evaluate(capsys):
    with pytest.raises(SystemExit):
        main([])
    assert "--out is required" in capsys.readouterr().err


@pytest.mark.parametrize("key, value", [
    ("n_poses", 0), ("image_size", 0), ("sgd_steps", 0), ("batch_size", 0), ("lr", 0.0),
    ("weight_decay", -1.0), ("validation_fraction", 1.0), ("validation_fraction", 0.0),
    ("lr_schedule", "step"),
])
def test_bad_config_values_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"pose_pretraining.{key}"):
        PosePretrainingConfig(**{key: value})


def test_config_file_holds_the_defaults():
    assert load_config(CONFIG_DIR / "pose_pretraining.yaml") == PosePretrainingConfig()


def test_config_file_keys_are_checked(tmp_path):
    path = tmp_path / "pose.yaml"
    path.write_text("pose_pretraining:\n  n_poses: 10\n  n_pose: 3\n")
    with pytest.raises(ConfigError, match="n_pose"):
        load_config(path)
    path.write_text("pose_pretraining:\n  n_poses: 10\n")
    assert load_config(path, seed=3) == PosePretrainingConfig(n_poses=10, seed=3)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_learning_rate_follows_the_schedule(tiny, schedule):
    """After step k of K the rate is lr, or lr (1 + cos(pi k / K)) / 2 with the cosine."""
    config = PosePretrainingConfig(sgd_steps=40, lr=2e-3, lr_schedule=schedule,
                                   progress_every=10, validation_fraction=0.25)
    _, stats = train_pose_regressor(tiny, config, SMALL_VISION, log=quiet)
    steps = np.array([row["step"] for row in stats.history])
    expected = (np.full(len(steps), config.lr) if schedule == "constant" else
                config.lr * (1.0 + np.cos(np.pi * steps / config.sgd_steps)) / 2.0)
    np.testing.assert_allclose([row["lr"] for row in stats.history], expected, atol=1e-12)
    assert stats.history[-1]["lr"] == pytest.approx(config.lr if schedule == "constant" else 0.0)


def test_too_few_poses_to_hold_some_out_is_an_error(tiny):
    config = PosePretrainingConfig(validation_fraction=0.01, sgd_steps=1)
    with pytest.raises(ValueError, match="validation_fraction"):
        train_pose_regressor(tiny, config, SMALL_VISION, log=quiet)


class Crash(Exception):
    """Stands for a kill: raised from the progress log after a given step."""


def crash_after(step):
    def log(line):
        if line.startswith(f"step {step}/"):
            raise Crash(line)
    return log


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_training_killed_midway_resumes_to_the_uninterrupted_result(tiny, tmp_path, schedule):
    """Checkpoints every 10 steps; a crash at step 25 loses steps 21-25 only: the resumed run
    starts after step 20 and ends with the uninterrupted run's weights, history and errors."""
    config = PosePretrainingConfig(sgd_steps=40, lr=2e-3, lr_schedule=schedule, progress_every=5,
                                   checkpoint_every=10, validation_fraction=0.25)
    whole, whole_stats = train_pose_regressor(tiny, config, SMALL_VISION, log=quiet)
    checkpoint = tmp_path / "training.pt"
    with pytest.raises(Crash):
        train_pose_regressor(tiny, config, SMALL_VISION, log=crash_after(25),
                             checkpoint=checkpoint)
    assert torch.load(checkpoint, weights_only=True)["step"] == 20
    lines = []
    resumed, stats = train_pose_regressor(tiny, config, SMALL_VISION, log=lines.append,
                                          checkpoint=checkpoint)
    assert lines[0].startswith("resuming the regressor's training after step 20")
    assert lines[1].startswith("step 25/40")
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name
    assert stats.history == whole_stats.history
    assert stats.validation_error_cm == whole_stats.validation_error_cm


def test_a_checkpoint_of_other_settings_is_not_resumed(tiny, tmp_path):
    config = PosePretrainingConfig(sgd_steps=20, progress_every=5, checkpoint_every=10,
                                   validation_fraction=0.25)
    checkpoint = tmp_path / "training.pt"
    with pytest.raises(Crash):
        train_pose_regressor(tiny, config, SMALL_VISION, log=crash_after(15),
                             checkpoint=checkpoint)
    other = dataclasses.replace(config, lr=3e-3)
    lines = []
    resumed, _ = train_pose_regressor(tiny, other, SMALL_VISION, log=lines.append,
                                      checkpoint=checkpoint)
    assert lines[0].startswith("not resuming from") and lines[1].startswith("step 5/20")
    fresh, _ = train_pose_regressor(tiny, other, SMALL_VISION, log=quiet)
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_train_and_save_leaves_the_regressor_and_no_checkpoint(tiny, tmp_path):
    config = PosePretrainingConfig(sgd_steps=20, progress_every=5, checkpoint_every=10,
                                   validation_fraction=0.25)
    with pytest.raises(Crash):
        pp.train_and_save(tiny, config, tmp_path, SMALL_VISION, log=crash_after(15))
    assert (tmp_path / pp.CHECKPOINT_FILE).is_file()
    assert not (tmp_path / pp.REGRESSOR_FILE).exists()
    regressor, stats = pp.train_and_save(tiny, config, tmp_path, SMALL_VISION, log=quiet)
    assert not (tmp_path / pp.CHECKPOINT_FILE).exists()
    _, saved_stats = load_pose_regressor(tmp_path / pp.REGRESSOR_FILE)
    assert saved_stats == stats
