"""The Gaussian policy u = f((o - mean) / scale) + L eps acts as specified, survives every way it
travels (one file, NetworkPolicyParams, a gps_msgs/PolicyWeights message) with identical outputs,
and refuses bad inputs with a clear ValueError (gps_controller.policies.gaussian_policy)."""

import numpy as np
import pytest
import torch

from gps_controller import messages
from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.policies.gaussian_policy import (GaussianPolicy, PolicyFileError,
                                                     resolve_device, whitening_from_data)
from gps_controller.policies.networks import CPU_CNN, FullStateMLP, VisuomotorCNN

L = PR2_RIGHT_ARM
RNG = np.random.default_rng(0)


def random_covariance(n):
    a = RNG.standard_normal((n, n))
    return a @ a.T + n * np.eye(n)


def cnn_policy():
    torch.manual_seed(0)
    return GaussianPolicy(VisuomotorCNN(CPU_CNN), obs_mean=RNG.standard_normal(L.dO_config),
                          obs_scale=RNG.uniform(0.5, 2.0, L.dO_config),
                          covariance=random_covariance(L.dU), device="cpu")


def mlp_policy():
    torch.manual_seed(1)
    return GaussianPolicy(FullStateMLP(), obs_mean=RNG.standard_normal(L.dX),
                          obs_scale=RNG.uniform(0.5, 2.0, L.dX),
                          covariance=random_covariance(L.dU), device="cpu")


def inputs(policy, n=4):
    obs = RNG.standard_normal((n, policy.dim_obs))
    images = RNG.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8) if policy.uses_images else None
    return obs, images


# --- acting ------------------------------------------------------------------------------------

def test_mean_is_the_network_on_whitened_observations():
    policy = cnn_policy()
    obs, images = inputs(policy)
    whitened = torch.as_tensor((obs - policy.obs_mean) / policy.obs_scale, dtype=torch.float32)
    with torch.no_grad():
        expected = policy.network(whitened, torch.from_numpy(images)).double().numpy()
    np.testing.assert_allclose(policy.mean_actions(obs, images), expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("make", [cnn_policy, mlp_policy])
def test_act_adds_cholesky_scaled_noise_to_the_mean(make):
    policy = make()
    obs, images = inputs(policy, n=1)
    noise = RNG.standard_normal(L.dU)
    mean = policy.mean_actions(obs, images)[0]
    image = None if images is None else images[0]
    np.testing.assert_array_equal(policy.act(obs[0], image), mean)
    u = policy.act(obs[0], image, noise)
    chol = policy.chol_covariance
    np.testing.assert_allclose(chol @ chol.T, policy.covariance, atol=1e-12)
    assert np.allclose(np.triu(chol, 1), 0.0)
    np.testing.assert_allclose(u - mean, chol @ noise, atol=1e-12)


def test_mean_actions_do_not_depend_on_the_batch_size():
    policy = cnn_policy()
    obs, images = inputs(policy, n=7)
    np.testing.assert_allclose(policy.mean_actions(obs, images, batch_size=3),
                               policy.mean_actions(obs, images), rtol=1e-6, atol=1e-6)


def test_whitening_from_data_is_mean_and_floored_std():
    obs = np.column_stack([np.arange(5.0), np.full(5, 3.0)])
    mean, scale = whitening_from_data(obs)
    np.testing.assert_allclose(mean, [2.0, 3.0])
    np.testing.assert_allclose(scale, [np.sqrt(2.0), 1e-3])


def test_device_is_cuda_when_available_unless_named():
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


# --- transport ---------------------------------------------------------------------------------

def assert_same_policy(a, b):
    obs, images = inputs(a)
    np.testing.assert_array_equal(a.mean_actions(obs, images), b.mean_actions(obs, images))
    np.testing.assert_array_equal(a.covariance, b.covariance)
    np.testing.assert_array_equal(a.obs_mean, b.obs_mean)
    np.testing.assert_array_equal(a.obs_scale, b.obs_scale)
    assert a.architecture == b.architecture


@pytest.mark.parametrize("make", [cnn_policy, mlp_policy])
def test_file_round_trip_gives_identical_outputs(make, tmp_path):
    policy = make()
    policy.save(tmp_path / "policy.pt")
    assert_same_policy(policy, GaussianPolicy.load(tmp_path / "policy.pt", device="cpu"))


@pytest.mark.parametrize("make", [cnn_policy, mlp_policy])
def test_params_round_trip_gives_identical_outputs(make):
    policy = make()
    params = policy.to_params()
    assert params.architecture["kind"] == policy.network.kind
    assert all(t.dtype == np.float32 for t in params.tensors.values())
    assert_same_policy(policy, GaussianPolicy.from_params(params, device="cpu"))


@pytest.mark.parametrize("make", [cnn_policy, mlp_policy])
def test_policy_weights_message_round_trip_gives_identical_outputs(make):
    policy = make()
    msg = messages.network_policy_to_msg(policy.to_params())
    back = GaussianPolicy.from_params(messages.network_policy_from_msg(msg), device="cpu")
    assert_same_policy(policy, back)


def test_file_that_is_not_a_policy_is_refused(tmp_path):
    torch.save({"architecture": {"kind": "full_state_mlp"}}, tmp_path / "other.pt")
    with pytest.raises(PolicyFileError, match="other.pt: not a saved policy, missing"):
        GaussianPolicy.load(tmp_path / "other.pt")


def test_unreadable_policy_files_are_refused_naming_the_file(tmp_path):
    """Text, a truncated policy file, a pickled object (not tensors and plain data) and a policy
    whose tensors do not fit its architecture: PolicyFileError naming the file, never a load."""
    policy = mlp_policy()
    policy.save(tmp_path / "good.pt")
    whole = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "text.pt").write_text("not a policy\n")
    (tmp_path / "truncated.pt").write_bytes(whole[:len(whole) // 2])
    torch.save({"architecture": policy.architecture, "state_dict": policy.network},
               tmp_path / "pickled.pt")
    data = torch.load(tmp_path / "good.pt", weights_only=True)
    data["state_dict"]["head.out.weight"] = data["state_dict"]["head.out.weight"][:, :-1]
    torch.save(data, tmp_path / "misfit.pt")
    for name, reason in (("text", "torch cannot read it"), ("truncated", "torch cannot read it"),
                         ("pickled", "torch cannot read it"), ("misfit", "wrong shape")):
        with pytest.raises(PolicyFileError, match=f"{name}.pt: .*{reason}"):
            GaussianPolicy.load(tmp_path / f"{name}.pt")
    with pytest.raises(FileNotFoundError, match="policy file not found: .*absent.pt"):
        GaussianPolicy.load(tmp_path / "absent.pt")


def test_tensors_that_do_not_fit_the_architecture_are_refused():
    params = mlp_policy().to_params()
    params.tensors["head.out.weight"] = params.tensors["head.out.weight"][:, :-1]
    with pytest.raises(ValueError, match=r"do not fit architecture 'full_state_mlp': wrong shape: "
                       r"head.out.weight \[7, 39\] \(expected \[7, 40\]\)"):
        GaussianPolicy.from_params(params)
    params.tensors["extra"] = params.tensors.pop("head.out.weight")
    with pytest.raises(ValueError, match="missing: head.out.weight; unexpected: extra"):
        GaussianPolicy.from_params(params)


# --- validation --------------------------------------------------------------------------------

def test_bad_observations_are_refused():
    policy = cnn_policy()
    obs, images = inputs(policy, n=1)
    with pytest.raises(ValueError, match="obs: expected dO with dO = 32, got shape \\(31,\\)"):
        policy.act(obs[0, :-1], images[0])
    with pytest.raises(ValueError, match="obs: expected N x dO"):
        policy.mean_actions(obs[0], images)
    obs[0, 5] = np.nan
    with pytest.raises(ValueError, match=r"obs: contains NaN or inf at index \[5\]"):
        policy.act(obs[0], images[0])
    with pytest.raises(ValueError, match="noise: expected shape"):
        policy.act(np.zeros(L.dO_config), images[0], np.zeros(L.dU + 1))


def test_bad_images_are_refused():
    policy = cnn_policy()
    obs, images = inputs(policy, n=2)
    with pytest.raises(ValueError, match=r"images: expected uint8 of shape \(64, 64, 3\)"):
        policy.act(obs[0], images[0, :32])
    with pytest.raises(ValueError, match="expected uint8"):
        policy.mean_actions(obs, images.astype(np.float32))
    with pytest.raises(ValueError, match=r"\(2, 64, 64, 3\)"):
        policy.mean_actions(obs, images[:1])
    with pytest.raises(ValueError, match="visuomotor_cnn needs images"):
        policy.act(obs[0])
    with pytest.raises(ValueError, match="full_state_mlp takes no images"):
        mlp_policy().act(np.zeros(L.dX), images[0])


def test_bad_whitening_and_covariance_are_refused():
    policy = mlp_policy()
    with pytest.raises(ValueError, match="obs_scale: must be positive"):
        policy.set_whitening(np.zeros(L.dX), np.zeros(L.dX))
    with pytest.raises(ValueError, match=r"obs_mean: expected shape \(32,\)"):
        policy.set_whitening(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="not positive definite"):
        policy.set_covariance(-np.eye(L.dU))
    with pytest.raises(ValueError, match="not symmetric"):
        policy.set_covariance(np.eye(L.dU) + np.triu(np.ones((L.dU, L.dU)), 1))
    with pytest.raises(ValueError, match="covariance: contains NaN"):
        policy.set_covariance(np.full((L.dU, L.dU), np.inf))
