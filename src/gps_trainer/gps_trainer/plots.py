"""Training plots drawn from the metrics records (matplotlib, no display needed)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_training_curves(records: list[dict], path: str | Path, title: str) -> None:
    """Per condition: sample cost (log scale) and final end-effector distance per iteration,
    successes marked; below, the success rate over conditions of the trajectory samples and,
    where measured, of the policy alone."""
    by_condition = defaultdict(list)
    for r in records:
        by_condition[r["condition"]].append(r)
    fig, (ax_cost, ax_dist, ax_rate) = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    for condition, rows in sorted(by_condition.items()):
        rows.sort(key=lambda r: r["iteration"])
        its = [r["iteration"] for r in rows]
        label = rows[0].get("condition_name", str(condition))
        line, = ax_cost.plot(its, [r["sample_cost"] for r in rows], label=label)
        ax_dist.plot(its, [100 * r["final_distance"] for r in rows], color=line.get_color())
        wins = [r for r in rows if r["success"]]
        ax_dist.scatter([r["iteration"] for r in wins], [100 * r["final_distance"] for r in wins],
                        color=line.get_color(), marker="o", s=18)
    iterations = sorted({r["iteration"] for r in records})
    rates = [100 * sum(r["success"] for r in records if r["iteration"] == i)
             / max(1, sum(1 for r in records if r["iteration"] == i)) for i in iterations]
    ax_rate.plot(iterations, rates, marker="o", color="black", label="trajectory samples")
    checked = sorted({r["iteration"] for r in records if "policy_success" in r})
    if checked:
        policy_rates = [100 * np.mean([r["policy_success"] for r in records
                                       if r["iteration"] == i and "policy_success" in r])
                        for i in checked]
        ax_rate.plot(checked, policy_rates, marker="s", linestyle="--", color="tab:red",
                     label="policy alone, training conditions")
    validated = {r["iteration"]: r["policy_validation_success"] for r in records
                 if "policy_validation_success" in r}
    if validated:
        ax_rate.plot(list(validated), [100 * v for v in validated.values()], marker="^",
                     linestyle=":", color="tab:blue", label="policy alone, validation set")
    if checked or validated:
        ax_rate.legend(fontsize=7)
    ax_cost.set_ylabel("sample cost")
    ax_dist.set_ylabel("final EE distance (cm)\n(dots: success)")
    ax_rate.set_ylabel("success (%)")
    ax_rate.set_ylim(-5, 105)
    ax_rate.set_xlabel("iteration")
    ax_cost.legend(fontsize=7, ncol=2)
    ax_cost.set_title(title)
    for ax in (ax_cost, ax_dist, ax_rate):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = Path(path).with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
