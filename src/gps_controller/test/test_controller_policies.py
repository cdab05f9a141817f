"""PolicyStore and the controller's policy wrappers (gps_controller.controller_policies): a
PolicyUpdate is validated in full and stored by version; every bad update is refused with a
MessageError naming the field and changes nothing held; a network travels through the message
to a policy with the same outputs as its source; the CNN keeps the feature points of its last
step."""

import json
import math

import numpy as np
import pytest
import torch

from gps_controller.controller_policies import (LATEST, LinearGaussianPolicy, NetworkPolicy,
                                                PolicyStore)
from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.message_validation import MessageError
from gps_controller.messages import (linear_gaussian_to_msg, network_policy_to_msg,
                                     policy_update_msg)
from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import (CPU_CNN, FullStateMLP, FullStateMLPConfig,
                                              VisuomotorCNN, VisuomotorCNNConfig)
from gps_msgs.msg import PolicyUpdate

L = PR2_RIGHT_ARM
T = 10


def lg_parts(seed=0, T=T, dX=L.dX, dU=L.dU):
    rng = np.random.default_rng(seed)
    chol = np.tril(0.1 * rng.standard_normal((T, dU, dU)), -1) + np.eye(dU) * 0.5
    return 0.1 * rng.standard_normal((T, dU, dX)), rng.standard_normal((T, dU)), chol


def lg_update(version, condition=0, seed=0, **parts):
    K, k, chol = lg_parts(seed)
    parts = {"K": K, "k": k, "chol": chol, **parts}
    return policy_update_msg(version, linear_gaussian=linear_gaussian_to_msg(
        parts["K"], parts["k"], parts["chol"]), condition=condition)


def random_covariance(rng, n):
    a = rng.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def mlp_policy(seed=1, config=FullStateMLPConfig()):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = FullStateMLP(config)
    return GaussianPolicy(network, rng.standard_normal(network.dim_obs),
                          rng.uniform(0.5, 2.0, network.dim_obs),
                          random_covariance(rng, network.dim_u), device="cpu")


def cnn_policy(seed=2, config=CPU_CNN):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    network = VisuomotorCNN(config)
    return GaussianPolicy(network, rng.standard_normal(network.dim_obs),
                          rng.uniform(0.5, 2.0, network.dim_obs),
                          random_covariance(rng, network.dim_u), device="cpu")


def net_update(version, policy):
    return policy_update_msg(version, network=network_policy_to_msg(policy.to_params()))


@pytest.fixture
def store():
    """A store holding version 3 (controller, condition 0) and 4 (a full-state network)."""
    store = PolicyStore(L)
    store.apply(lg_update(3))
    store.apply(net_update(4, mlp_policy()))
    return store


def snapshot(store):
    return store.last_version, store.get(3), store.get(4), store.get(LATEST)


def assert_refused(store, msg, field, words=""):
    before = snapshot(store)
    with pytest.raises(MessageError) as info:
        store.apply(msg)
    assert info.value.field == field, str(info.value)
    assert words in str(info.value)
    after = snapshot(store)
    assert after[0] == before[0] and all(a is b for a, b in zip(after[1:], before[1:]))
    if msg.version not in (LATEST, 3, 4):
        with pytest.raises(KeyError):
            store.get(msg.version)


def test_increasing_versions_are_accepted_and_latest_is_the_newest():
    store = PolicyStore(L)
    with pytest.raises(KeyError, match="held: \\[\\]"):
        store.get(LATEST)
    first = store.apply(lg_update(1, condition=0))
    assert isinstance(first, LinearGaussianPolicy)
    assert (first.version, first.condition, first.horizon, first.kind) == (1, 0, T,
                                                                          "linear_gaussian")
    assert store.get(LATEST) is first
    second = store.apply(lg_update(2, condition=1, seed=1))
    third = store.apply(net_update(7, mlp_policy()))
    assert isinstance(third, NetworkPolicy) and third.horizon is None
    assert store.last_version == 7
    assert store.get(LATEST) is third
    assert store.get(1) is first and store.get(2) is second and store.get(7) is third
    with pytest.raises(KeyError, match="policy version 5 is not held; held: \\[1, 2, 7\\]"):
        store.get(5)


def test_the_decoded_controller_is_the_one_sent():
    K, k, chol = lg_parts(4)
    policy = PolicyStore(L).apply(lg_update(1, K=K, k=k, chol=chol))
    np.testing.assert_array_equal(policy.controller.K, K)
    np.testing.assert_array_equal(policy.controller.k, k)
    np.testing.assert_allclose(policy.controller.covariance, chol @ np.swapaxes(chol, 1, 2))
    x, eps = np.random.default_rng(0).standard_normal(L.dX), np.ones(L.dU)
    np.testing.assert_allclose(policy.act(3, x, None, None, eps), K[3] @ x + k[3] + chol[3] @ eps,
                               rtol=1e-12)


def test_a_new_policy_replaces_the_one_it_supersedes():
    store = PolicyStore(L)
    store.apply(lg_update(1, condition=0))
    store.apply(lg_update(2, condition=1))
    store.apply(net_update(3, mlp_policy()))
    store.apply(lg_update(4, condition=0))        # replaces version 1 (same condition)
    store.apply(net_update(5, mlp_policy(seed=5)))  # replaces version 3 (older network)
    for gone in (1, 3):
        with pytest.raises(KeyError, match="held: \\[2, 4, 5\\]"):
            store.get(gone)


@pytest.mark.parametrize("version", [4, 3, 1, 0, -2])
def test_a_version_not_above_the_last_is_refused(store, version):
    assert_refused(store, lg_update(version), "version", "not above the running version 4")


def test_the_version_is_checked_for_networks_too(store):
    assert_refused(store, net_update(4, mlp_policy(9)), "version")


@pytest.mark.parametrize("parts, field, words", [
    (dict(K=np.zeros((T, L.dU, L.dX - 1))), "linear_gaussian.dim_x", "is 31, expected 32"),
    (dict(K=np.zeros((T, 6, L.dX)), k=np.zeros((T, 6)), chol=np.tile(np.eye(6), (T, 1, 1))),
     "linear_gaussian.dim_u", "is 6, expected 7"),
])
def test_wrong_dimensions_are_refused(store, parts, field, words):
    assert_refused(store, lg_update(5, **parts), field, words)


def test_arrays_that_disagree_with_the_declared_sizes_are_refused(store):
    msg = lg_update(5)
    msg.linear_gaussian.gains = msg.linear_gaussian.gains[:-1]
    assert_refused(store, msg, "linear_gaussian.gains", "expected 2240")
    msg = lg_update(5)
    msg.linear_gaussian.offsets = np.r_[msg.linear_gaussian.offsets, 0.0]
    assert_refused(store, msg, "linear_gaussian.offsets", "has 71 values")
    msg = lg_update(5)
    msg.linear_gaussian.t = T + 1
    assert_refused(store, msg, "linear_gaussian.gains")


@pytest.mark.parametrize("name, field", [("K", "gains"), ("k", "offsets"),
                                         ("chol", "covariance_cholesky")])
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_values_are_refused(store, name, field, bad):
    parts = dict(zip(("K", "k", "chol"), lg_parts(6)))
    parts[name] = parts[name].copy()
    parts[name].flat[5 if name != "chol" else 0] = bad
    assert_refused(store, lg_update(5, **parts), f"linear_gaussian.{field}",
                   "NaN or infinity")


@pytest.mark.parametrize("edit, words", [
    (lambda chol: chol.__setitem__((2, 3, 3), 0.0), "non-positive diagonal"),
    (lambda chol: chol.__setitem__((0, 1, 1), -0.5), "non-positive diagonal"),
    (lambda chol: chol.__setitem__((4, 0, 6), 0.3), "above the diagonal"),
])
def test_a_covariance_that_is_not_positive_definite_is_refused(store, edit, words):
    _, _, chol = lg_parts(7)
    edit(chol)
    assert_refused(store, lg_update(5, chol=chol), "linear_gaussian.covariance_cholesky", words)


def test_a_network_covariance_that_is_not_positive_definite_is_refused(store):
    msg = net_update(5, mlp_policy())
    cov = np.eye(L.dU)
    cov[2, 2] = -1.0
    msg.neural_network.covariance = cov.ravel()
    assert_refused(store, msg, "neural_network.covariance", "not positive definite")
    cov = np.eye(L.dU)
    cov[0, 1] = 0.5
    msg.neural_network.covariance = cov.ravel()
    assert_refused(store, msg, "neural_network.covariance", "not symmetric")


@pytest.mark.parametrize("architecture, words", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "JSON object with a 'kind'"),
    ('{"fc_units": [40, 40]}', "JSON object with a 'kind'"),
    ('{"kind": "transformer"}', "cannot build the network"),
    ('{"kind": "full_state_mlp", "fc_units": [41, 40]}', "tensors do not fit"),
    ('{"kind": "full_state_mlp", "fc_units": "many"}', "cannot build the network"),
])
def test_a_garbage_architecture_is_refused(store, architecture, words):
    msg = net_update(5, mlp_policy())
    msg.neural_network.architecture = architecture
    assert_refused(store, msg, "neural_network.architecture", words)


def test_nan_weights_are_refused(store):
    msg = net_update(5, mlp_policy())
    data = np.array(msg.neural_network.tensors[1].data)
    data[0] = np.nan
    msg.neural_network.tensors[1].data = data
    assert_refused(store, msg, "neural_network.tensors[1].data", "NaN or infinity")


@pytest.mark.parametrize("policy, words", [
    (lambda: mlp_policy(config=FullStateMLPConfig(dim_x=20)), "takes 20 inputs"),
    (lambda: cnn_policy(config=VisuomotorCNNConfig(image_size=(64, 64), dim_o=30)),
     "takes 30 inputs"),
])
def test_a_network_whose_input_does_not_fit_the_robot_is_refused(store, policy, words):
    assert_refused(store, net_update(5, policy()), "neural_network.architecture", words)


def test_a_network_with_the_wrong_number_of_torques_is_refused(store):
    policy = mlp_policy(config=FullStateMLPConfig(dim_u=6))
    assert_refused(store, net_update(5, policy), "neural_network.covariance",
                   "expected dim_u = 7")


def test_an_unknown_kind_is_refused(store):
    msg = lg_update(5)
    msg.kind = 7
    assert_refused(store, msg, "kind", "unknown policy kind 7")


def test_a_refused_update_does_not_block_the_next_valid_one(store):
    bad = lg_update(5)
    bad.linear_gaussian.offsets = bad.linear_gaussian.offsets[:3]
    with pytest.raises(MessageError):
        store.apply(bad)
    assert store.apply(lg_update(5)).version == 5 and store.last_version == 5


@pytest.mark.parametrize("make", [mlp_policy, cnn_policy])
def test_a_network_update_acts_exactly_like_its_source(make):
    source = make()
    policy = PolicyStore(L).apply(net_update(1, source))
    assert isinstance(policy, NetworkPolicy)
    assert policy.uses_images == source.uses_images
    rng = np.random.default_rng(0)
    for t in range(4):
        x, config = rng.standard_normal(L.dX), rng.standard_normal(L.dO_config)
        noise = rng.standard_normal(L.dU)
        image = (rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) if source.uses_images
                 else None)
        expected = source.act(config, image, noise) if source.uses_images else source.act(
            x, None, noise)
        np.testing.assert_array_equal(policy.act(t, x, config, image, noise), expected)
    if source.uses_images:
        assert policy.image_size == (64, 64)
    else:
        assert policy.image_size is None and policy.feature_points is None


def test_the_cnn_keeps_the_feature_points_of_its_last_step():
    policy = NetworkPolicy(1, cnn_policy())
    assert policy.feature_points is None
    rng = np.random.default_rng(1)
    for _ in range(3):
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        policy.act(0, None, rng.standard_normal(L.dO_config), image, np.zeros(L.dU))
        with torch.no_grad():
            expected = policy.policy.network.feature_points(
                torch.from_numpy(image[None].copy()))[0].double().numpy()
        points = policy.feature_points
        assert points.shape == (CPU_CNN.n_feature_points, 2)
        np.testing.assert_array_equal(points, expected)
        assert np.all(np.abs(points) <= 1.0)


def test_the_update_message_kinds_are_the_two_known():
    assert {PolicyUpdate.KIND_LINEAR_GAUSSIAN, PolicyUpdate.KIND_NEURAL_NETWORK} == {
        lg_update(1).kind, net_update(1, mlp_policy()).kind}
    assert json.loads(net_update(1, mlp_policy()).neural_network.architecture)["kind"] == \
        "full_state_mlp"
