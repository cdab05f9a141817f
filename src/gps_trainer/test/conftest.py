"""Shared fixtures of the trainer tests: a tiny run preset on the real scene (2 training
conditions and 1 test condition, short episodes, tiny networks), for runs that must finish in
seconds; Debian's headless chromium driven by Playwright; free local ports."""

import socket
import tempfile
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    """A headless chromium context with a fresh profile (never a downloaded browser)."""
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} missing: scripts/setup.sh installs it"
    with tempfile.TemporaryDirectory() as profile:
        playwright = sync_playwright().start()
        try:
            context = playwright.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
                viewport={"width": 1280, "height": 1000})
            try:
                yield context
            finally:
                context.close()
        finally:
            playwright.stop()


@pytest.fixture(scope="session")
def free_port():
    """A function returning a free TCP port on 127.0.0.1."""
    def find() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]
    return find


@pytest.fixture
def tiny_preset(tmp_path):
    """write(image_size, T, trajectory_pretraining_iterations, end_to_end_iterations) writes
    conditions.yaml and run.yaml into tmp_path and returns (conditions file, preset file)."""
    def write(image_size=32, T=12, pretraining=2, end_to_end=1):
        conditions = tmp_path / "conditions.yaml"
        conditions.write_text(yaml.safe_dump({
            "task": {"episode_steps": T},
            "train": [{"name": "a", "rack_position": [0.69, -0.08, -0.15], "grasp": 0},
                      {"name": "b", "rack_position": [0.81, 0.08, -0.05], "grasp": 1}],
            "spatial_test": [{"name": "c", "rack_position": [0.75, 0.0, -0.10], "grasp": 0}],
        }))
        preset = tmp_path / "run.yaml"
        preset.write_text(yaml.safe_dump({
            "conditions_file": "conditions.yaml", "image_size": image_size,
            "trajectory_pretraining_iterations": pretraining,
            "end_to_end_iterations": end_to_end, "evaluation_trials": 1,
            "pose_pretraining": {"n_poses": 6, "sgd_steps": 5, "validation_fraction": 0.34},
            "full_state_network": {"fc_units": [8]},
            "full_state_badmm": {"inner_iterations": 1, "initial_nu": 0.1},
            "full_state_policy_opt": {"iterations": 5, "fc_only_calls": 0},
            "network": {"image_size": [image_size, image_size], "conv_filters": [4, 4, 4],
                        "fc_units": [8]},
            "badmm": {"inner_iterations": 1, "initial_nu": 0.1},
            "policy_opt": {"iterations": 3, "fc_only_iterations": 3},
        }))
        return conditions, preset
    return write
