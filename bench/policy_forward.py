"""Forward time of the visuomotor CNN policy for one control step (batch 1) on the CPU, median and
99th percentile.

For 64x64 and 240x240 frames, with torch's default thread count and with one thread: the
policy's `act` (validation, whitening, noise) against the bare network forward pass as the
baseline in the same run. A 20 Hz controller has 50 ms per step. Prints a table and a JSON line.

    . scripts/env.sh && python bench/policy_forward.py [--repeats 200]
"""

import argparse
import json
import time

import numpy as np
import torch

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import VisuomotorCNN, VisuomotorCNNConfig


def times_ms(fn, repeats):
    """Median and 99th percentile of `repeats` calls after 5 warm-up calls, in ms."""
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times)), 1e3 * float(np.percentile(times, 99))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
        torch.set_num_threads(threads)
        for size in (64, 240):
            policy = GaussianPolicy(VisuomotorCNN(VisuomotorCNNConfig(image_size=(size, size))),
                                    device="cpu")
            obs = rng.standard_normal(policy.dim_obs)
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            noise = rng.standard_normal(policy.dim_u)
            obs_t = torch.zeros(1, policy.dim_obs)
            img_t = torch.from_numpy(image[None].copy())

            def network_only():
                with torch.inference_mode():
                    policy.network(obs_t, img_t)

            act, act_p99 = times_ms(lambda: policy.act(obs, image, noise), args.repeats)
            bare, bare_p99 = times_ms(network_only, args.repeats)
            rows.append({"threads": threads, "image": size, "act_ms": act, "act_p99_ms": act_p99,
                         "network_ms": bare, "network_p99_ms": bare_p99,
                         "act_over_network": act / bare})
    print(f"{'threads':>7} {'image':>7} {'act p50/p99 ms':>15} {'network p50/p99 ms':>19} "
          f"{'ratio':>6}")
    for r in rows:
        print(f"{r['threads']:>7} {r['image']:>7} {r['act_ms']:7.2f}/{r['act_p99_ms']:6.2f} "
              f"{r['network_ms']:11.2f}/{r['network_p99_ms']:6.2f} {r['act_over_network']:6.2f}")
    print(json.dumps({"bench": "policy_forward", "repeats": args.repeats, "results": rows}))


if __name__ == "__main__":
    main()
