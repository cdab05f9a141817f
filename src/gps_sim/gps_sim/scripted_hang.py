"""A scripted torque controller that hangs the hanger: proof that a condition is feasible.

It plans in joint space with inverse kinematics and tracks the plan with a computed-torque PD
law at the policy's rate (20 Hz, torques clipped to the effort limits by the environment), so a
success shows that the learner's action space can solve the condition within one episode.

Plan: from the start pose, move the hook onto the bar's axis beyond its free end (in the hung
orientation), then slide it along the axis until the EE points reach their targets, i.e. thread
the bar through the hook; then hold.
"""

from __future__ import annotations

import numpy as np

from gps_sim.env import HangerEnv

APPROACH_FRACTION = 0.4
THREAD_FRACTION = 0.4
CLEARANCE_BEYOND_END = 0.06
PATH_POINTS = 12
NATURAL_FREQUENCY = 8.0
"""rad/s of the tracking loop; with dt = 0.05 the discrete PD loop stays well damped and stable."""
IK_TOLERANCE = 1e-3


def plan_hang(env: HangerEnv, steps: int) -> np.ndarray:
    """Right-arm joint references for `steps` control steps (steps x 7) from the current state.

    Both moves are straight lines of the EE points, solved by IK point by point: the approach
    from the start to the bar's axis beyond its free end, then the threading along the axis.
    """
    q_start = env.joint_state().position[:env.layout.dU]
    bar = env.rack_bar()
    targets = env.target_points()
    beyond_end = targets - (bar.half_length + CLEARANCE_BEYOND_END) * bar.axis
    approach_steps = int(APPROACH_FRACTION * steps)
    thread_steps = int(THREAD_FRACTION * steps)
    approach = _line_in_joint_space(env, env.ee_points(), beyond_end, q_start)
    thread = _line_in_joint_space(env, beyond_end, targets, approach[-1])
    hold = np.repeat(thread[-1][None], steps - approach_steps - thread_steps, axis=0)
    return np.concatenate([_resample(approach, approach_steps), _resample(thread, thread_steps),
                           hold])


def track(env: HangerEnv, reference: np.ndarray) -> None:
    """Follow `reference` (steps x 7) with tau = M (kp e + kd e_dot) + bias, one step per row."""
    kp, kd = NATURAL_FREQUENCY**2, 2.0 * NATURAL_FREQUENCY
    dt = env.task.control_dt
    velocity_reference = np.gradient(reference, dt, axis=0)
    for q_ref, qd_ref in zip(reference, velocity_reference):
        state = env.joint_state()
        q, qdot = state.position[:env.layout.dU], state.velocity[:env.layout.dU]
        acceleration = kp * (q_ref - q) + kd * (qd_ref - qdot)
        env.step(env.right_arm_mass_matrix() @ acceleration + env.right_arm_bias_torque())


def scripted_hang(env: HangerEnv, condition: int | str, seed: int = 0) -> bool:
    """Reset to `condition`, run the scripted hang for one episode, return success()."""
    env.reset(condition, seed)
    track(env, plan_hang(env, env.task.episode_steps))
    return env.success()


def _line_in_joint_space(env: HangerEnv, points_from: np.ndarray, points_to: np.ndarray,
                         q_init: np.ndarray) -> np.ndarray:
    """IK solutions (PATH_POINTS x 7) along the straight line between two EE point sets."""
    path, q = [], q_init
    for fraction in np.linspace(0.0, 1.0, PATH_POINTS):
        result = env.right_arm_ik(points_from + fraction * (points_to - points_from), q)
        if fraction == 1.0 and result.max_error > IK_TOLERANCE:
            raise ValueError(f"hang waypoint out of the right arm's reach "
                             f"(IK error {1000 * result.max_error:.1f} mm)")
        q = result.q
        path.append(q)
    return np.array(path)


def _resample(path: np.ndarray, steps: int) -> np.ndarray:
    """`steps` references along `path` (first point excluded), eased in and out in time."""
    s = np.linspace(0.0, 1.0, len(path))
    s_new = np.linspace(0.0, 1.0, steps + 1)[1:]
    s_new = 3 * s_new**2 - 2 * s_new**3
    return np.stack([np.interp(s_new, s, path[:, j]) for j in range(path.shape[1])], axis=1)
