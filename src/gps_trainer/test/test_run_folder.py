"""The run folder keeps config, metrics and checkpoints consistent across crashes."""

import pytest

from gps_trainer.run_folder import RunFolder


def test_checkpoints_round_trip_and_latest_wins(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create({"seed": 1})
    assert run.latest_checkpoint() is None
    run.save_checkpoint(0, {"a": 1})
    run.save_checkpoint(10, {"a": 3})
    run.save_checkpoint(2, {"a": 2})
    assert run.latest_checkpoint() == (10, {"a": 3})
    assert not list(run.checkpoints.glob("*.tmp"))


def test_keep_prunes_old_checkpoints(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create({})
    for i in range(4):
        run.save_checkpoint(i, {"i": i}, keep=2)
    assert sorted(p.name for p in run.checkpoints.iterdir()) == ["itr_002.pkl", "itr_003.pkl"]


def test_truncate_drops_records_past_the_checkpoint(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create({})
    run.append_metrics([{"iteration": i} for i in range(4)])
    run.truncate_metrics(1)
    assert run.read_metrics() == [{"iteration": 0}, {"iteration": 1}]


def test_a_record_cut_off_by_a_crash_is_left_out_and_dropped_on_resume(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create({})
    run.append_metrics([{"iteration": i, "cost": -1.5 * i} for i in range(3)])
    with run.metrics_path.open("a") as f:
        f.write('{"iteration": 3, "co')
    assert run.read_metrics() == [{"iteration": i, "cost": -1.5 * i} for i in range(3)]
    run.truncate_metrics(1)
    assert run.metrics_path.read_text() == "".join(
        f'{{"iteration": {i}, "cost": {-1.5 * i}}}\n' for i in range(2))


def test_a_damaged_metric_line_is_an_error_naming_it(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create({})
    run.append_metrics([{"iteration": 0}])
    with run.metrics_path.open("a") as f:
        f.write('{"iteration": 1, "co\n{"iteration": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl, line 2: not a metric record"):
        run.read_metrics()


def test_create_refuses_an_existing_run(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.create({})
    with pytest.raises(FileExistsError):
        run.create({})
