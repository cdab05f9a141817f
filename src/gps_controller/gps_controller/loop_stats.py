"""Timing of the control loop: period, jitter, policy inference time and deadline misses.

A deadline is missed when a control step's command goes out later than one period after the
step was due, or when the gap between two steps exceeds 1.5 periods. Statistics are over a
window (the diagnostics period, or a whole benchmark run) and reset on `report(reset=True)`.
"""

from __future__ import annotations

import numpy as np


class LoopStats:
    """Collects per-step timings (seconds) and reports medians, 99th percentiles and maxima."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._periods: list[float] = []
        self._inference: list[float] = []
        self._misses = 0
        self._last_tick: float | None = None
        self.total_steps = 0
        self.total_misses = 0

    def tick(self, now: float) -> None:
        """A control step starts at monotonic time `now`."""
        if self._last_tick is not None:
            gap = now - self._last_tick
            self._periods.append(gap)
            if gap > 1.5 * self.period:
                self._count_miss()
        self._last_tick = now

    def step_done(self, started: float, inference: float, published: float) -> None:
        """The step that started at `started` spent `inference` s in the policy and published
        its command at `published`."""
        self._inference.append(inference)
        self.total_steps += 1
        if published - started > self.period:
            self._count_miss()

    def restart(self) -> None:
        """Forget the last tick (the loop was idle), so the next gap is not counted."""
        self._last_tick = None

    def report(self, reset: bool = True) -> dict[str, float]:
        """period/jitter/inference p50, p99, max in milliseconds and the deadline misses."""
        periods = np.asarray(self._periods)
        inference = np.asarray(self._inference)
        jitter = np.abs(periods - self.period)
        out: dict[str, float] = {"steps": len(inference), "deadline_misses": self._misses}
        for name, values in (("period", periods), ("jitter", jitter), ("inference", inference)):
            for label, fn in (("p50", np.median), ("p99", lambda v: np.percentile(v, 99)),
                              ("max", np.max)):
                out[f"{name}_{label}_ms"] = float(1e3 * fn(values)) if values.size else 0.0
        if reset:
            self._periods, self._inference, self._misses = [], [], 0
        return out

    def _count_miss(self) -> None:
        self._misses += 1
        self.total_misses += 1
