"""Message conversions round-trip exactly, and every malformed message is refused with an error
naming the offending field (gps_controller.messages / message_validation)."""

import json

import numpy as np
import pytest
from gps_msgs.action import RunTrial
from gps_msgs.msg import PolicyUpdate, TrainingProgress

from gps_controller import messages as m
from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.message_validation import (MessageError, validate_policy_update,
                                               validate_target_pose, validate_training_progress,
                                               validate_trial_goal)

RNG = np.random.default_rng(0)
L = PR2_RIGHT_ARM


def record(T=10, images=True):
    return m.SampleRecord.with_layout(
        L, X=RNG.standard_normal((T, L.dX)), U=RNG.standard_normal((T, L.dU)),
        noise=RNG.standard_normal((T, L.dU)), obs_config=RNG.standard_normal((T, L.dO_config)),
        images=RNG.integers(0, 256, (T, 16, 16, 3), dtype=np.uint8) if images else None,
        condition=2, iteration=3, trial_id=4, policy_version=5, noise_seed=6)


def lg_arrays(T=10):
    K = RNG.standard_normal((T, L.dU, L.dX))
    k = RNG.standard_normal((T, L.dU))
    chol = np.tril(RNG.standard_normal((T, L.dU, L.dU)), -1) + np.eye(L.dU) * 0.5
    return K, k, chol


def network_params():
    return m.NetworkPolicyParams(
        architecture={"kind": "full_state_mlp", "hidden": [40, 40]},
        tensors={"fc0.weight": RNG.standard_normal((40, 32)).astype(np.float32),
                 "fc0.bias": RNG.standard_normal(40).astype(np.float32)},
        obs_mean=RNG.standard_normal(32), obs_scale=RNG.uniform(0.5, 2, 32),
        covariance=np.diag(RNG.uniform(0.1, 1, 7)))


# --- round trips ------------------------------------------------------------------------------

def test_sample_round_trip_is_exact():
    given = record()
    back = m.sample_from_msg(m.sample_to_msg(given))
    for name in ("X", "U", "noise", "obs_config", "images"):
        assert np.array_equal(getattr(back, name), getattr(given, name))
    assert back.state_names == L.state_names and sum(back.state_sizes) == L.dX
    assert (back.condition, back.iteration, back.trial_id, back.policy_version,
            back.noise_seed) == (2, 3, 4, 5, 6)


def test_sample_without_images_round_trips():
    back = m.sample_from_msg(m.sample_to_msg(record(images=False)))
    assert back.images is None


def test_linear_gaussian_round_trip_is_exact():
    given = lg_arrays()
    for a, b in zip(m.linear_gaussian_from_msg(m.linear_gaussian_to_msg(*given)), given):
        assert np.array_equal(a, b)


def test_network_policy_round_trip_keeps_float32_tensors():
    given = network_params()
    back = m.network_policy_from_msg(m.network_policy_to_msg(given))
    assert back.architecture == given.architecture
    for name, value in given.tensors.items():
        assert back.tensors[name].dtype == np.float32 and np.array_equal(back.tensors[name], value)
    assert np.array_equal(back.covariance, given.covariance)


def test_image_round_trip_and_bad_image():
    img = RNG.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    assert np.array_equal(m.image_from_msg(m.image_to_msg(img)), img)
    with pytest.raises(ValueError, match="H x W x 3 uint8"):
        m.image_to_msg(img.astype(np.float32))


def test_target_pose_yaw_gives_unit_quaternion():
    msg = m.target_pose_msg("train_00", (0.6, -0.1, 0.8), 0.3, grasp=1)
    validate_target_pose(msg)
    q = msg.pose.pose.orientation
    assert np.isclose(2 * np.arctan2(q.z, q.w), 0.3)


def test_policy_update_carries_exactly_one_payload():
    with pytest.raises(ValueError, match="exactly one"):
        m.policy_update_msg(1)


# --- malformed messages -----------------------------------------------------------------------

def corrupt(msg, path, value):
    *parents, leaf = path.split(".")
    target = msg
    for p in parents:
        target = getattr(target, p)
    setattr(target, leaf, value)
    return msg


BAD_SAMPLES = [
    ("t", 0, "t"),
    ("dt", float("nan"), "dt"),
    ("dim_x", 31, "state_sizes"),
    ("state_sizes", [7, 7, 9], "state_sizes"),
    ("action_names", ["a"], "action_names"),
    ("x", np.zeros(5), "x"),
    ("u", np.full(10 * 7, np.nan), "u"),
    ("noise", np.zeros(3), "noise"),
    ("obs_config", np.full(10 * 32, np.inf), "obs_config"),
]


@pytest.mark.parametrize("path,value,field", BAD_SAMPLES, ids=[b[0] for b in BAD_SAMPLES])
def test_malformed_sample_names_the_field(path, value, field):
    msg = corrupt(m.sample_to_msg(record()), path, value)
    with pytest.raises(MessageError) as err:
        m.sample_from_msg(msg)
    assert err.value.field == field and field in str(err.value)


def test_sample_with_wrong_frame_count_or_size_is_refused():
    msg = m.sample_to_msg(record())
    msg.images = msg.images[:-1]
    with pytest.raises(MessageError, match="images"):
        m.sample_from_msg(msg)
    msg = m.sample_to_msg(record())
    msg.images[4].data = bytes(10)
    with pytest.raises(MessageError, match=r"images\[4\].data"):
        m.sample_from_msg(msg)
    msg = m.sample_to_msg(record())
    msg.images[2].encoding = "bgr8"
    with pytest.raises(MessageError, match=r"images\[2\].encoding"):
        m.sample_from_msg(msg)


BAD_LG = [
    ("dim_u", 6, "gains"),
    ("gains", np.zeros(3), "gains"),
    ("offsets", np.full(70, np.nan), "offsets"),
    ("covariance_cholesky", np.ones(10 * 49), "covariance_cholesky"),
    ("covariance_cholesky", -np.tile(np.eye(7).ravel(), 10), "covariance_cholesky"),
]


@pytest.mark.parametrize("path,value,field", BAD_LG)
def test_malformed_linear_gaussian_names_the_field(path, value, field):
    msg = corrupt(m.linear_gaussian_to_msg(*lg_arrays()), path, value)
    with pytest.raises(MessageError) as err:
        m.linear_gaussian_from_msg(msg)
    assert err.value.field == field


BAD_WEIGHTS = [
    ("architecture", "{not json", "architecture"),
    ("architecture", json.dumps([1, 2]), "architecture"),
    ("obs_scale", np.zeros(32), "obs_scale"),
    ("obs_mean", np.zeros(31), "obs_scale"),
    ("covariance", np.ones(8), "covariance"),
    ("covariance", np.array([[1.0, 2.0], [2.0, 1.0]]).ravel(), "covariance"),
    ("covariance", np.array([[1.0, 0.5], [0.0, 1.0]]).ravel(), "covariance"),
]


@pytest.mark.parametrize("path,value,field", BAD_WEIGHTS)
def test_malformed_policy_weights_names_the_field(path, value, field):
    msg = corrupt(m.network_policy_to_msg(network_params()), path, value)
    with pytest.raises(MessageError) as err:
        m.network_policy_from_msg(msg)
    assert err.value.field == field


def test_malformed_tensor_names_the_tensor():
    msg = m.network_policy_to_msg(network_params())
    msg.tensors[1].shape = [41]
    with pytest.raises(MessageError, match=r"tensors\[1\].data"):
        m.network_policy_from_msg(msg)
    msg = m.network_policy_to_msg(network_params())
    msg.tensors[0].data[3] = np.nan
    with pytest.raises(MessageError, match=r"tensors\[0\].data: contains NaN"):
        m.network_policy_from_msg(msg)


def test_policy_update_checks_version_kind_and_payload():
    lg = m.policy_update_msg(7, linear_gaussian=m.linear_gaussian_to_msg(*lg_arrays()))
    validate_policy_update(lg, last_version=6, dim_x=L.dX, dim_u=L.dU)
    with pytest.raises(MessageError, match="version: 7 is not above the running version 7"):
        validate_policy_update(lg, last_version=7)
    with pytest.raises(MessageError, match="linear_gaussian.dim_x: is 32, expected 14"):
        validate_policy_update(lg, dim_x=14)
    nn = m.policy_update_msg(8, network=m.network_policy_to_msg(network_params()))
    with pytest.raises(MessageError, match="neural_network.obs_mean"):
        validate_policy_update(nn, dim_o=30)
    nn.kind = 9
    with pytest.raises(MessageError, match="kind: unknown policy kind 9"):
        validate_policy_update(nn)
    assert PolicyUpdate.KIND_NEURAL_NETWORK != PolicyUpdate.KIND_LINEAR_GAUSSIAN


def test_malformed_target_pose_names_the_field():
    msg = m.target_pose_msg("", (0, 0, 0), 0.0, 0)
    with pytest.raises(MessageError, match="name"):
        validate_target_pose(msg)
    msg = m.target_pose_msg("c", (0, np.nan, 0), 0.0, 0)
    with pytest.raises(MessageError, match="pose.position"):
        validate_target_pose(msg)
    msg = m.target_pose_msg("c", (0, 0, 0), 0.0, 0)
    msg.pose.pose.orientation.w = 3.0
    with pytest.raises(MessageError, match="pose.orientation"):
        validate_target_pose(msg)


def test_malformed_training_progress_names_the_field():
    msg = TrainingProgress()
    msg.conditions, msg.metric_names, msg.values_by_condition = [0, 1], ["cost"], [1.0, 2.0]
    validate_training_progress(msg)
    msg.values_by_condition = [1.0]
    with pytest.raises(MessageError, match="values_by_condition"):
        validate_training_progress(msg)
    msg.values_by_condition, msg.t, msg.kl_per_step = [1.0, 2.0], 3, [0.0] * 5
    with pytest.raises(MessageError, match="kl_per_step"):
        validate_training_progress(msg)


def test_malformed_trial_goal_names_the_field():
    goal = RunTrial.Goal()
    goal.t, goal.noise_scale = 100, 1.0
    validate_trial_goal(goal)
    goal.noise_scale = float("nan")
    with pytest.raises(MessageError, match="noise_scale"):
        validate_trial_goal(goal)
    goal.noise_scale, goal.t = 1.0, 0
    with pytest.raises(MessageError, match="t: must be positive"):
        validate_trial_goal(goal)
