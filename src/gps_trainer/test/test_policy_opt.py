"""The BADMM policy step: precision-weighted SGD of the policy mean, closed-form covariance."""

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import nn

from gps_controller.policies.gaussian_policy import GaussianPolicy
from gps_controller.policies.networks import (FullStateMLP, FullStateMLPConfig, VisuomotorCNN,
                                              VisuomotorCNNConfig)
from gps_trainer.policy_opt import (PolicyOptConfig, PolicyOptimizer, mean_actions,
                                    policy_covariance, weighted_quadratic_loss)

TINY_CNN = VisuomotorCNNConfig(image_size=(32, 32), conv_filters=(4, 4), conv_kernels=(5, 3),
                               conv_strides=(2, 1), fc_units=(8,), dim_o=3, dim_u=2)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: a second thread only adds synchronisation (and contention on CI)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class LinearNetwork(nn.Module):
    """u = W o~ + c: a policy class that represents affine targets exactly."""

    kind = "linear"
    uses_images = False

    def __init__(self, dim_obs, dim_u):
        super().__init__()
        self.head = nn.Linear(dim_obs, dim_u)
        self.dim_obs, self.dim_u = dim_obs, dim_u

    def forward(self, obs, images=None):
        return self.head(obs)


def _random_precisions(rng, shape, dU):
    a = rng.standard_normal((*shape, dU, dU))
    return a @ a.swapaxes(-1, -2) + 0.5 * np.eye(dU)


def _mlp_policy(seed, dim_x=4, dim_u=2, units=(16,)):
    torch.manual_seed(seed)
    return GaussianPolicy(FullStateMLP(FullStateMLPConfig(dim_x=dim_x, fc_units=units,
                                                          dim_u=dim_u)), device="cpu")


def _cnn_policy(seed):
    torch.manual_seed(seed)
    return GaussianPolicy(VisuomotorCNN(TINY_CNN), device="cpu")


def _cnn_data(rng, n=2, t=6):
    obs = rng.standard_normal((n, t, TINY_CNN.dim_o))
    images = rng.integers(0, 256, (n, t, 32, 32, 3), dtype=np.uint8)
    mu = rng.standard_normal((n, t, TINY_CNN.dim_u))
    return obs, images, mu, _random_precisions(rng, (n, t), TINY_CNN.dim_u), np.ones((n, t))


def _config(**overrides):
    return PolicyOptConfig(**{"iterations": 50, "fc_only_iterations": 0, "batch_size": 8,
                              "device": "cpu", **overrides})


def _vision_state(policy):
    return {k: v.clone() for k, v in policy.network.vision.state_dict().items()}


def _unchanged(before, module):
    return all(torch.equal(before[k], v) for k, v in module.state_dict().items())


def test_loss_gradient_matches_finite_differences():
    # Given a tiny float64 CNN, the gradient of the loss with respect to every parameter (conv,
    # spatial softmax, head) from autograd agrees with central differences.
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    config = VisuomotorCNNConfig(image_size=(12, 12), conv_filters=(3, 2), conv_kernels=(3, 3),
                                 conv_strides=(2, 1), fc_units=(5,), dim_o=3, dim_u=2)
    network = VisuomotorCNN(config).double()
    obs_mean, obs_scale = rng.standard_normal(3), np.array([0.5, 1.0, 2.0])
    obs, mu = rng.standard_normal((1, 4, 3)), rng.standard_normal((1, 4, 2))
    images = rng.integers(0, 256, (1, 4, 12, 12, 3), dtype=np.uint8)
    precision = _random_precisions(rng, (1, 4), 2)
    obs_t, mu_t = torch.from_numpy(obs[0]), torch.from_numpy(mu[0])
    images_t, precision_t = torch.from_numpy(images[0]), torch.from_numpy(precision[0])
    names = [name for name, _ in network.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for p in network.parameters())

    def loss_of(*values):
        state = dict(zip(names, values))
        whitened = (obs_t - torch.from_numpy(obs_mean)) / torch.from_numpy(obs_scale)
        mean = torch.func.functional_call(network, state, (whitened, images_t))
        return weighted_quadratic_loss(mean, mu_t, precision_t)

    assert torch.autograd.gradcheck(loss_of, params, eps=1e-6, atol=1e-6, rtol=1e-4)


def test_reported_loss_is_the_weighted_quadratic_over_the_sum_of_weights():
    # L = sum w (f - mu)^T P (f - mu) / sum w, computed here in numpy from the policy's means.
    rng = np.random.default_rng(1)
    policy = _mlp_policy(1)
    obs = rng.standard_normal((3, 5, 4))
    mu = rng.standard_normal((3, 5, 2))
    precision = _random_precisions(rng, (3, 5), 2)
    weights = rng.uniform(0.0, 2.0, (3, 5))
    weights[0, 1] = 0.0
    stats = PolicyOptimizer(policy, _config(iterations=0)).update(obs, None, mu, precision,
                                                                  weights)
    diff = mean_actions(policy, obs) - mu
    expected = np.einsum("nt,nti,ntij,ntj->", weights, diff, precision, diff) / weights.sum()
    assert stats.loss_before == pytest.approx(expected, rel=1e-5)
    assert stats.loss_after == pytest.approx(expected, rel=1e-5)


def test_closed_form_covariance_minimises_the_weighted_kl():
    # Sigma = [sum w P / sum w]^-1 against a numerical minimisation over Cholesky factors of
    # sum_i w_i KL(N(m, S) || N(m_i, P_i^-1)).
    rng = np.random.default_rng(2)
    dU, n = 3, 7
    precision = _random_precisions(rng, (n,), dU)
    weights = rng.uniform(0.1, 3.0, n)
    m, means = rng.standard_normal(dU), rng.standard_normal((n, dU))
    rows, cols = np.tril_indices(dU)

    def weighted_kl(theta):
        chol = np.zeros((dU, dU))
        chol[rows, cols] = theta
        S = chol @ chol.T
        logdet_s = 2.0 * np.sum(np.log(np.abs(np.diag(chol))))
        total = 0.0
        for w, P, mi in zip(weights, precision, means):
            _, logdet_p = np.linalg.slogdet(P)
            total += w * 0.5 * (np.trace(P @ S) + (m - mi) @ P @ (m - mi) - dU
                                - logdet_p - logdet_s)
        return total

    result = scipy.optimize.minimize(weighted_kl, np.eye(dU)[rows, cols], method="BFGS",
                                     options={"gtol": 1e-10})
    chol = np.zeros((dU, dU))
    chol[rows, cols] = result.x
    np.testing.assert_allclose(policy_covariance(precision, weights), chol @ chol.T, atol=1e-5)


def test_update_sets_the_closed_form_covariance():
    rng = np.random.default_rng(3)
    policy = _mlp_policy(3)
    obs, mu = rng.standard_normal((2, 4, 4)), rng.standard_normal((2, 4, 2))
    precision = _random_precisions(rng, (2, 4), 2)
    weights = rng.uniform(0.5, 1.5, (2, 4))
    PolicyOptimizer(policy, _config(iterations=1)).update(obs, None, mu, precision, weights)
    mean_precision = np.einsum("nt,ntij->ij", weights, precision) / weights.sum()
    np.testing.assert_allclose(policy.covariance, np.linalg.inv(mean_precision), rtol=1e-10)


def test_sgd_recovers_affine_targets_on_held_out_observations():
    # Given targets mu = A o + b that a linear policy represents exactly, SGD drives L to ~0 and
    # the policy predicts A o + b on observations it has not seen.
    rng = np.random.default_rng(4)
    A, b = rng.standard_normal((2, 4)), rng.standard_normal(2)
    obs = rng.standard_normal((8, 25, 4)) * [1.0, 3.0, 0.2, 10.0] + 5.0
    mu = obs @ A.T + b
    precision = np.broadcast_to(np.eye(2), (8, 25, 2, 2))
    torch.manual_seed(4)
    policy = GaussianPolicy(LinearNetwork(4, 2).double(), device="cpu")
    config = _config(iterations=1500, batch_size=25, learning_rate=5e-2, weight_decay=0.0)
    stats = PolicyOptimizer(policy, config).update(obs, None, mu, precision, np.ones((8, 25)))
    assert stats.loss_after < 1e-6 * stats.loss_before
    held_out = rng.standard_normal((1, 50, 4)) * [1.0, 3.0, 0.2, 10.0] + 5.0
    np.testing.assert_allclose(mean_actions(policy, held_out), held_out @ A.T + b, atol=1e-3)


def test_mlp_drives_the_loss_near_zero():
    rng = np.random.default_rng(5)
    A, b = rng.standard_normal((2, 4)), rng.standard_normal(2)
    obs = rng.standard_normal((4, 25, 4))
    mu = obs @ A.T + b
    precision = np.broadcast_to(np.eye(2), (4, 25, 2, 2))
    policy = _mlp_policy(5, units=(32, 32))
    config = _config(iterations=1500, batch_size=25, weight_decay=0.0)
    stats = PolicyOptimizer(policy, config).update(obs, None, mu, precision, np.ones((4, 25)))
    assert stats.loss_after < 1e-2 * stats.loss_before


def _fit_errors(precision_diag):
    # Two nonlinear targets through a 3-unit hidden layer: the network cannot fit both, so the
    # precision decides which dimension gets the capacity.
    rng = np.random.default_rng(6)
    obs = rng.uniform(-2.0, 2.0, (4, 50, 2))
    mu = np.stack([np.sin(2.0 * obs[..., 0]), np.cos(2.0 * obs[..., 1])], axis=-1)
    precision = np.broadcast_to(np.diag(precision_diag), (4, 50, 2, 2))
    policy = _mlp_policy(6, dim_x=2, units=(3,))
    config = _config(iterations=1500, batch_size=25, learning_rate=1e-2, weight_decay=0.0)
    PolicyOptimizer(policy, config).update(obs, None, mu, precision, np.ones((4, 50)))
    return np.sqrt(np.mean((mean_actions(policy, obs) - mu) ** 2, axis=(0, 1)))


def test_precision_weighting_fits_the_emphasised_dimension_more_tightly():
    first = _fit_errors([100.0, 1.0])
    second = _fit_errors([1.0, 100.0])
    assert first[0] < second[0]
    assert second[1] < first[1]


def test_a_zero_weight_drops_the_step():
    # Changing the target, precision and observation of a zero-weight step changes nothing.
    rng = np.random.default_rng(7)
    obs, mu = rng.standard_normal((3, 6, 4)), rng.standard_normal((3, 6, 2))
    precision = _random_precisions(rng, (3, 6), 2)
    weights = rng.uniform(0.5, 2.0, (3, 6))
    weights[1, 2] = 0.0
    results = []
    for shift in (0.0, 50.0):
        obs[1, 2] += shift
        mu[1, 2] += shift
        precision[1, 2] += shift * np.eye(2)
        policy = _mlp_policy(7)
        stats = PolicyOptimizer(policy, _config()).update(obs, None, mu, precision, weights)
        results.append((policy, stats))
    (first, first_stats), (second, second_stats) = results
    for a, b in zip(first.network.parameters(), second.network.parameters()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(first.covariance, second.covariance)
    assert first_stats.loss_after == second_stats.loss_after


def test_whitening_is_set_from_the_first_call_only():
    rng = np.random.default_rng(8)
    policy = _mlp_policy(8)
    optimizer = PolicyOptimizer(policy, _config(iterations=2))
    obs = rng.standard_normal((2, 10, 4)) * 3.0 + 7.0
    args = (rng.standard_normal((2, 10, 2)), _random_precisions(rng, (2, 10), 2),
            np.ones((2, 10)))
    optimizer.update(obs, None, *args)
    flat = obs.reshape(-1, 4)
    np.testing.assert_allclose(policy.obs_mean, flat.mean(axis=0))
    np.testing.assert_allclose(policy.obs_scale, flat.std(axis=0))
    optimizer.update(obs * 10.0 - 4.0, None, *args)
    np.testing.assert_allclose(policy.obs_mean, flat.mean(axis=0))
    np.testing.assert_allclose(policy.obs_scale, flat.std(axis=0))


def test_head_only_phase_keeps_the_vision_layers_and_end_to_end_changes_them():
    rng = np.random.default_rng(9)
    data = _cnn_data(rng)
    policy = _cnn_policy(9)
    vision, head = _vision_state(policy), {k: v.clone() for k, v in
                                           policy.network.head.state_dict().items()}
    stats = PolicyOptimizer(policy, _config(iterations=0, fc_only_iterations=40,
                                            learning_rate=1e-2)).update(*data)
    assert stats.fc_only_steps == 40 and stats.steps == 0
    assert _unchanged(vision, policy.network.vision)
    assert not _unchanged(head, policy.network.head)
    assert stats.loss_after < stats.loss_before

    PolicyOptimizer(policy, _config(iterations=5)).update(*data)
    assert not _unchanged(vision, policy.network.vision)


def test_head_only_warm_up_runs_on_the_first_calls_only():
    rng = np.random.default_rng(10)
    data = _cnn_data(rng)
    optimizer = PolicyOptimizer(_cnn_policy(10), _config(iterations=2, fc_only_iterations=3,
                                                         fc_only_calls=2))
    steps = [optimizer.update(*data).fc_only_steps for _ in range(3)]
    assert steps == [3, 3, 0]


def test_same_seed_gives_identical_parameters():
    rng = np.random.default_rng(11)
    data = _cnn_data(rng)

    def trained(seed):
        policy = _cnn_policy(11)
        PolicyOptimizer(policy, _config(iterations=5, fc_only_iterations=5, seed=seed)
                        ).update(*data)
        return list(policy.network.parameters())

    first, again, other = trained(1), trained(1), trained(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not all(torch.equal(a, b) for a, b in zip(first, other))


def _bad(data, name, value):
    names = ("obs", "images", "target_mean", "target_precision", "weights")
    return [value if n == name else d for n, d in zip(names, data)]


def _with_nan(array, index):
    array = array.copy()
    array[index] = np.nan
    return array


@pytest.mark.parametrize("name, make", [
    ("obs", lambda d: d[0][..., :2]),
    ("obs", lambda d: _with_nan(d[0], (0, 1, 2))),
    ("images", lambda d: d[1].astype(np.float32)),
    ("images", lambda d: d[1][:, :, :16]),
    ("images", lambda d: None),
    ("target_mean", lambda d: d[2][:, :3]),
    ("target_mean", lambda d: _with_nan(d[2], (1, 0, 0))),
    ("target_precision", lambda d: d[3] + np.array([[0.0, 1.0], [0.0, 0.0]])),
    ("target_precision", lambda d: -d[3]),
    ("weights", lambda d: -d[4]),
    ("weights", lambda d: 0.0 * d[4]),
    ("weights", lambda d: d[4][0]),
])
def test_bad_arguments_raise_a_value_error_naming_them(name, make):
    data = _cnn_data(np.random.default_rng(12))
    optimizer = PolicyOptimizer(_cnn_policy(12), _config(iterations=1))
    with pytest.raises(ValueError, match=name):
        optimizer.update(*_bad(data, name, make(data)))


def test_images_for_a_network_without_vision_are_rejected():
    rng = np.random.default_rng(13)
    optimizer = PolicyOptimizer(_mlp_policy(13), _config())
    with pytest.raises(ValueError, match="images"):
        optimizer.update(rng.standard_normal((1, 2, 4)), np.zeros((1, 2, 8, 8, 3), np.uint8),
                         np.zeros((1, 2, 2)), np.broadcast_to(np.eye(2), (1, 2, 2, 2)),
                         np.ones((1, 2)))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="batch_size"):
        PolicyOptConfig(batch_size=0)
    with pytest.raises(ValueError, match="iterations"):
        PolicyOptConfig(iterations=-1)


def test_mean_actions_keeps_the_n_by_t_layout():
    rng = np.random.default_rng(14)
    obs, images = _cnn_data(rng, n=2, t=3)[:2]
    policy = _cnn_policy(14)
    means = mean_actions(policy, obs, images, batch_size=4)
    assert means.shape == (2, 3, TINY_CNN.dim_u)
    np.testing.assert_allclose(means[1, 2], policy.act(obs[1, 2], images[1, 2]), rtol=1e-6)
