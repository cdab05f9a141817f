"""Control steps per second of the hanger simulation (direct HangerEnv API), as a real-time factor.

Three cases, each the median over repeated 100-step episodes (T = 100, dt = 0.05 s): stepping
the physics and reading the state only (the baseline), and the same with one head-camera frame
per control step at 64x64 and at 240x240. The real-time factor is simulated seconds per wall
second; the frame cases also report what the frame adds per step over the baseline of the same
run. By default the process is pinned to one core and Mesa's llvmpipe renderer to one thread
(LP_NUM_THREADS=1), as when several simulations share a machine. Prints a table and one JSON line.

    . scripts/env.sh && python bench/sim_speed.py [--repeats 7] [--all-cores]
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "config" / "hanger_conditions.yaml"
EPISODE_STEPS = 100
CASES = (("state only", None), ("frame 64x64", 64), ("frame 240x240", 240))


def episode_time(env, condition: int, torques, size) -> float:
    """Wall time of one episode: reset, then per step apply torque (and render a frame)."""
    env.reset(condition)
    start = time.perf_counter()
    for torque in torques:
        env.step(torque)
        if size is not None:
            env.render(size)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--all-cores", action="store_true",
                        help="do not pin to one core or limit llvmpipe's threads")
    args = parser.parse_args()
    one_core = not args.all_cores
    if one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        os.environ["LP_NUM_THREADS"] = "1"
    os.environ.setdefault("MUJOCO_GL", "egl")

    import numpy as np
    from gps_sim import HangerEnv

    env = HangerEnv.from_yaml(CONFIG, "train", render_observations=False)
    dt = env.task.control_dt
    rng = np.random.default_rng(0)
    torques = rng.normal(0.0, 2.0, (EPISODE_STEPS, 7))
    for _, size in CASES:  # warm-up: compile the scenes, create the GL contexts
        episode_time(env, 0, torques[:5], size)

    # Interleave the cases within each repeat so that drift in machine load hits them alike.
    times = {name: [] for name, _ in CASES}
    for repeat in range(args.repeats):
        condition = repeat % len(env.conditions)
        for name, size in CASES:
            times[name].append(episode_time(env, condition, torques, size))
    env.close()

    baseline = float(np.median(times[CASES[0][0]])) / EPISODE_STEPS
    results = {}
    for name, _ in CASES:
        per_step = float(np.median(times[name])) / EPISODE_STEPS
        results[name] = {"ms_per_step": 1e3 * per_step, "steps_per_s": 1.0 / per_step,
                         "real_time_factor": dt / per_step,
                         "frame_ms_over_baseline": 1e3 * (per_step - baseline)}

    print(f"{'case':>14} {'ms/step':>8} {'steps/s':>8} {'x real time':>12} {'frame ms':>9}")
    for name, r in results.items():
        print(f"{name:>14} {r['ms_per_step']:8.2f} {r['steps_per_s']:8.0f} "
              f"{r['real_time_factor']:12.1f} {r['frame_ms_over_baseline']:9.2f}")
    print(json.dumps({"bench": "sim_speed", "one_core": one_core, "control_dt": dt,
                      "episode_steps": EPISODE_STEPS, "repeats": args.repeats,
                      "python": sys.version.split()[0], "results": results}))


if __name__ == "__main__":
    main()
