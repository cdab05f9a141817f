"""Cross-process transfer time of a SampleTrajectory with 100 camera frames over rclpy + Fast DDS.

A child process echoes samples back; this process times the round trip for frames of 64x64 and
240x240 and reports the one-way time as half of it (median of repeats). Baselines measured in
the same run: building the message from numpy arrays (sample_to_msg) and copying the same bytes
in memory. Prints a table and one JSON line.

    . scripts/env.sh && python bench/sample_transfer.py [--repeats 15]
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

QOS_DEPTH = 2
TOPIC_IN, TOPIC_OUT = "/gps_bench/sample_in", "/gps_bench/sample_out"


def qos():
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=QOS_DEPTH, reliability=ReliabilityPolicy.RELIABLE)


def run_echo():
    import rclpy
    from gps_msgs.msg import SampleTrajectory
    rclpy.init()
    node = rclpy.create_node("gps_bench_echo")
    pub = node.create_publisher(SampleTrajectory, TOPIC_OUT, qos())
    node.create_subscription(SampleTrajectory, TOPIC_IN, pub.publish, qos())
    print("READY", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass


def make_record(size, T=100):
    from gps_controller.layout import PR2_RIGHT_ARM as L
    from gps_controller.messages import SampleRecord
    rng = np.random.default_rng(0)
    return SampleRecord.with_layout(
        L, X=rng.standard_normal((T, L.dX)), U=rng.standard_normal((T, L.dU)),
        noise=rng.standard_normal((T, L.dU)), obs_config=rng.standard_normal((T, L.dO_config)),
        images=rng.integers(0, 256, (T, size, size, 3), dtype=np.uint8))


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--echo", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo:
        return run_echo()

    import rclpy
    from gps_controller.messages import sample_to_msg
    from gps_msgs.msg import SampleTrajectory

    os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
    child = subprocess.Popen([sys.executable, __file__, "--echo"], stdout=subprocess.PIPE,
                             text=True, env=os.environ.copy())
    assert child.stdout.readline().strip() == "READY"
    rclpy.init()
    node = rclpy.create_node("gps_bench_sender")
    received = []
    pub = node.create_publisher(SampleTrajectory, TOPIC_IN, qos())
    sub = node.create_subscription(SampleTrajectory, TOPIC_OUT, received.append, qos())
    while pub.get_subscription_count() == 0 or sub.get_publisher_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)

    results = {}
    try:
        for size in (64, 240):
            record = make_record(size)
            msg = sample_to_msg(record)
            n_bytes = sum(len(img.data) for img in msg.images) + 8 * (len(msg.x) + len(msg.u)
                                                                       + len(msg.noise)
                                                                       + len(msg.obs_config))

            def round_trip():
                received.clear()
                pub.publish(msg)
                while not received:
                    rclpy.spin_once(node, timeout_sec=1.0)

            round_trip()  # warm-up: first use allocates the transport's buffers
            rt = median_time(round_trip, args.repeats)
            build = median_time(lambda: sample_to_msg(record), args.repeats)
            copy = median_time(lambda: record.images.copy(), args.repeats)
            results[f"{size}x{size}"] = {
                "megabytes": n_bytes / 1e6, "round_trip_s": rt, "one_way_s": rt / 2,
                "build_msg_s": build, "memcpy_s": copy, "one_way_over_memcpy": rt / 2 / copy,
            }
    finally:
        node.destroy_node()
        rclpy.shutdown()
        child.terminate()
        child.wait(timeout=10)

    print(f"{'frames':>10} {'MB':>7} {'one-way ms':>11} {'build ms':>9} {'memcpy ms':>10} "
          f"{'ratio':>7}")
    for key, r in results.items():
        print(f"{'100x' + key:>10} {r['megabytes']:7.2f} {1e3 * r['one_way_s']:11.1f} "
              f"{1e3 * r['build_msg_s']:9.2f} {1e3 * r['memcpy_s']:10.2f} "
              f"{r['one_way_over_memcpy']:7.1f}")
    print(json.dumps({"bench": "sample_transfer", "repeats": args.repeats, "results": results}))


if __name__ == "__main__":
    main()
