"""The GUI in a real headless browser (Debian's chromium, driven by Playwright) against the GUI
node and the sim node running as separate processes. This test process is the other peers over
real DDS, until the controller and trainer nodes exist: it publishes the controller's feature
points and samples and the trainer's progress, and offers a RunTrial action server.

Given the sim (realtime, the training conditions) and the GUI node on a copy of the conditions
file:
- the teleop page shows the sim's camera with the published feature points drawn on it, and
  the 14 joint states;
- resetting to a condition, then the step buttons and typed entries, move the rack in the sim:
  the rack pose computed by forward kinematics from the sim's own left-arm joint states goes
  from the condition's pose to the target entered on the page;
- saving the target as a condition writes it into the file, the sim's environment resets to
  it with the rack there, and the evaluator CLI runs a policy on it;
- bad input (an out-of-range, non-numeric or non-finite target, an unknown condition, a
  malformed or duplicate name, an unknown set, a body that is not JSON) is refused with a
  visible message, changes neither the target nor the file, and the node stays up;
- one trial: with no controller the page says that no action server answers; with one it shows
  the trial's result, and the goal names the condition chosen on the page;
- the dashboard shows each published iteration's metrics per condition (records in the format
  of a run's metrics.jsonl, turned into TrainingProgress by the trainer's own
  gps_trainer.progress), the KL per time step and the end-effector path of a real sample (the
  scripted hang), updates without a reload, and drops a malformed message.

Screenshots of both pages are written to the test's folder, and to $GPS_GUI_SCREENSHOT_DIR when
it is set (docs/gui_teleop.png and docs/gui_dashboard.png come from this test).
"""

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import mujoco
import numpy as np
import pytest
import rclpy
import torch
from playwright.sync_api import expect
from rclpy.action import ActionServer
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray

from gps_controller.controller_client import ControllerClient
from gps_controller.messages import (SampleRecord, network_policy_to_msg, policy_update_msg,
                                     sample_to_msg)
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import FullStateMLP, FullStateMLPConfig
from gps_msgs.action import RunTrial
from gps_msgs.msg import SampleTrajectory, TrainingProgress
from gps_sim import HangerEnv
from gps_sim.conditions import HangerCondition, SceneVariation, load_conditions
from gps_sim.scene import MODEL_PATH, ROBOT_BODY, build_model
from gps_sim.scripted_hang import scripted_hang
from gps_trainer.progress import METRICS, progress_msg

CONFIG = Path(__file__).resolve().parents[3] / "config" / "hanger_conditions.yaml"
START_TIMEOUT = 90.0
UI_TIMEOUT_MS = 15_000
expect.set_options(timeout=UI_TIMEOUT_MS)
RACK_TOLERANCE_M = 0.005
RACK_TOLERANCE_RAD = 0.02
FEATURE_POINTS = np.random.default_rng(3).uniform(-0.8, 0.8, (32, 2))
FEATURE_POINTS[0] = (-0.5, -0.5)
TRAIN_NAMES = [c.name for c in load_conditions(CONFIG, "train")]


# The peers in this process -------------------------------------------------------------------

class Peer:
    """This process's ROS node, spun in a thread: reads the sim's joint states, publishes what
    the controller and trainer will publish, and can offer the RunTrial action."""

    def __init__(self) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("gui_test_peer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._lock = threading.Lock()
        self._joints: JointState | None = None
        self.node.create_subscription(JointState, "/joint_states", self._on_joints, 10)
        self.points_pub = self.node.create_publisher(Float32MultiArray,
                                                     "/gps_controller/feature_points", 10)
        self.progress_pub = self.node.create_publisher(TrainingProgress,
                                                       "/gps_trainer/progress", 10)
        self.sample_pub = self.node.create_publisher(SampleTrajectory,
                                                     "/gps_controller/samples", 10)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def heard_by_gui(self) -> bool:
        """Whether the GUI node's subscriptions have matched this process's publishers (a
        message published before that would be lost)."""
        return all(pub.get_subscription_count() > 0
                   for pub in (self.points_pub, self.progress_pub, self.sample_pub))

    def close(self) -> None:
        self.executor.shutdown()
        self._thread.join(timeout=5)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)

    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            self._joints = msg

    def rack_pose(self) -> tuple[np.ndarray, float]:
        """The rack pose the sim's latest left-arm joint states put it in."""
        with self._lock:
            msg = self._joints
        assert msg is not None, "no joint states from the sim"
        return rack_pose_from_joints(msg.name, msg.position)

    @contextlib.contextmanager
    def feature_points(self, points: np.ndarray):
        """Publish `points` (K x 2) at 10 Hz while the block runs, as a CNN policy would."""
        stop = threading.Event()

        def publish() -> None:
            while not stop.wait(0.1):
                self.points_pub.publish(Float32MultiArray(data=points.ravel().tolist()))

        thread = threading.Thread(target=publish, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    @contextlib.contextmanager
    def run_trial_server(self, steps: int):
        """Offer /gps_controller/run_trial; each goal succeeds with a `steps`-step sample.
        Yields the list of goals received."""
        goals = []

        def execute(goal_handle):
            goals.append(goal_handle.request)
            goal_handle.publish_feedback(RunTrial.Feedback(step=steps, t=steps))
            goal_handle.succeed()
            sample = SampleTrajectory(t=steps, condition=goal_handle.request.condition)
            return RunTrial.Result(success=True, message="ran on the test's action server",
                                   sample=sample)

        with self.extra_node("gui_test_trial_server",
                             lambda node: ActionServer(node, RunTrial,
                                                       "/gps_controller/run_trial", execute)):
            yield goals

    @contextlib.contextmanager
    def extra_node(self, name: str, build):
        """A second node of this process with the entities `build(node)` returns, added to the
        spinning executor only once they are complete (an entity made on a node while another
        thread spins it can be seen half-built)."""
        node = rclpy.create_node(name, context=self.context)
        built = build(node)
        self.executor.add_node(node)
        try:
            yield built
        finally:
            self.executor.remove_node(node)
            node.destroy_node()


def rack_pose_from_joints(names, positions) -> tuple[np.ndarray, float]:
    """Forward kinematics of the shipped model: the rack bar centre (robot frame) and the rack's
    yaw for the given left-arm joint angles; the rack hangs from the left gripper."""
    model = build_model(SceneVariation())
    data = mujoco.MjData(model)
    for name, q in zip(names, positions):
        if name.startswith("l_"):
            data.qpos[model.joint(name).qposadr[0]] = q
    mujoco.mj_kinematics(model, data)
    robot = data.body(ROBOT_BODY)
    rotation = robot.xmat.reshape(3, 3)
    centre = rotation.T @ (data.site("rack_bar_centre").xpos - robot.xpos)
    x_axis = rotation.T @ data.body("rack").xmat.reshape(3, 3)[:, 0]
    return centre, math.atan2(x_axis[1], x_axis[0])


def run_records(iteration: int, conditions: list[int], t: int = 100) -> list[dict]:
    """One iteration's metrics.jsonl records as train_gps writes them (badmm.py's keys), with
    made-up but plausible values: cost falling, KL growing along the episode, success from
    iteration 3 on for even conditions, the policy alone succeeding on condition 4 from iteration
    4; no policy loss before the first policy step."""
    records = []
    for k, index in enumerate(conditions):
        kl = 0.2 * np.exp(np.linspace(0.0, 5.0, t)) / (1 + iteration) * (1 + 0.3 * k)
        records.append({
            "condition": index, "condition_name": TRAIN_NAMES[index], "iteration": iteration,
            "stage": "end_to_end", "sample_cost": -40.0 - 6.0 * iteration - 1.5 * k,
            "kl": 0.9, "epsilon": 2.4 / (1 + iteration), "eta": 2.5 + k, "step_mult": 1.0,
            "kl_policy_traj": float(kl.sum()), "kl_policy_traj_per_step": kl.tolist(),
            "nu_mean": 0.01 * 2 ** min(iteration, 3), "lagrange_norm": 0.05,
            "policy_loss": 3.0 / (1 + iteration) if iteration else math.nan,
            "success": iteration >= 3 and index % 2 == 0,
            "policy_success": float(iteration >= 4 and index == 4),
            "policy_validation_success": iteration / 8,
            "final_distance": 0.2 / (1 + iteration),
        })
    return records


def scripted_sample(iteration: int) -> SampleTrajectory:
    """A real sample: the scripted hang on the first training condition, recorded step by step
    in the direct environment API."""
    env = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
    xs, us, configs = [], [], []
    step = env.step

    def recording_step(torque):
        x, obs = step(torque)
        xs.append(x)
        us.append(np.asarray(torque, float))
        configs.append(obs.config)
        return x, obs

    env.step = recording_step
    scripted_hang(env, 0)
    record = SampleRecord.with_layout(env.layout, X=np.array(xs), U=np.array(us),
                                      noise=np.zeros((len(us), env.layout.dU)),
                                      obs_config=np.array(configs), condition=0,
                                      iteration=iteration)
    env.close()
    return sample_to_msg(record)


# Processes, browser --------------------------------------------------------------------------

def start(args: list[str], log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", *args], stdout=out,
                                stderr=subprocess.STDOUT, env=os.environ.copy(),
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it is still there after 10 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Stack:
    def __init__(self, url, conditions, folder, gui, sim):
        self.url, self.conditions, self.folder, self.gui, self.sim = (url, conditions, folder,
                                                                      gui, sim)

    def api(self, path: str) -> dict:
        return get_json(self.url + path)

    def screenshot(self, page, name: str) -> None:
        page.screenshot(path=str(self.folder / name), full_page=True)
        target = os.environ.get("GPS_GUI_SCREENSHOT_DIR")
        if target:
            shutil.copy(self.folder / name, Path(target) / name)


@pytest.fixture(scope="module")
def peer():
    peer = Peer()
    try:
        yield peer
    finally:
        peer.close()


@pytest.fixture(scope="module")
def stack(peer, tmp_path_factory, free_port):
    folder = tmp_path_factory.mktemp("gui")
    conditions = folder / "hanger_conditions.yaml"
    shutil.copy(CONFIG, conditions)
    port = free_port()
    sim = start(["gps_sim.sim_node", "--ros-args", "-p", f"conditions_file:={conditions}",
                 "-p", "mode:=realtime", "-p", "condition_set:=train"], folder / "sim.log")
    gui = None
    try:
        gui = start(["gps_trainer.gui.gui_node", "--ros-args",
                     "-p", f"conditions_file:={conditions}", "-p", "condition_set:=train",
                     "-p", f"port:={port}"], folder / "gui.log")
        url = f"http://127.0.0.1:{port}"

        def up() -> bool:
            assert gui.poll() is None, (folder / "gui.log").read_text()
            assert sim.poll() is None, (folder / "sim.log").read_text()
            with contextlib.suppress(OSError):
                return (get_json(url + "/api/state")["joints"] is not None
                        and peer.heard_by_gui())
            return False

        wait_until(up, START_TIMEOUT, "the GUI node to show the sim's joint states and to "
                                      "subscribe to this process's topics")
        yield Stack(url, conditions, folder, gui, sim)
    finally:
        if gui is not None:
            stop(gui)
        stop(sim)


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    try:
        yield page
    finally:
        page.close()


def open_teleop(page, stack) -> None:
    page.goto(stack.url + "/")
    page.wait_for_selector("body[data-ready=true]")


def expect_message(page, text: str, ok: bool) -> None:
    message = page.locator("#message")
    expect(message).to_contain_text(text)
    expect(message).to_have_class("message ok" if ok else "message error")


def enter_target(page, **values: str) -> None:
    for axis in ("x", "y", "z", "yaw"):
        page.fill(f"#enter-{axis}", values.get(axis, ""))
    page.click("#send-target")


# Teleop page ---------------------------------------------------------------------------------

def test_the_teleop_page_shows_the_camera_with_feature_points_and_the_joint_states(
        stack, peer, page):
    with peer.feature_points(FEATURE_POINTS):
        open_teleop(page, stack)
        rows = page.locator("#joints tbody tr")
        expect(rows).to_have_count(14)
        expect(rows.first.locator("td").first).to_have_text("r_shoulder_pan_joint")
        expect(rows.last.locator("td").first).to_have_text("l_wrist_roll_joint")
        expect(page.locator("#feature-info")).to_have_text("32 feature points")
        expect(page.locator("#camera")).to_have_attribute("data-points", "32")
        expect(page.locator("#frame-info")).to_contain_text("(64x64)")
        # point 0 at (-0.5, -0.5) is drawn in red a quarter of the way into the 384 px view
        r, g, b, _ = page.evaluate("document.getElementById('camera').getContext('2d')"
                                   ".getImageData(96, 96, 1, 1).data")
        assert r > 150 and g < 80 and b < 80, (r, g, b)
    expect(page.locator("#feature-info")).to_contain_text("no feature points")


def test_moving_the_target_on_the_page_moves_the_rack_in_the_sim(stack, peer, page):
    def rack_at(position, yaw) -> bool:
        measured, measured_yaw = peer.rack_pose()
        return (np.linalg.norm(measured - np.asarray(position)) < RACK_TOLERANCE_M
                and abs(measured_yaw - yaw) < RACK_TOLERANCE_RAD)

    with peer.feature_points(FEATURE_POINTS):
        open_teleop(page, stack)
        page.fill("#condition", "train_near_right_low_g0")
        page.click("#reset")
        expect_message(page, "arms reset: reset to condition 'train_near_right_low_g0'", ok=True)
        expect(page.locator("#current-x")).to_have_text("0.7200")
        wait_until(lambda: rack_at((0.72, -0.04, -0.125), 0.0), 20, "the rack at the condition")

        page.click("#step-x-plus")
        expect(page.locator("#current-x")).to_have_text("0.7300")
        page.click("#step-x-plus")
        expect(page.locator("#current-x")).to_have_text("0.7400")
        page.click("#step-z-plus")
        expect(page.locator("#current-z")).to_have_text("-0.1150")
        enter_target(page, y="0.03", yaw="0.1")
        expect_message(page, "target sent: x 0.740 m, y 0.030 m, z -0.115 m, yaw 0.100 rad",
                       ok=True)

        wait_until(lambda: rack_at((0.74, 0.03, -0.115), 0.1), 20, "the rack at the new target")
        expect(page.locator("#feature-info")).to_have_text("32 feature points")
        stack.screenshot(page, "gui_teleop.png")


def test_saving_a_condition_writes_the_file_and_the_evaluator_runs_it(stack, page, tmp_path):
    open_teleop(page, stack)
    enter_target(page, x="0.72", y="-0.04", z="-0.12", yaw="-0.05")
    expect_message(page, "target sent", ok=True)
    page.fill("#save-name", "gui_saved_near")
    page.select_option("#save-set", "spatial_test")
    page.select_option("#save-grasp", "1")
    page.click("#save")

    expect_message(page, "saved condition 'gui_saved_near' in set 'spatial_test'", ok=True)
    saved = load_conditions(stack.conditions, "spatial_test")[-1]
    assert saved == HangerCondition("gui_saved_near", (0.72, -0.04, -0.12), -0.05, 1)
    env = HangerEnv.from_yaml(stack.conditions, "spatial_test", render_observations=False)
    env.reset("gui_saved_near")
    position, yaw = env.rack_pose()
    np.testing.assert_allclose(position, saved.rack_position, atol=1e-3)
    assert yaw == pytest.approx(saved.rack_yaw, abs=1e-3)
    env.close()

    policy_file = tmp_path / "policy.pt"
    GaussianPolicy(FullStateMLP(FullStateMLPConfig(fc_units=(8,))), device="cpu").save(
        policy_file)
    evaluation = subprocess.run(
        [sys.executable, "-m", "gps_trainer.evaluation", "--policy", str(policy_file),
         "--conditions", str(stack.conditions), "--set", "spatial_test", "--trials", "1",
         "--out", str(tmp_path / "eval")], capture_output=True, text=True, timeout=300)
    assert evaluation.returncode == 0, evaluation.stdout + evaluation.stderr
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert results["conditions"]["gui_saved_near"]["trials"] == 1


def test_bad_input_is_refused_with_a_visible_message_and_the_node_stays_up(stack, page):
    open_teleop(page, stack)
    expect(page.locator("#current-x")).not_to_have_text("–")
    target_before = [page.inner_text(f"#current-{axis}") for axis in ("x", "y", "z", "yaw")]
    file_before = stack.conditions.read_bytes()

    enter_target(page, x="1.5")
    expect_message(page, "target refused: x = 1.5000 m is out of the reach limits "
                         "[0.650, 0.850] m", ok=False)
    enter_target(page, z="abc")
    expect_message(page, "z must be a number, got 'abc'", ok=False)
    enter_target(page, yaw="nan")
    expect_message(page, "yaw must be a finite number, got 'nan'", ok=False)
    page.fill("#condition", "no_such_condition")
    page.click("#reset")
    expect_message(page, "reset refused: unknown condition 'no_such_condition'", ok=False)
    page.click("#run-trial")
    expect_message(page, "unknown condition 'no_such_condition'; known in set 'train'",
                   ok=False)
    page.fill("#save-name", "bad name!")
    page.click("#save")
    expect_message(page, "not saved: condition name 'bad name!' is malformed", ok=False)
    page.fill("#save-name", "train_far_left_low_g0")
    page.click("#save")
    expect_message(page, "already exists in set 'train'", ok=False)
    page.evaluate("document.getElementById('save-set').add(new Option('test', 'test'))")
    page.select_option("#save-set", "test")
    page.fill("#save-name", "gui_new")
    page.click("#save")
    expect_message(page, "not saved: unknown condition set 'test'", ok=False)
    request = urllib.request.Request(stack.url + "/api/target", data=b"{x: 1", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
    assert "not JSON" in json.loads(refused.value.read())["message"]

    for axis, before in zip(("x", "y", "z", "yaw"), target_before):
        expect(page.locator(f"#current-{axis}")).to_have_text(before)
    assert stack.conditions.read_bytes() == file_before
    assert stack.gui.poll() is None
    assert stack.api("/api/state")["joints"] is not None


def test_run_one_trial_reports_a_missing_controller_then_the_trials_result(stack, peer, page):
    open_teleop(page, stack)
    page.fill("#condition", "train_far_right_high_g1")
    page.click("#run-trial")
    expect_message(page, "trial refused: no action server /gps_controller/run_trial", ok=False)
    expect(page.locator("#trial-status")).to_contain_text("no action server")

    with peer.run_trial_server(steps=7) as goals:
        def sent() -> bool:                  # once the GUI node has discovered the server
            with page.expect_response("**/api/trial") as response:
                page.click("#run-trial")
            return response.value.json()["ok"]

        wait_until(sent, 20, "the GUI to find the action server")
        expect_message(page, "trial sent: condition train_far_right_high_g1", ok=True)
        expect(page.locator("#trial-status")).to_contain_text(
            "trial done (condition train_far_right_high_g1 (#5), policy version 0, 100 steps, "
            "mean action): ran on the test's action server; 7 steps recorded")
    assert goals[-1].condition == TRAIN_NAMES.index("train_far_right_high_g1")
    assert (goals[-1].t, goals[-1].noise_scale, goals[-1].policy_version) == (100, 0.0, 0)
    env = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
    env.reset("train_far_right_high_g1")
    np.testing.assert_allclose(np.reshape(goals[-1].ee_points_tool, (3, 3)),
                               env.ee_points_in_tool(), atol=1e-12)
    np.testing.assert_allclose(np.reshape(goals[-1].ee_targets, (3, 3)), env.target_points(),
                               atol=1e-12)



def test_run_one_trial_on_the_real_controller(stack, peer, page, tmp_path):
    """The teleop page's trial runs on the controller node itself (realtime, like the sim here)
    with the newest policy it holds: 100 steps come back."""
    controller = start(["gps_controller.controller_node", "--ros-args", "-p", "mode:=realtime",
                        "-p", f"robot_description:={MODEL_PATH}"], tmp_path / "controller.log")
    try:
        with peer.extra_node("gui_test_controller_client", ControllerClient) as client:
            run_trial_from_the_page(client, stack, page, tmp_path)
    finally:
        stop(controller)


def run_trial_from_the_page(client, stack, page, tmp_path):
    client.wait_until_ready(START_TIMEOUT)
    torch.manual_seed(0)
    policy = GaussianPolicy(FullStateMLP(FullStateMLPConfig(fc_units=(8,))), device="cpu")
    policy.set_covariance(0.01 * np.eye(policy.dim_u))
    wait_until(lambda: client.update_pub.get_subscription_count() > 0, START_TIMEOUT,
               "the controller to subscribe to policy updates")
    client.push(policy_update_msg(1, network=network_policy_to_msg(policy.to_params())))
    open_teleop(page, stack)
    page.fill("#condition", "train_near_left_high_g0")

    def done() -> bool:
        status = page.locator("#trial-status").inner_text()
        if "failed" in status and "not held" in status:   # the update was still in flight
            page.click("#run-trial")
        return "trial done" in status

    page.click("#run-trial")
    wait_until(done, 60, "the trial on the controller node: "
               + (tmp_path / "controller.log").read_text()[-2000:])
    expect(page.locator("#trial-status")).to_contain_text("100 steps")


# Dashboard -----------------------------------------------------------------------------------

def test_the_dashboard_shows_training_progress_live(stack, peer, page):
    conditions = [0, 1, 4, 5]
    for iteration in range(6):
        peer.progress_pub.publish(progress_msg(iteration, "end_to_end",
                                               run_records(iteration, conditions)))
    peer.sample_pub.publish(scripted_sample(iteration=5))
    page.goto(stack.url + "/dashboard")

    expect(page.locator("#summary")).to_have_text(
        "iteration 5 · phase end_to_end · 4 conditions · 6 iterations received")
    rows = page.locator("#latest tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator("#latest thead th")).to_have_text(["condition", *METRICS])
    record = run_records(5, conditions)[2]      # condition 4, the third row
    expected = {"sample_cost": "-73", "success": "yes", "policy_success": "yes",
                "policy_validation_success": "0.625",
                "final_distance": "0.03333",
                "kl_policy_traj": f"{record['kl_policy_traj']:.4g}", "nu_mean": "0.08",
                "eta": "4.5", "epsilon": "0.4", "kl": "0.9", "policy_loss": "0.5"}
    expect(rows.nth(2).locator("td")).to_have_text(
        ["4: train_far_right_high_g0", *(expected[name] for name in METRICS)])
    expect(page.locator("canvas[data-metric]")).to_have_count(len(METRICS))
    expect(page.locator("#sample-title")).to_have_text(
        "latest sample: condition 0, iteration 5, trial 0, 100 steps")
    drawn = "(id) => document.getElementById(id).getContext('2d')" \
            ".getImageData(0, 0, 420, 240).data.some((v, i) => i % 4 === 3 && v > 0)"
    assert page.evaluate(drawn, "kl-per-step") and page.evaluate(drawn, "ee-top")

    peer.progress_pub.publish(progress_msg(6, "end_to_end", run_records(6, conditions)))
    expect(page.locator("#summary")).to_contain_text("iteration 6 ·")
    stack.screenshot(page, "gui_dashboard.png")

    malformed = progress_msg(7, "end_to_end", run_records(7, conditions))
    malformed.values_by_condition = malformed.values_by_condition[:-1]
    peer.progress_pub.publish(malformed)
    wait_until(lambda: "/gps_trainer/progress" in stack.api("/api/state")["dropped"], 10,
               "the malformed progress message to be dropped")
    expect(page.locator("#summary")).to_have_text(
        "iteration 6 · phase end_to_end · 4 conditions · 7 iterations received")
    assert stack.gui.poll() is None
