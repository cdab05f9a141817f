"""A training iteration's metric records as a gps_msgs/TrainingProgress message (for dashboards
and logs listening on the trainer's ~/progress topic)."""

from __future__ import annotations

import numpy as np

from gps_msgs.msg import TrainingProgress

METRICS = ("sample_cost", "success", "policy_success", "policy_validation_success",
           "final_distance", "kl_policy_traj", "nu_mean", "eta", "epsilon", "kl", "policy_loss")


def progress_msg(iteration: int, stage: str, records: list[dict], stamp=None
                 ) -> TrainingProgress:
    """One row per condition record, the METRICS columns (NaN where a record lacks one), and the
    policy-trajectory KL per time step when the records carry it."""
    msg = TrainingProgress()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.iteration, msg.phase = int(iteration), stage
    msg.conditions = [int(r["condition"]) for r in records]
    msg.metric_names = list(METRICS)
    msg.values_by_condition = [float(r.get(name, np.nan)) for r in records for name in METRICS]
    per_step = [r.get("kl_policy_traj_per_step") for r in records]
    if per_step and all(p is not None for p in per_step):
        msg.t = len(per_step[0])
        msg.kl_per_step = [float(v) for p in per_step for v in p]
    return msg
