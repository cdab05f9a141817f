"""LoopStats (gps_controller.loop_stats) on hand-made tick sequences: the period, jitter and
inference statistics and the deadline misses come out as computed by hand."""

import numpy as np
import pytest

from gps_controller.loop_stats import LoopStats

PERIOD = 0.05


def test_a_steady_loop_has_the_period_no_jitter_and_no_misses():
    stats = LoopStats(PERIOD)
    for k in range(10):
        stats.tick(100.0 + k * PERIOD)
        stats.step_done(100.0 + k * PERIOD, 0.004, 100.0 + k * PERIOD + 0.005)
    report = stats.report()
    assert report["steps"] == 10
    assert report["deadline_misses"] == 0
    assert report["period_p50_ms"] == pytest.approx(50.0)
    assert report["period_max_ms"] == pytest.approx(50.0)
    assert report["jitter_max_ms"] == pytest.approx(0.0, abs=1e-9)
    assert report["inference_p50_ms"] == pytest.approx(4.0)


def test_a_late_tick_is_a_miss_with_its_jitter():
    stats = LoopStats(PERIOD)
    for t in (0.0, 0.05, 0.10, 0.20, 0.25):   # the gap 0.10 -> 0.20 is 2 periods
        stats.tick(t)
    report = stats.report()
    # periods 50, 50, 100, 50 ms; jitter 0, 0, 50, 0 ms
    assert report["deadline_misses"] == 1
    assert report["period_p50_ms"] == pytest.approx(50.0)
    assert report["period_max_ms"] == pytest.approx(100.0)
    # numpy's linear percentile of [50, 50, 50, 100] at 99 %: 50 + 0.97 * 50
    assert report["period_p99_ms"] == pytest.approx(98.5)
    assert report["jitter_p50_ms"] == pytest.approx(0.0, abs=1e-9)
    assert report["jitter_max_ms"] == pytest.approx(50.0)
    assert report["steps"] == 0  # ticks alone are not finished steps


def test_a_gap_of_up_to_one_and_a_half_periods_is_no_miss():
    stats = LoopStats(PERIOD)
    for t in (0.0, 0.07, 0.14, 0.2149):
        stats.tick(t)
    report = stats.report()
    assert report["deadline_misses"] == 0
    assert report["jitter_max_ms"] == pytest.approx(24.9)
    stats.tick(0.2149 + 0.0751)
    assert stats.report()["deadline_misses"] == 1


def test_a_command_later_than_one_period_after_its_step_started_is_a_miss():
    stats = LoopStats(PERIOD)
    stats.step_done(1.0, 0.01, 1.02)
    stats.step_done(2.0, 0.06, 2.06)
    stats.step_done(3.0, 0.03, 3.0499)
    report = stats.report()
    assert report["steps"] == 3
    assert report["deadline_misses"] == 1
    assert report["inference_max_ms"] == pytest.approx(60.0)
    assert report["inference_p50_ms"] == pytest.approx(30.0)


def test_restart_forgets_the_idle_gap():
    stats = LoopStats(PERIOD)
    stats.tick(0.0)
    stats.tick(0.05)
    stats.restart()
    stats.tick(10.0)    # after an idle loop: no 10 s period, no miss
    stats.tick(10.05)
    report = stats.report()
    assert report["deadline_misses"] == 0
    assert report["period_max_ms"] == pytest.approx(50.0)


def test_report_resets_the_window_but_keeps_the_totals():
    stats = LoopStats(PERIOD)
    stats.tick(0.0)
    stats.tick(0.2)
    stats.step_done(0.2, 0.001, 0.3)
    first = stats.report()
    assert first["deadline_misses"] == 2 and first["steps"] == 1
    empty = stats.report()
    assert empty["deadline_misses"] == 0 and empty["steps"] == 0
    assert all(empty[k] == 0.0 for k in empty if k.endswith("_ms"))
    assert (stats.total_misses, stats.total_steps) == (2, 1)
    stats.tick(0.25)   # the last tick survives the report: this gap is 50 ms
    assert stats.report(reset=False)["period_max_ms"] == pytest.approx(50.0)
    assert stats.report()["period_max_ms"] == pytest.approx(50.0)


def test_random_periods_match_numpy_statistics():
    rng = np.random.default_rng(3)
    gaps = rng.uniform(0.03, 0.09, 200)
    ticks = np.concatenate([[0.0], np.cumsum(gaps)])
    stats = LoopStats(PERIOD)
    for t in ticks:
        stats.tick(float(t))
    report = stats.report()
    assert report["deadline_misses"] == int(np.sum(gaps > 1.5 * PERIOD))
    assert report["period_p50_ms"] == pytest.approx(1e3 * np.median(gaps))
    assert report["jitter_p99_ms"] == pytest.approx(
        1e3 * np.percentile(np.abs(gaps - PERIOD), 99))
