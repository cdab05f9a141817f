"""The controller node's loop and its sample trip, with the sim and controller nodes as separate
processes over Fast DDS.

1. Realtime loop: sim and controller in realtime mode at 20 Hz; one trial of `--seconds` with the
   linear-Gaussian policy (64x64 camera), the paper's CNN at 64x64 and at 240x240 (untrained
   weights: the timing does not depend on them). From the controller's /diagnostics after the
   trial (`last_trial_*`, over all its steps): control period, jitter, policy inference time
   (p50, p99, max), deadline misses; from this process: the intervals between the torque
   commands it receives.
2. Sample trip: lock-step trials of 100 steps recording 240x240 frames; the time from the sim's
   last state of the trial reaching this process to the trial's result (the 17 MB sample) doing
   so, with the project's Fast DDS profile (config/fastdds_large_samples.xml) and, as the
   same-run baseline, with Fast DDS's default transports. Medians of `--trips` trials.
Prints a table and one JSON line.

    . scripts/env.sh && python bench/controller_loop.py [--seconds 60] [--trips 5]
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np

RATE_HZ = 20.0
CONDITIONS = os.path.join(os.path.dirname(__file__), "..", "config", "hanger_conditions.yaml")


def start_nodes(mode, image_size, env):
    from gps_sim.scene import MODEL_PATH
    common = dict(stdout=open(f'/tmp/bench_{mode}.log','a'), stderr=subprocess.STDOUT, env=env,
                  start_new_session=True)
    sim = subprocess.Popen([sys.executable, "-m", "gps_sim.sim_node", "--ros-args",
                            "-p", f"mode:={mode}", "-p", f"conditions_file:={CONDITIONS}",
                            "-p", f"image_size:={image_size}"], **common)
    controller = subprocess.Popen([sys.executable, "-m", "gps_controller.controller_node",
                                   "--ros-args", "-p", f"mode:={mode}",
                                   "-p", f"robot_description:={MODEL_PATH}",
                                   "-p", f"rate_hz:={RATE_HZ}", "-p", "lockstep_timeout_s:=30.0"],
                                  **common)
    return [sim, controller]


def stop_nodes(procs):
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Probe:
    """This process's node: clients of the controller and sim, and what it listens to."""

    def __init__(self):
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Float64MultiArray

        from gps_controller.controller_client import ControllerClient
        from gps_sim.sim_client import SimClient
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("gps_bench_controller_loop", context=self.context)
        self.controller = ControllerClient(self.node)
        self.sim = SimClient(self.node)
        self.diagnostics, self.commands, self.states = [], [], []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 50)
        self.node.create_subscription(Float64MultiArray, "/effort_controller/commands",
                                      lambda m: self.commands.append(time.monotonic()), 100)
        self.node.create_subscription(JointState, "/joint_states", self._on_state, 100)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_diagnostics(self, msg):
        for status in msg.status:
            if status.name == "gps_controller":
                self.diagnostics.append({kv.key: kv.value for kv in status.values})

    def _on_state(self, msg):
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.states.append((stamp, time.monotonic()))

    def wait_ready(self):
        self.sim.wait_until_ready(60)
        self.controller.wait_until_ready(60)

    def close(self):
        self.executor.shutdown()
        self.node.destroy_node()
        import rclpy
        rclpy.shutdown(context=self.context)


def geometry():
    from gps_sim.env import HangerEnv
    env = HangerEnv.from_yaml(CONDITIONS, "train", render_observations=False)
    env.reset(0)
    return env.ee_points_in_tool(), env.target_points()


def lg_update(version, T):
    from gps_controller.layout import PR2_RIGHT_ARM as L
    from gps_controller.messages import linear_gaussian_to_msg, policy_update_msg
    chol = np.repeat(1e-2 * np.eye(L.dU)[None], T, axis=0)
    return policy_update_msg(version, condition=0, linear_gaussian=linear_gaussian_to_msg(
        np.zeros((T, L.dU, L.dX)), np.zeros((T, L.dU)), chol))


def cnn_update(version, size):
    import torch

    from gps_controller.messages import network_policy_to_msg, policy_update_msg
    from gps_controller.policies.gaussian_policy import GaussianPolicy
    from gps_controller.policies.networks import VisuomotorCNN, VisuomotorCNNConfig
    torch.manual_seed(0)
    policy = GaussianPolicy(VisuomotorCNN(VisuomotorCNNConfig(image_size=(size, size))),
                            device="cpu")
    return policy_update_msg(version, network=network_policy_to_msg(policy.to_params()))


def run_trial(probe, version, T, points, targets, record_images=False, lockstep=False):
    from gps_controller.controller_client import TrialRequest
    stamp = probe.sim.reset("train_near_right_low_g0") if lockstep else None
    request = TrialRequest(version, 0, T, points, targets, noise_scale=0.0,
                           record_images=record_images,
                           **({"start_stamp": stamp} if stamp is not None else {}))
    return probe.controller.run_trial(request, timeout=T / RATE_HZ * 3 + 60, policy_wait=20.0)


def warm_up(probe, version, points, targets, timeout=60.0):
    """Short trials until one runs through: the sim's and the controller's DDS endpoints may
    take a few seconds to match after both nodes are up."""
    from gps_controller.controller_client import TrialFailed
    deadline = time.monotonic() + timeout
    while True:
        try:
            run_trial(probe, version, 10, points, targets)
            return
        except TrialFailed:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def realtime_case(name, update, size, seconds, env):
    procs = start_nodes("realtime", size, env)
    probe = Probe()
    try:
        probe.wait_ready()
        points, targets = geometry()
        T = int(seconds * RATE_HZ)
        probe.controller.push(update)
        warm_up(probe, update.version, points, targets)
        probe.diagnostics.clear()
        probe.commands.clear()
        record, _ = run_trial(probe, update.version, T, points, targets)
        deadline = time.monotonic() + 10
        while not probe.diagnostics or \
                float(probe.diagnostics[-1].get("last_trial_steps", -1)) != T:
            assert time.monotonic() < deadline, "no diagnostics of the trial"
            time.sleep(0.1)
        trial = {k.removeprefix("last_trial_"): float(v)
                 for k, v in probe.diagnostics[-1].items() if k.startswith("last_trial_")}
        gaps = np.diff(probe.commands)
        return {
            "case": name, "steps": int(record.X.shape[0]),
            **{key: trial[key] for key in (
                "period_p50_ms", "period_p99_ms", "period_max_ms", "jitter_p50_ms",
                "jitter_p99_ms", "jitter_max_ms", "inference_p50_ms", "inference_p99_ms",
                "inference_max_ms")},
            "deadline_misses": int(trial["deadline_misses"]),
            "received_interval_p50_ms": float(1e3 * np.median(gaps)),
            "received_interval_p99_ms": float(1e3 * np.percentile(gaps, 99)),
            "received_interval_max_ms": float(1e3 * gaps.max()),
        }
    finally:
        probe.close()
        stop_nodes(procs)


def trip_case(name, env, trips):
    procs = start_nodes("lockstep", 240, env)
    probe = Probe()
    try:
        probe.wait_ready()
        points, targets = geometry()
        T = 100
        times = []
        for k in range(trips + 1):
            version = 10 + k
            probe.controller.push(lg_update(version, T))
            time.sleep(0.3)
            record, _ = run_trial(probe, version, T, points, targets, record_images=True,
                                  lockstep=True)
            done = time.monotonic()
            assert record.images.shape == (T, 240, 240, 3)
            last_stamp = max(s for s, _ in probe.states)
            last_state = next(t for s, t in probe.states if s == last_stamp)
            if k > 0:   # the first trip allocates the transports' buffers
                times.append(done - last_state)
        return {"case": name, "trip_ms_median": float(1e3 * np.median(times)),
                "trip_ms_max": float(1e3 * np.max(times)), "trips": trips,
                "megabytes": float(record.images.nbytes / 1e6)}
    finally:
        probe.close()
        stop_nodes(procs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--trips", type=int, default=5)
    args = parser.parse_args()
    env = os.environ.copy()
    env.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    os.environ["ROS_DOMAIN_ID"] = env["ROS_DOMAIN_ID"]
    T = int(args.seconds * RATE_HZ)
    loop = [realtime_case("linear_gaussian", lg_update(1, T), 64, args.seconds, env),
            realtime_case("cnn_64x64", cnn_update(1, 64), 64, args.seconds, env),
            realtime_case("cnn_240x240", cnn_update(1, 240), 240, args.seconds, env)]
    default_env = {k: v for k, v in env.items() if k != "FASTDDS_DEFAULT_PROFILES_FILE"}
    trips = [trip_case("large_sample_profile", env, args.trips),
             trip_case("default_transports", default_env, args.trips)]
    print(f"{'policy':>16} {'period p50/p99/max ms':>24} {'jitter p50/p99':>15} "
          f"{'inference p50/p99':>18} {'misses':>7} {'received p99/max':>17}")
    for r in loop:
        print(f"{r['case']:>16} {r['period_p50_ms']:7.2f}/{r['period_p99_ms']:6.2f}/"
              f"{r['period_max_ms']:6.2f}  {r['jitter_p50_ms']:6.2f}/{r['jitter_p99_ms']:6.2f}  "
              f"{r['inference_p50_ms']:8.2f}/{r['inference_p99_ms']:7.2f}  "
              f"{r['deadline_misses']:7d}  {r['received_interval_p99_ms']:7.2f}/"
              f"{r['received_interval_max_ms']:7.2f}")
    for r in trips:
        print(f"sample trip 100x240x240 ({r['megabytes']:.1f} MB), {r['case']}: median "
              f"{r['trip_ms_median']:.1f} ms, max {r['trip_ms_max']:.1f} ms")
    ratio = trips[1]["trip_ms_median"] / trips[0]["trip_ms_median"]
    print(f"default transports / large-sample profile: {ratio:.2f}x")
    print(json.dumps({"bench": "controller_loop", "seconds": args.seconds, "loop": loop,
                      "sample_trip": trips, "trip_speedup": ratio}))


if __name__ == "__main__":
    main()
