"""The run folder: everything one training run writes, and what it resumes from.

    <run>/config.yaml          the resolved configuration (every default spelled out)
    <run>/metrics.jsonl        one JSON object per iteration and condition, appended
    <run>/checkpoints/itr_NNN.pkl   the learner's state after iteration NNN
    <run>/*.png                plots, redrawn after every iteration

Checkpoints are written to a temporary file and renamed, so a run killed at any moment leaves
the previous checkpoint intact; metrics past the last checkpoint are dropped on resume, so the
metrics file and the state always agree.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import yaml

from gps_controller.typed_config import read_yaml_mapping

CHECKPOINT = re.compile(r"itr_(\d+)\.pkl$")


class RunFolder:
    """Reads and writes one run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.metrics_path = self.path / "metrics.jsonl"
        self.config_path = self.path / "config.yaml"

    def create(self, config: dict) -> None:
        """Start a new run: the folder must not hold a run already."""
        if self.config_path.exists():
            raise FileExistsError(f"{self.path} already holds a run; resume it or pick another "
                                  f"folder")
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.config_path, yaml.safe_dump(config, sort_keys=False).encode())

    def read_config(self) -> dict:
        if not self.config_path.is_file():
            raise FileNotFoundError(f"{self.path} holds no run (no config.yaml)")
        return read_yaml_mapping(self.config_path, "run config")

    def append_metrics(self, records: list[dict]) -> None:
        with self.metrics_path.open("a") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def read_metrics(self) -> list[dict]:
        """The metric records. Each is written as one line ending in a newline, so a last line
        without one is a record cut off by a crash (or still being written): it is left out, as
        the resume drops it anyway (it is past the last checkpoint). A line that does not parse
        elsewhere is damage: ValueError naming the file and line."""
        if not self.metrics_path.is_file():
            return []
        *complete, _unfinished = self.metrics_path.read_text().split("\n")
        records = []
        for number, line in enumerate(complete, 1):
            if not line:
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"{self.metrics_path}, line {number}: not a metric record "
                                 f"({exc})") from None
        return records

    def save_checkpoint(self, iteration: int, state: Any, keep: int | None = None) -> Path:
        """Write the state after `iteration`; with `keep`, delete all but the newest `keep`."""
        path = self.checkpoints / f"itr_{iteration:03d}.pkl"
        _atomic_write(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        if keep is not None:
            for _, old in self._checkpoint_files()[:-keep]:
                old.unlink()
        return path

    def latest_checkpoint(self) -> tuple[int, Any] | None:
        """(iteration, state) of the newest checkpoint, or None when there is none."""
        found = self._checkpoint_files()
        if not found:
            return None
        iteration, path = found[-1]
        with path.open("rb") as f:
            return iteration, pickle.load(f)

    def _checkpoint_files(self) -> list[tuple[int, Path]]:
        return sorted((int(m.group(1)), p) for p in self.checkpoints.glob("itr_*.pkl")
                      if (m := CHECKPOINT.search(p.name)))

    def truncate_metrics(self, last_iteration: int) -> None:
        """Drop metric records of iterations after `last_iteration` (written before a crash)."""
        kept = [r for r in self.read_metrics() if r["iteration"] <= last_iteration]
        _atomic_write(self.metrics_path, "".join(json.dumps(r) + "\n" for r in kept).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
