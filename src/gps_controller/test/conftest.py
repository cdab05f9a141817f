"""Shared helpers for the controller tests: nodes started as separate processes (each in its own
process group, always stopped, killed when they do not stop) with the suite's ROS_DOMAIN_ID."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from gps_controller.kinematics import ArmKinematics  # noqa: E402
from gps_controller.layout import RIGHT_ARM_JOINTS  # noqa: E402
from gps_sim import HangerCondition, HangerEnv  # noqa: E402
from gps_sim.env import TOOL_BODY  # noqa: E402
from gps_sim.scene import MODEL_PATH, ROBOT_BODY  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parents[3] / "config"
STOP_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def kinematics():
    """The controller's kinematics of the right arm, from the simulator's model."""
    return ArmKinematics(MODEL_PATH, RIGHT_ARM_JOINTS, ROBOT_BODY, TOOL_BODY)


@pytest.fixture(scope="module")
def env():
    """The simulator at the nominal rack pose with each grasp (no camera)."""
    env = HangerEnv([HangerCondition("nominal_g0", (0.75, 0.0, -0.10), grasp=0),
                     HangerCondition("nominal_g1", (0.75, 0.0, -0.10), grasp=1)],
                    render_observations=False)
    yield env
    env.close()


class NodeProcess:
    """`python -m <module> --ros-args -p name:=value ...` in a process group of its own, output
    to a log file; `stop` ends it (SIGTERM, then SIGKILL to the group), `kill` at once."""

    def __init__(self, module: str, params: dict, log_path: Path) -> None:
        self.module = module
        self.log_path = log_path
        args = [sys.executable, "-m", module, "--ros-args"]
        for name, value in params.items():
            args += ["-p", f"{name}:={value}"]
        self._log = log_path.open("w")
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=os.environ.copy(), start_new_session=True)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL to the whole process group, now (the node gets no chance to say goodbye)."""
        self._signal_group(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.running:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
        self._signal_group(signal.SIGKILL)   # whatever is left of the group
        if self.proc.poll() is None:
            self.proc.wait()
        self._log.close()

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass


@pytest.fixture(scope="class")
def node_processes(tmp_path_factory):
    """start(module, name, **params) -> NodeProcess; every process started is stopped when the
    class (or module, for tests outside classes) ends, whatever happened."""
    started: list[NodeProcess] = []
    folder = tmp_path_factory.mktemp("nodes")

    def start(module: str, name: str, **params) -> NodeProcess:
        process = NodeProcess(module, params, folder / f"{name}.log")
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()
