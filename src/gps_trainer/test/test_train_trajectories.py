"""The trajectory-optimisation run on the real MuJoCo hanger scene: it writes its run folder, a
resumed run continues exactly where an uninterrupted one would be, and bad input is refused."""

import re

import numpy as np
import pytest
import yaml

from gps_trainer.run_folder import RunFolder
from gps_trainer.train_trajectories import (TrajectoryRunConfig, first_full_success,
                                            load_config, main, train)


@pytest.fixture
def small_task(tmp_path):
    """Two training conditions, 20-step episodes."""
    conditions = tmp_path / "conditions.yaml"
    conditions.write_text(yaml.safe_dump({
        "task": {"episode_steps": 20},
        "train": [{"name": "a", "rack_position": [0.69, -0.08, -0.15], "grasp": 0},
                  {"name": "b", "rack_position": [0.81, 0.08, -0.05], "grasp": 1}],
    }))
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump({"conditions_file": "conditions.yaml", "iterations": 3,
                                      "seed": 4}))
    return config


def test_run_writes_config_metrics_checkpoints_and_plot(small_task, tmp_path):
    run = RunFolder(tmp_path / "run")
    records = train(load_config(small_task), run, log=lambda *_: None)
    assert len(records) == 3 * 2
    assert {r["iteration"] for r in records} == {0, 1, 2}
    assert all(np.isfinite(r["sample_cost"]) and r["kl"] >= 0 for r in records)
    assert run.read_config()["seed"] == 4
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["itr_000.pkl", "itr_001.pkl",
                                                                "itr_002.pkl"]
    assert (run.path / "cost.png").stat().st_size > 10_000


def test_resumed_run_equals_uninterrupted_run(small_task, tmp_path):
    straight = RunFolder(tmp_path / "straight")
    train(load_config(small_task), straight, log=lambda *_: None)

    resumed = RunFolder(tmp_path / "resumed")
    train(load_config(small_task, iterations=2), resumed, log=lambda *_: None)
    # a crash after metrics were written but before the checkpoint: a stray record of itr 2,
    # and the next one cut off mid-line
    resumed.append_metrics([{"iteration": 2, "condition": 0, "stray": True}])
    with resumed.metrics_path.open("a") as f:
        f.write('{"iteration": 2, "condition": 1, "sam')
    assert main(["--run-dir", str(resumed.path), "--resume", "--iterations", "3"]) == 0

    # The samples are identical; the optimiser's numbers may differ in the last bits because
    # BLAS kernels depend on memory alignment, so floats are compared to 1e-9.
    got, expected = resumed.read_metrics(), straight.read_metrics()
    assert [(r["iteration"], r["condition"]) for r in got] == [
        (r["iteration"], r["condition"]) for r in expected]
    for a, b in zip(got, expected):
        assert a.keys() == b.keys()
        assert a["sample_cost"] == b["sample_cost"] and a["success"] == b["success"]
        for key in ("kl", "eta", "epsilon", "predicted_cost", "step_mult", "final_distance"):
            assert a[key] == pytest.approx(b[key], rel=1e-9), key


def test_new_run_refuses_a_folder_that_holds_one(small_task, tmp_path):
    run = RunFolder(tmp_path / "run")
    train(load_config(small_task, iterations=1), run, log=lambda *_: None)
    with pytest.raises(FileExistsError, match="already holds a run"):
        train(load_config(small_task, iterations=1), run, log=lambda *_: None)


def usage_error(argv, capsys) -> str:
    """What the command prints when it stops on bad input (argparse's way: exit status 2)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


def test_resume_without_a_run_is_a_clear_error(tmp_path, capsys):
    err = usage_error(["--run-dir", str(tmp_path / "nothing"), "--resume"], capsys)
    assert "error: " in err and "nothing holds no run (no config.yaml)" in err


@pytest.mark.parametrize("change,message", [
    (lambda text: text + "seed: [4\n", "run.yaml: malformed YAML"),
    (lambda text: text.replace("conditions.yaml", "absent.yaml"),
     "conditions file not found: .*absent.yaml"),
    (lambda text: text.replace("iterations: 3", "iterations: three"),
     "iterations: expected an integer"),
])
def test_bad_config_files_are_usage_errors_before_anything_is_written(small_task, tmp_path,
                                                                       capsys, change, message):
    small_task.write_text(change(small_task.read_text()))
    run_dir = tmp_path / "run"
    err = usage_error(["--config", str(small_task), "--run-dir", str(run_dir)], capsys)
    assert re.search(message, err), err
    assert not (run_dir / "config.yaml").exists()


def test_bad_config_values_are_refused(tmp_path):
    with pytest.raises(ValueError, match="iterations"):
        TrajectoryRunConfig(iterations=0)


def test_first_full_success():
    records = [{"iteration": i, "condition": c, "success": i >= 2 or c == 0}
               for i in range(4) for c in range(2)]
    assert first_full_success(records) == 2
    assert first_full_success(records[:4]) is None
