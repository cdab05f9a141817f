"""Trajectory optimisation on the hanger task over several seeds: when does every training
condition first succeed, how long does a run take, and does anything fail (exception, NaN,
no positive-definite solution, a dual search that ends without meeting its KL bound)?

Column "success % per 15 itr": the share of samples that succeed in iterations 0-14, 15-29, ...
(over all conditions), to compare learning speed and later stability between configs.
Column "unconverged": the condition-iterations whose dual search ended with |KL - epsilon| at
or above its tolerance; "over": those of them whose KL is above the bound (the step went
further than the trust region allows; the others stopped at min_eta with the constraint
inactive).

Each seed is a full run folder under --out (config, metrics, checkpoints, plot). Runs go in
parallel processes (--jobs); a line on stderr as each finishes. Prints a table and one JSON
line.

    . scripts/env.sh && python bench/trajectory_seeds.py --seeds 0 1 2 3 4 --iterations 15
"""

import argparse
import json
import math
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from gps_trainer.run_folder import RunFolder
from gps_trainer.train_trajectories import first_full_success, load_config, train


WINDOW = 15


def success_by_window(records: list[dict], iterations: int) -> list[float]:
    """Percent of samples that succeed in each window of WINDOW iterations (NaN: none run)."""
    rates = []
    for start in range(0, iterations, WINDOW):
        rows = [r for r in records if start <= r["iteration"] < start + WINDOW]
        rates.append(100.0 * sum(r["success"] for r in rows) / len(rows) if rows else math.nan)
    return rates


def run_seed(config_path: str, out: str, seed: int, iterations: int) -> dict:
    started = time.perf_counter()
    try:
        config = load_config(config_path, seed=seed, iterations=iterations)
        records = train(config, RunFolder(Path(out) / f"seed_{seed}"), log=lambda *_: None)
        error = None
    except Exception:  # a failure is a result here, reported with its traceback
        records, error = [], traceback.format_exc(limit=3)
    numbers = [r[k] for r in records for k in ("sample_cost", "kl", "eta", "final_distance")]
    last = [r for r in records if r["iteration"] == iterations - 1]
    return {
        "seed": seed, "wall_s": time.perf_counter() - started, "error": error,
        "non_finite": sum(not math.isfinite(v) for v in numbers),
        "unconverged": sum(not r["converged"] for r in records),
        "kl_over_epsilon": sum(not r["converged"] and r["kl"] > r["epsilon"] for r in records),
        "first_full_success": first_full_success(records),
        "successes_last_iteration": sum(r["success"] for r in last),
        "success_percent_by_window": success_by_window(records, iterations),
        "conditions": len(last),
        "full_success_iterations": sorted({r["iteration"] for r in records} - {
            r["iteration"] for r in records if not r["success"]}),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/hanger_trajectories.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--out", default="runs/trajectory_seeds")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run_seed, args.config, args.out, seed, args.iterations)
                   for seed in args.seeds]
        for done, future in enumerate(as_completed(futures), 1):
            r = future.result()
            print(f"seed {r['seed']} finished in {r['wall_s']:.0f} s "
                  f"({done}/{len(futures)}){': failed' if r['error'] else ''}",
                  file=sys.stderr, flush=True)
        results = [future.result() for future in futures]
    print(f"{'seed':>4} {'first all-success itr':>22} {'last itr successes':>19} "
          f"{'success % per 15 itr':>20} {'wall s':>7} {'NaN':>4} {'unconverged':>11} "
          f"{'over':>4}  error")
    for r in results:
        windows = " ".join(f"{v:.0f}" for v in r["success_percent_by_window"])
        print(f"{r['seed']:>4} {str(r['first_full_success']):>22} "
              f"{r['successes_last_iteration']:>9}/{r['conditions']:<9} {windows:>20} "
              f"{r['wall_s']:7.1f} "
              f"{r['non_finite']:>4} {r['unconverged']:>11} {r['kl_over_epsilon']:>4}  "
              f"{(r['error'] or '').strip().splitlines()[-1:] or ''}")
    print(json.dumps({"bench": "trajectory_seeds", "iterations": args.iterations,
                      "jobs": args.jobs, "total_wall_s": time.perf_counter() - started,
                      "results": results}))


if __name__ == "__main__":
    main()
