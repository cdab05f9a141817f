"""Throughput of the BADMM policy step (`PolicyOptimizer.update`) for the paper's CNN.

For 64x64 and 240x240 images at batch 32 (the batch of the project's CPU reference figures; the
policy step's default is 25): end-to-end SGD and the head-only phase through `update`, against a
bare torch loop (forward + backward + Adam on one fixed batch already in memory, no sampling,
gathering or whitening) on the same network in the same run. images/s counts the images of the
SGD steps (for head-only, the pairs per second including the one-off feature caching); the call
time adds validation, the transfer to the device and the two full-data loss passes. Prints a
table and a JSON line.

    . scripts/env.sh && python bench/policy_sgd.py [--steps-64 100] [--steps-240 6]
"""

import argparse
import copy
import json
import time

import numpy as np
import torch

from gps_controller.policies.gaussian_policy import GaussianPolicy, resolve_device
from gps_controller.policies.networks import VisuomotorCNN, VisuomotorCNNConfig
from gps_trainer.policy_opt import PolicyOptConfig, PolicyOptimizer

BATCH = 32
PAIRS = {64: (4, 50), 240: (1, 40)}


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_data(rng, size, n, t, dim_o, dim_u):
    a = rng.standard_normal((n, t, dim_u, dim_u))
    return (rng.standard_normal((n, t, dim_o)),
            rng.integers(0, 256, (n, t, size, size, 3), dtype=np.uint8),
            rng.standard_normal((n, t, dim_u)),
            a @ a.swapaxes(-1, -2) + np.eye(dim_u),
            np.ones((n, t)))


def bare_loop(network, data, steps, device):
    """Seconds for `steps` forward + backward + Adam steps on one fixed batch."""
    obs, images, target = (torch.as_tensor(x.reshape(-1, *x.shape[2:])[:BATCH]).to(device)
                           for x in data[:3])
    obs, target = obs.float(), target.float()
    adam = torch.optim.Adam(network.parameters(), lr=1e-3, weight_decay=5e-3)

    def step():
        loss = ((network(obs, images) - target) ** 2).sum(dim=-1).mean()
        adam.zero_grad(set_to_none=True)
        loss.backward()
        adam.step()

    step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return time.perf_counter() - start


def timed_update(policy, data, device, iterations, fc_only_iterations):
    """The stats of an `update` after a one-step warm-up call on the same policy."""
    warm_up = PolicyOptConfig(iterations=1, fc_only_iterations=1, batch_size=BATCH,
                              device=str(device))
    PolicyOptimizer(policy, warm_up).update(*data)
    config = PolicyOptConfig(iterations=iterations, fc_only_iterations=fc_only_iterations,
                             batch_size=BATCH, device=str(device))
    return PolicyOptimizer(policy, config).update(*data)


def row(size, mode, steps, seconds, call_seconds):
    return {"image": size, "mode": mode, "steps": steps, "batch": BATCH,
            "images_per_s": steps * BATCH / seconds, "s_per_100_steps": 100.0 * seconds / steps,
            "call_s": call_seconds}


def bench_size(size, steps, fc_steps, device, rng):
    torch.manual_seed(0)
    network = VisuomotorCNN(VisuomotorCNNConfig(image_size=(size, size)))
    data = make_data(rng, size, *PAIRS[size], network.dim_obs, network.dim_u)
    bare = bare_loop(copy.deepcopy(network).to(device), data, steps, device)
    end_to_end = timed_update(GaussianPolicy(copy.deepcopy(network), device=device), data,
                              device, steps, 0)
    head_only = timed_update(GaussianPolicy(copy.deepcopy(network), device=device), data,
                             device, 0, fc_steps)
    return [row(size, "bare torch loop", steps, bare, bare),
            row(size, "update end-to-end", steps, end_to_end.train_seconds, end_to_end.seconds),
            row(size, "update head-only", fc_steps, head_only.fc_only_seconds,
                head_only.seconds)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-64", type=int, default=100)
    parser.add_argument("--steps-240", type=int, default=6)
    parser.add_argument("--head-steps", type=int, default=500)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    rows = (bench_size(64, args.steps_64, args.head_steps, device, rng)
            + bench_size(240, args.steps_240, args.head_steps, device, rng))
    print(f"device {device}, {torch.get_num_threads()} threads, batch {BATCH}")
    print(f"{'image':>5} {'mode':<18} {'steps':>5} {'images/s':>9} {'s/100 steps':>11} "
          f"{'call s':>7}")
    for r in rows:
        print(f"{r['image']:>5} {r['mode']:<18} {r['steps']:>5} {r['images_per_s']:9.1f} "
              f"{r['s_per_100_steps']:11.2f} {r['call_s']:7.2f}")
    print(json.dumps({"bench": "policy_sgd", "device": str(device),
                      "threads": torch.get_num_threads(), "batch": BATCH, "results": rows}))


if __name__ == "__main__":
    main()
