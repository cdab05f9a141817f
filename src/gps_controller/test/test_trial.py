"""A Trial (gps_controller.trial) driven like the controller node drives it, without ROS: each
step gets the arm's joint reading from a HangerEnv and the env is stepped with the torque the
trial returns. The sample must be what the trainer's in-process rollouts record: X = env.state(),
the configuration = env.observation().config, U = K x + k + L eps (before clipping) and eps from
gps_controller.noise with the trial's seed. plan_trial refuses goals that cannot run."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import math  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from gps_controller.controller_client import TrialRequest  # noqa: E402
from gps_controller.controller_policies import LinearGaussianPolicy  # noqa: E402
from gps_controller.layout import (PR2_RIGHT_ARM, RIGHT_ARM_EFFORT_LIMITS,  # noqa: E402
                                   RIGHT_ARM_JOINTS)
from gps_controller.noise import NoiseConfig, exploration_noise  # noqa: E402
from gps_controller.policies.linear_gaussian import LinearGaussianController  # noqa: E402
from gps_controller.sensor_reading import JointReading  # noqa: E402
from gps_controller.trial import Trial, TrialError, plan_trial  # noqa: E402

L = PR2_RIGHT_ARM
DT = 0.05
T = 25


def controller(seed, T=T, dX=L.dX, dU=L.dU):
    """Random small gains, offsets large enough that some steps clip, random covariances."""
    rng = np.random.default_rng(seed)
    K = 0.5 * rng.standard_normal((T, dU, dX))
    k = rng.uniform(-40.0, 40.0, (T, dU))
    a = rng.standard_normal((T, dU, dU))
    covariance = 0.5 * a @ np.swapaxes(a, 1, 2) + np.eye(dU)
    return LinearGaussianController(K, k, covariance)


def reading(env, stamp_ns=0):
    js = env.joint_state()
    return JointReading(js.position[:7].copy(), js.velocity[:7].copy(), stamp_ns)


def request(env, condition, **kw):
    kw.setdefault("T", T)
    return TrialRequest(policy_version=1, condition=condition,
                        ee_points_tool=env.ee_points_in_tool(), ee_targets=env.target_points(),
                        **kw)


@pytest.mark.parametrize("condition, sigma", [(0, 0.0), (1, 2.0)])
def test_the_record_equals_the_simulator_state_and_the_controller_law(env, kinematics,
                                                                     condition, sigma):
    env.reset(condition)
    lg = controller(condition)
    policy = LinearGaussianPolicy(1, lg, condition)
    goal = request(env, condition, noise_seed=42, noise_scale=0.7, noise_smooth_sigma=sigma,
                   iteration=3, trial_id=9).goal()
    trial = Trial(plan_trial(goal, policy, L), L, kinematics, RIGHT_ARM_EFFORT_LIMITS, DT)
    states, configs, torques = [], [], []
    for t in range(T):
        states.append(env.state())
        configs.append(env.observation().config)
        command = trial.step(reading(env, t), None)
        assert command.fault == ""
        assert np.all(np.abs(command.torque) <= RIGHT_ARM_EFFORT_LIMITS)
        torques.append(command.torque)
        env.step(command.torque)
    record, final_state = trial.finish(reading(env, T))

    np.testing.assert_allclose(record.X, np.array(states), rtol=0, atol=1e-12)
    np.testing.assert_allclose(record.obs_config, np.array(configs), rtol=0, atol=1e-12)
    np.testing.assert_allclose(final_state, env.state(), rtol=0, atol=1e-12)

    config = (NoiseConfig(smooth=True, sigma=sigma) if sigma > 0 else NoiseConfig(smooth=False))
    eps = 0.7 * exploration_noise(T, L.dU, np.random.default_rng(42), config)
    np.testing.assert_array_equal(record.noise, eps)
    chol = np.linalg.cholesky(lg.covariance)
    expected_u = (np.einsum("tux,tx->tu", lg.K, record.X) + lg.k
                  + np.einsum("tuv,tv->tu", chol, eps))
    np.testing.assert_allclose(record.U, expected_u, rtol=1e-12, atol=1e-12)
    # what went to the arm is U clipped to the limits; the record keeps U itself
    np.testing.assert_array_equal(np.array(torques),
                                  np.clip(record.U, -RIGHT_ARM_EFFORT_LIMITS,
                                          RIGHT_ARM_EFFORT_LIMITS))
    clipped = int(np.sum(np.any(np.abs(record.U) > RIGHT_ARM_EFFORT_LIMITS, axis=1)))
    assert clipped > 0 and trial.clipped_steps == clipped
    assert not record.aborted and record.abort_reason == ""
    assert (record.condition, record.iteration, record.trial_id) == (condition, 3, 9)
    assert (record.policy_version, record.noise_seed, record.dt) == (1, 42, DT)
    assert record.state_names == L.state_names and record.action_names == list(RIGHT_ARM_JOINTS)
    assert record.images is None


def test_recorded_images_are_the_frames_given_at_each_step(env, kinematics):
    env.reset(0)
    policy = LinearGaussianPolicy(1, controller(5, T=4), 0)
    plan = plan_trial(request(env, 0, T=4, record_images=True).goal(), policy, L)
    assert plan.needs_images
    trial = Trial(plan, L, kinematics, RIGHT_ARM_EFFORT_LIMITS, DT)
    frames = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)
    for frame in frames:
        env.step(trial.step(reading(env), frame).torque)
    frames_copy = frames.copy()
    frames[:] = 0   # the trial keeps copies
    record, _ = trial.finish(reading(env))
    np.testing.assert_array_equal(record.images, frames_copy)


def test_abort_gives_the_steps_run_so_far_marked_aborted(env, kinematics):
    env.reset(1)
    policy = LinearGaussianPolicy(1, controller(7), 1)
    trial = Trial(plan_trial(request(env, 1, noise_seed=3).goal(), policy, L), L, kinematics,
                  RIGHT_ARM_EFFORT_LIMITS, DT)
    states = []
    for _ in range(6):
        states.append(env.state())
        env.step(trial.step(reading(env), None).torque)
    with pytest.raises(TrialError, match="has run 6 of 25 steps"):
        trial.finish(reading(env))
    record = trial.abort("joint states are stale")
    assert record.aborted and record.abort_reason == "joint states are stale"
    assert record.X.shape == (6, L.dX) and record.U.shape == (6, L.dU)
    assert record.noise.shape == (6, L.dU) and record.obs_config.shape == (6, L.dO_config)
    np.testing.assert_allclose(record.X, np.array(states), atol=1e-12)
    np.testing.assert_array_equal(record.noise, trial.plan.noise[:6])


def test_a_non_finite_action_is_zero_torque_and_not_recorded(env, kinematics):
    env.reset(0)
    lg = controller(2, T=3)
    K = lg.K.copy()
    K[1] = 1e308     # K x overflows at step 1
    policy = LinearGaussianPolicy(1, LinearGaussianController(K, lg.k, lg.covariance), 0)
    trial = Trial(plan_trial(request(env, 0, T=3).goal(), policy, L), L, kinematics,
                  RIGHT_ARM_EFFORT_LIMITS, DT)
    env.step(trial.step(reading(env), None).torque)
    with np.errstate(over="ignore", invalid="ignore"):
        command = trial.step(reading(env), None)
    assert "non-finite" in command.fault
    assert np.array_equal(command.torque, np.zeros(7))
    assert trial.t == 1
    assert trial.abort(command.fault).X.shape == (1, L.dX)


def test_a_finished_trial_takes_no_more_steps(env, kinematics):
    env.reset(0)
    policy = LinearGaussianPolicy(1, controller(1, T=2), 0)
    trial = Trial(plan_trial(request(env, 0, T=2).goal(), policy, L), L, kinematics,
                  RIGHT_ARM_EFFORT_LIMITS, DT)
    trial.step(reading(env), None)
    trial.step(reading(env), None)
    assert trial.done
    with pytest.raises(TrialError, match="already run all its steps"):
        trial.step(reading(env), None)


def test_the_start_stamp_travels_into_the_plan(env):
    from builtin_interfaces.msg import Time
    env.reset(0)
    policy = LinearGaussianPolicy(1, controller(1), 0)
    plan = plan_trial(request(env, 0, start_stamp=Time(sec=12, nanosec=345)).goal(), policy, L)
    assert plan.start_stamp_ns == 12_000_000_345


@pytest.mark.parametrize("change, words", [
    (dict(T=0), "t must be positive, got 0"),
    (dict(T=-3), "t must be positive"),
    (dict(T=T + 1), f"t = {T + 1} exceeds the controller's horizon {T}"),
    (dict(condition=1), "belongs to condition 0, the trial is on condition 1"),
    (dict(ee_points_tool=np.zeros((2, 3))), "ee_points_tool has 6 values, expected 3 points x 3"),
    (dict(ee_points_tool=np.zeros(10)), "ee_points_tool has 10 values"),
    (dict(ee_targets=np.zeros((4, 3))), "ee_targets has 12 values"),
    (dict(ee_targets=np.r_[np.zeros(8), np.nan]), "ee_targets contains NaN or infinity"),
    (dict(ee_points_tool=np.r_[np.inf, np.zeros(8)]), "ee_points_tool contains NaN"),
    (dict(noise_scale=math.nan), "noise_scale must be finite and >= 0"),
    (dict(noise_scale=-1.0), "noise_scale must be finite and >= 0"),
    (dict(noise_smooth_sigma=-0.5), "noise_smooth_sigma must be finite and >= 0"),
    (dict(noise_smooth_sigma=math.inf), "noise_smooth_sigma must be finite and >= 0"),
])
def test_plan_trial_refuses_goals_that_cannot_run(env, change, words):
    env.reset(0)
    policy = LinearGaussianPolicy(1, controller(1), 0)
    fields = dict(policy_version=1, condition=0, T=T, ee_points_tool=env.ee_points_in_tool(),
                  ee_targets=env.target_points())
    fields.update(change)
    with pytest.raises(TrialError, match=words.replace("(", r"\(").replace(")", r"\)")):
        plan_trial(TrialRequest(**fields).goal(), policy, L)
