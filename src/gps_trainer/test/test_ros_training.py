"""The whole training loop over the real ROS graph: sim, controller and trainer as separate
processes talking over Fast DDS.

- the project's bringup command and the launch file start the same executables with the same
  parameter files (the launch file's Node calls, read from its syntax tree, against what the
  bringup evaluates and would run);
- a short run through the bringup (2 conditions, 2 iterations, 64x64 images, a tiny CNN, the
  rack jittered per sample) ends with its evaluation, and the web GUI's dashboard (headless
  chromium) shows both iterations; samples flow controller -> trainer and policy updates back;
  every stored sample's joint states equal, step by step, a run of consecutive /joint_states
  the sim published (no dropped or duplicated step), its frames equal the published images,
  and its first state equals the direct simulator's with the same rack offset; the pose
  pre-training frames came over the graph too: each is an image the sim published and equals,
  with its target points, the direct simulator's frame at the same rack pose;
- SIGTERM to the bringup stops every node it started (they run in their own sessions);
- a trainer killed (SIGKILL) mid-run and started again on its run folder resumes, keeps every
  sample it had stored and runs none of their trials again; only the trial in flight at the kill,
  whose sample the trainer never received, may run a second time;
- the bringup with evaluate:= trains nothing: the CNN policy file alone, on the camera images the
  sim publishes, ends each trial where the direct evaluation tool's does, and with random_looks:=
  elsewhere; a missing policy file, or an evaluation parameter without evaluate_policy, stops
  the trainer node at start-up with one line.
"""

import ast
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import rclpy
import torch
import yaml
from playwright.sync_api import expect
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import Image, JointState

from gps_controller.layout import RIGHT_ARM_JOINTS
from gps_controller.messages import image_from_msg
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import VisuomotorCNN, VisuomotorCNNConfig
from gps_msgs.msg import SampleTrajectory, TrainingProgress
from gps_sim import HangerEnv
from gps_trainer import evaluation
from gps_trainer.bringup import command, default_launch_file
from gps_trainer.launch_subset import load_description, resolve
from gps_trainer.pose_pretraining import EnvPoseSource, load_pose_dataset
from gps_trainer.run_folder import RunFolder
from gps_trainer.sample_store import SampleStore

ROOT = Path(__file__).resolve().parents[3]
T = 12


def launch_nodes(path: Path) -> list[dict]:
    """package/executable/name of every Node(...) call in the launch file, from its syntax."""
    found = []
    for call in ast.walk(ast.parse(path.read_text())):
        if isinstance(call, ast.Call) and getattr(call.func, "id", None) == "Node":
            found.append({kw.arg: kw.value.value for kw in call.keywords
                          if kw.arg in ("package", "executable", "name")})
    return found


def test_bringup_starts_what_the_launch_file_describes():
    path = default_launch_file()
    assert path.read_text() == (ROOT / "launch" / "hanger.launch.py").read_text()
    declared = launch_nodes(path)
    assert {n["executable"] for n in declared} == {"sim_node", "controller_node", "gui_node",
                                                    "trainer_node"}
    for robot, gui, expected in (("sim", "true", 4), ("real", "true", 3), ("sim", "false", 3)):
        specs = resolve(load_description(path), {"robot": robot, "gui": gui})
        assert len(specs) == expected
        assert [(s.package, s.executable, s.name) for s in specs] == [
            (n["package"], n["executable"], n["name"]) for n in declared
            if (robot == "sim" or n["executable"] != "sim_node")
            and (gui == "true" or n["executable"] != "gui_node")]
        for spec in specs:
            params_file = Path(spec.params_files[0])
            assert params_file.name == "hanger.yaml"
            assert spec.name in yaml.safe_load(params_file.read_text())
            cmd = command(spec)
            assert Path(cmd[0]).is_file() and os.access(cmd[0], os.X_OK)
            assert ["--params-file", str(params_file)] == cmd[4:6]
    trainer = [s for s in specs if s.executable == "trainer_node"][0]
    assert trainer.shutdown_on_exit and trainer.params["run_dir"] == "runs/hanger_ros"
    assert trainer.params["evaluate_policy"] == ""
    assert "evaluate_policy:=''" in command(trainer)     # rcl refuses "-p evaluate_policy:="


def test_a_malformed_config_stops_the_trainer_node_with_one_message(tmp_path):
    """A YAML error in the config file is a start-up error (exit status 1, a fatal log line
    naming the file and the line), not a traceback; nothing is written to the run folder."""
    config = tmp_path / "preset.yaml"
    config.write_text("seed: 0\nend_to_end_iterations: [2\n")
    run_dir = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "gps_trainer.trainer_node", "--ros-args",
                           "-p", f"run_dir:={run_dir}", "-p", f"config_file:={config}"],
                          capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert re.search(r"(?s)cannot start: .*preset.yaml: malformed YAML: .*line 3", output), output
    assert not run_dir.exists()


@pytest.mark.parametrize("params, message", [
    (["evaluate_policy:={tmp}/no_policy.pt"], r"no_policy\.pt"),
    (["evaluation_set:=train"], "evaluation_set applies to evaluate_policy only"),
    (["evaluation_random_looks:={tmp}/looks.yaml"],
     "evaluation_random_looks applies to evaluate_policy only"),
])
def test_bad_evaluation_parameters_stop_the_trainer_node_with_one_message(
        tiny_preset, tmp_path, params, message):
    """A missing policy file, or an evaluation parameter without evaluate_policy."""
    _, preset = tiny_preset()
    args = []
    for param in params:
        args += ["-p", param.format(tmp=tmp_path)]
    done = subprocess.run([sys.executable, "-m", "gps_trainer.trainer_node", "--ros-args",
                           "-p", f"run_dir:={tmp_path / 'eval'}", "-p", f"config_file:={preset}",
                           *args], capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "Traceback" not in output
    assert re.search(f"cannot start: .*{message}", output), output
    assert not (tmp_path / "eval").exists()


@pytest.fixture
def tiny_run(tiny_preset):
    """A preset of 2 conditions, T = 12, 1 + 1 iterations, 64x64 images, a tiny CNN, each
    sample's rack jittered by up to 2-3 cm."""
    conditions, preset = tiny_preset(image_size=64, T=T, pretraining=1, end_to_end=1)
    values = yaml.safe_load(preset.read_text())
    values["rack_jitter"] = [0.02, 0.03, 0.02]
    preset.write_text(yaml.safe_dump(values))
    return conditions, preset


class GraphRecorder:
    """A test node recording what the sim, controller and trainer publish."""

    def __init__(self):
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("ros_training_probe", context=self.context)
        self.states, self.images, self.samples, self.progress = [], [], [], []
        self.node.create_subscription(JointState, "/joint_states", self.states.append, 1000)
        self.node.create_subscription(Image, "/head_camera/image_raw", self.images.append, 1000)
        self.node.create_subscription(SampleTrajectory, "/gps_controller/samples",
                                      self.samples.append, 100)
        self.node.create_subscription(TrainingProgress, "/gps_trainer/progress",
                                      self.progress.append, 100)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)

    def arm_states(self) -> np.ndarray:
        """Right-arm [q, qdot] of every published joint state, in arrival order."""
        rows = []
        for msg in list(self.states):
            index = [list(msg.name).index(j) for j in RIGHT_ARM_JOINTS]
            rows.append(np.concatenate([np.asarray(msg.position)[index],
                                        np.asarray(msg.velocity)[index]]))
        return np.array(rows)


@pytest.fixture
def recorder():
    rec = GraphRecorder()
    yield rec
    rec.close()


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", *args], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True,
                            env=os.environ.copy())


def wait_until_serving(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def find_run(arm_states: np.ndarray, X: np.ndarray) -> int:
    """Index where the rows X[:, :14] appear as consecutive published states; -1 if nowhere."""
    for start_index in np.flatnonzero(np.all(arm_states == X[0, :14], axis=1)):
        window = arm_states[start_index:start_index + len(X)]
        if len(window) == len(X) and np.array_equal(window, X[:, :14]):
            return int(start_index)
    return -1


def test_a_short_run_through_the_bringup(tiny_run, tmp_path, recorder, browser, free_port):
    conditions, preset = tiny_run
    run_dir = tmp_path / "run"
    port = free_port()
    gui = start(["gps_trainer.gui.gui_node", "--ros-args", "-p", f"conditions_file:={conditions}",
                 "-p", f"port:={port}"], tmp_path / "gui.log")
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/state", gui, tmp_path / "gui.log")
        proc = start(["gps_trainer.bringup", f"preset:={preset}", f"conditions:={conditions}",
                      f"run_dir:={run_dir}", "gui:=false"], tmp_path / "bringup.log")
        try:
            proc.wait(timeout=400)
        finally:
            stop(proc)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/dashboard")
        expect(page.locator("#summary")).to_have_text(
            "iteration 1 · phase end_to_end · 2 conditions · 2 iterations received",
            timeout=15_000)
        expect(page.locator("#latest tbody tr")).to_have_count(2)
        page.close()
    finally:
        stop(gui)
    log = (tmp_path / "bringup.log").read_text()
    assert proc.returncode == 0, log[-3000:]
    assert "spatial_test: " in log and (run_dir / "evaluation.json").is_file()
    stored = sorted((run_dir / "samples").glob("*.npz"))
    assert len(stored) == 2 * 2
    assert [p.iteration for p in recorder.progress] == [0, 1]
    arm_states = recorder.arm_states()
    frames = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in recorder.images}
    state_stamps = [(m.header.stamp.sec, m.header.stamp.nanosec) for m in recorder.states]
    for path in stored:
        with np.load(path) as sample:
            X, images = sample["X"], sample["images"]
        first = find_run(arm_states, X)
        assert first >= 0, f"{path.name}: its states are not a run of published joint states"
        assert np.all(np.diff([s[0] * 10**9 + s[1] for s in
                               state_stamps[first:first + T]]) == 50_000_000)
        for t in range(T):
            np.testing.assert_array_equal(images[t], image_from_msg(frames[state_stamps[first + t]]))
    lg_samples = [s for s in recorder.samples if any(s.noise)]
    assert len(lg_samples) == len(stored)
    env = HangerEnv.from_yaml(conditions, "train", render_observations=False)
    for record in RunFolder(run_dir).read_metrics():
        offset = np.array(record["rack_offset"])
        assert np.any(offset)
        x0 = env.reset(record["condition"], rack_offset=offset)[0]
        with np.load(SampleStore(run_dir).file(record["iteration"], record["condition"])) as s:
            np.testing.assert_allclose(s["X"][0], x0, rtol=0.0, atol=1e-9)
    env.close()
    poses = load_pose_dataset(run_dir / "pose" / "pose_dataset.npz")
    published = [image_from_msg(m) for m in recorder.images]
    direct = EnvPoseSource(HangerEnv.from_yaml(conditions, "train", render_observations=False),
                           image_size=64)
    assert poses.n_poses == 6 and len(set(poses.rack_yaws.tolist())) == 6
    for k in range(poses.n_poses):
        assert any(np.array_equal(poses.images[k], image) for image in published), k
        image, targets = direct.pose_frame(int(poses.conditions[k]), poses.rack_positions[k],
                                           float(poses.rack_yaws[k]))
        np.testing.assert_array_equal(poses.images[k], image)
        np.testing.assert_allclose(poses.targets[k], targets.reshape(-1), rtol=0.0, atol=1e-12)
    direct.env.close()


def test_sigterm_to_the_bringup_stops_every_node_it_started(tiny_run, tmp_path):
    """The nodes run in their own sessions: only the bringup can stop them, also on SIGTERM."""
    conditions, preset = tiny_run
    log = tmp_path / "bringup.log"
    proc = start(["gps_trainer.bringup", f"preset:={preset}", f"conditions:={conditions}",
                  f"run_dir:={tmp_path / 'run'}", "gui:=false"], log)
    pids = []
    try:
        deadline = time.monotonic() + 60.0
        while log.read_text().count("[bringup] started") < 3 and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        pids = [int(line.split("(pid ")[1].rstrip(")"))
                for line in log.read_text().splitlines() if line.startswith("[bringup] started")]
        assert len(pids) == 3, log.read_text()[-3000:]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=40) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    finally:
        stop(proc)
        left = [pid for pid in pids if alive(pid)]
        for pid in left:
            os.killpg(pid, signal.SIGKILL)
    assert not left, f"nodes left running: {left}"
    assert log.read_text().count("exited with") == 3


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_killed_trainer_resumes_without_losing_a_sample(tiny_run, tmp_path, recorder):
    """Kill the trainer after its first stored sample of iteration 1 and start it again: the
    stored samples stay as they were and at most one trial runs twice. The samples draw random
    looks, which reach the sim node through set_condition: each starts in a frame unlike the
    condition's own look at the same rack offset."""
    conditions, preset = tiny_run
    values = yaml.safe_load(preset.read_text())
    values["appearance_randomisation"] = {"colour_jitter": 0.3, "light_scale": [0.5, 1.5]}
    preset.write_text(yaml.safe_dump(values))
    from gps_sim.scene import MODEL_PATH
    run_dir = tmp_path / "run"
    nodes = [start(["gps_sim.sim_node", "--ros-args", "-p", "mode:=lockstep",
                    "-p", f"conditions_file:={conditions}",
                    "-p", "condition_set:=train,spatial_test", "-p", "image_size:=64"],
                   tmp_path / "sim.log"),
             start(["gps_controller.controller_node", "--ros-args", "-p", "mode:=lockstep",
                    "-p", f"robot_description:={MODEL_PATH}"], tmp_path / "controller.log")]
    trainer_args = ["gps_trainer.trainer_node", "--ros-args", "-p", f"config_file:={preset}",
                    "-p", f"run_dir:={run_dir}", "-p", "trajectory_pretraining_iterations:=2"]
    try:
        trainer = start(trainer_args, tmp_path / "trainer1.log")
        deadline = time.monotonic() + 300
        first_sample = run_dir / "samples" / "itr_001_cond_00.npz"
        while not first_sample.exists() and time.monotonic() < deadline:
            assert trainer.poll() is None, (tmp_path / "trainer1.log").read_text()[-3000:]
            time.sleep(0.02)
        os.killpg(trainer.pid, signal.SIGKILL)
        trainer.wait()
        before = {p.name: digest(p) for p in (run_dir / "samples").glob("*.npz")}
        assert "itr_001_cond_00.npz" in before
        trials_before = len([s for s in recorder.samples if any(s.noise)])
        trainer = start(trainer_args, tmp_path / "trainer2.log")
        assert trainer.wait(timeout=400) == 0, (tmp_path / "trainer2.log").read_text()[-3000:]
        log = (tmp_path / "trainer2.log").read_text()
        assert "resuming" in log
        after = {p.name: digest(p) for p in (run_dir / "samples").glob("*.npz")}
        assert all(after[name] == value for name, value in before.items())
        assert len(after) == 3 * 2
        time.sleep(1.0)
        trials = len([s for s in recorder.samples if any(s.noise)])
        in_flight = trials - len(after)
        assert in_flight in (0, 1), f"{trials} trials for {len(after)} samples ({trials_before} " \
                                    f"before the kill)"
    finally:
        for proc in [*nodes, trainer]:
            stop(proc)
    env = HangerEnv.from_yaml(conditions, "train")
    for record in RunFolder(run_dir).read_metrics():
        plain = env.reset(record["condition"], rack_offset=record["rack_offset"])[1].image
        with np.load(SampleStore(run_dir).file(record["iteration"], record["condition"])) as s:
            assert np.abs(s["images"][0].astype(int) - plain).mean() > 5
    env.close()


def test_a_policy_evaluated_through_the_bringup_ends_where_the_direct_evaluation_does(
        tiny_run, tmp_path):
    """evaluate:= runs the CNN policy alone over the graph (the sim node's 64x64 camera images,
    the controller's lock-step trials) on evaluation_set of a conditions file without the
    preset's sets; each trial's final distance equals the direct evaluation tool's on the same
    conditions, and the run folder holds no training run."""
    _, preset = tiny_run
    conditions = tmp_path / "evaluation_conditions.yaml"
    conditions.write_text(yaml.safe_dump({
        "task": {"episode_steps": T},
        "held_out": [{"name": "a", "rack_position": [0.72, -0.05, -0.12], "grasp": 0},
                     {"name": "b", "rack_position": [0.78, 0.05, -0.08], "grasp": 1}]}))
    policy = tmp_path / "cnn.pt"
    torch.manual_seed(3)
    GaussianPolicy(VisuomotorCNN(VisuomotorCNNConfig(image_size=(64, 64), conv_filters=(4, 4, 4),
                                                     fc_units=(8,))), device="cpu").save(policy)
    run_dir = tmp_path / "eval"
    log = tmp_path / "bringup.log"
    proc = start(["gps_trainer.bringup", f"preset:={preset}", f"conditions:={conditions}",
                  f"run_dir:={run_dir}", "gui:=false", f"evaluate:={policy}",
                  "evaluation_set:=held_out"], log)
    try:
        proc.wait(timeout=300)
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    over_ros = json.loads((run_dir / "policy_evaluation_held_out.json").read_text())
    assert sorted(p.name for p in run_dir.iterdir()) == ["policy_evaluation_held_out.json"]
    assert "held_out: " in log.read_text() and "(policy alone)" in log.read_text()
    assert over_ros["policy"] == str(policy) and over_ros["condition_set"] == "held_out"
    assert evaluation.main(["--policy", str(policy), "--conditions", str(conditions),
                            "--set", "held_out", "--trials", "1", "--out",
                            str(tmp_path / "direct")]) == 0
    direct = json.loads((tmp_path / "direct" / "results.json").read_text())
    assert list(over_ros["conditions"]) == list(direct["conditions"]) == ["a", "b"]
    deviation = 0.0
    for name, ros in over_ros["conditions"].items():
        local = direct["conditions"][name]
        assert ros["successes"] == local["successes"] and ros["trials"] == 1
        np.testing.assert_allclose(ros["final_distances"], local["final_distances"],
                                   rtol=0.0, atol=1e-9)
        deviation = max(deviation, abs(ros["final_distances"][0] - local["final_distances"][0]))
    assert over_ros["random_looks"] is None

    # random_looks:= draws each trial's look: the CNN sees other images, so other trials.
    looks = tmp_path / "looks.yaml"
    looks.write_text(yaml.safe_dump({"appearance_randomisation": {
        "colour_jitter": 0.4, "light_scale": [0.4, 1.5], "light_tint": 0.3}}))
    proc = start(["gps_trainer.bringup", f"preset:={preset}", f"conditions:={conditions}",
                  f"run_dir:={tmp_path / 'looks'}", "gui:=false", f"evaluate:={policy}",
                  "evaluation_set:=held_out", f"random_looks:={looks}"], log)
    try:
        proc.wait(timeout=300)
    finally:
        stop(proc)
    assert proc.returncode == 0, log.read_text()[-3000:]
    looked = json.loads((tmp_path / "looks" / "policy_evaluation_held_out.json").read_text())
    assert looked["random_looks"]["colour_jitter"] == 0.4
    shifts = [abs(looked["conditions"][name]["final_distances"][0]
                  - over_ros["conditions"][name]["final_distances"][0]) for name in ("a", "b")]
    assert max(shifts) > 10.0 * deviation + 1e-7, (shifts, deviation)
