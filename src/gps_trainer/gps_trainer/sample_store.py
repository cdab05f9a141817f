"""Every sample a run receives, on disk before the learner uses it.

    <run>/samples/itr_NNN_cond_CC.npz   X, U, obs, noise, images (when recorded), success,
                                        final_distance, noise_seed

A sample is written to a temporary file and renamed, so a run killed at any moment holds either
the whole sample or none of it. On resume the iteration that was cut short redraws the same noise
seeds (the random generator comes back from the last checkpoint) and takes the samples already
stored instead of running those trials again: no sample is lost or taken twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from gps_trainer.rollout import Rollout
from gps_trainer.sample import Sample


class SampleStore:
    """Reads and writes the samples of one run folder."""

    def __init__(self, run_path: str | Path) -> None:
        self.path = Path(run_path) / "samples"

    def file(self, iteration: int, condition: int) -> Path:
        return self.path / f"itr_{iteration:03d}_cond_{condition:02d}.npz"

    def save(self, iteration: int, rollout: Rollout, noise_seed: int) -> Path:
        sample = rollout.sample
        path = self.file(iteration, sample.condition)
        self.path.mkdir(parents=True, exist_ok=True)
        arrays = {"X": sample.X, "U": sample.U, "noise": sample.noise,
                  "condition": sample.condition, "success": rollout.success,
                  "final_distance": rollout.final_distance, "noise_seed": np.uint64(noise_seed)}
        if sample.obs is not None:
            arrays["obs"] = sample.obs
        if rollout.images is not None:
            arrays["images"] = rollout.images
        partial = path.with_name(path.name + ".partial")
        with partial.open("wb") as f:
            np.savez_compressed(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(partial, path)
        return path

    def load(self, iteration: int, condition: int, noise_seed: int) -> Rollout | None:
        """The stored sample of (iteration, condition) drawn with `noise_seed`, or None."""
        path = self.file(iteration, condition)
        if not path.is_file():
            return None
        with np.load(path) as data:
            if int(data["noise_seed"]) != noise_seed:
                raise ValueError(f"{path}: drawn with noise seed {int(data['noise_seed'])}, the "
                                 f"resumed run draws {noise_seed}; the run folder and its "
                                 f"checkpoints disagree")
            sample = Sample(data["X"], data["U"], int(data["condition"]),
                            obs=data["obs"] if "obs" in data else None, noise=data["noise"])
            images = data["images"] if "images" in data else None
            return Rollout(sample, images, bool(data["success"]), float(data["final_distance"]))

    def count(self) -> int:
        return len(list(self.path.glob("itr_*_cond_*.npz"))) if self.path.is_dir() else 0
