"""The policy networks are the paper's (92,143 parameters at 240x240, conv3 maps 109x109), their
gradients are right, pre-trained vision weights copy over, and bad architectures are refused with
an error naming the key (gps_controller.policies.networks)."""

import json

import pytest
import torch

from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.policies.networks import (CPU_CNN, PAPER_CNN, FullStateMLP, FullStateMLPConfig,
                                              PoseRegressionCNN, PoseRegressionConfig, VisionConfig,
                                              VisionTrunk, VisuomotorCNN, VisuomotorCNNConfig,
                                              build_network, copy_vision_weights)
from gps_controller.typed_config import ConfigError

L = PR2_RIGHT_ARM


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def random_images(n, size, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *size, 3), dtype=torch.uint8, generator=g)


# --- the paper's network ----------------------------------------------------------------------

def test_paper_network_has_92143_parameters_and_109x109_conv3_maps():
    net = VisuomotorCNN(PAPER_CNN)
    # conv 3*49*64+64 + 64*25*32+32 + 32*25*32+32 = 86,336; FC (64+32)*40+40 + 40*40+40 + 40*7+7
    assert n_params(net) == 92_143
    assert n_params(net.vision) == 86_336
    assert PAPER_CNN.conv_map_sizes == [(117, 117), (113, 113), (109, 109)]
    maps = net.vision.feature_maps(random_images(1, (240, 240)))
    assert maps.shape == (1, 32, 109, 109)
    assert (PAPER_CNN.dim_o, PAPER_CNN.dim_u) == (L.dO_config, L.dU)


def test_cpu_preset_runs_at_64x64_with_the_same_weights_count():
    net = VisuomotorCNN(CPU_CNN)
    assert n_params(net) == 92_143 and CPU_CNN.conv_map_sizes[-1] == (21, 21)
    u = net(torch.zeros(5, L.dO_config), random_images(5, (64, 64)))
    points = net.feature_points(random_images(5, (64, 64)))
    assert u.shape == (5, L.dU) and points.shape == (5, 32, 2)
    assert points.abs().max() < 1.0


def test_feature_points_map_back_to_the_input_pixel_that_lit_them():
    # Two centre-tap convs (3x3 stride 2, 3x3 stride 1): receptive field centres at 3 + 2m, so a
    # white pixel at (3 + 2 m_r, 3 + 2 m_c) lights map pixel (m_r, m_c) and nothing else.
    config = VisionConfig(image_size=(21, 15), conv_filters=(1, 1), conv_kernels=(3, 3),
                          conv_strides=(2, 1))
    trunk = VisionTrunk(config).double()
    with torch.no_grad():
        for conv, gain in zip(trunk.convs, (1.0, 1e4)):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, 1, 1] = gain
    for row, col in [(3, 3), (17, 11), (9, 5)]:
        image = torch.zeros(1, 21, 15, 3, dtype=torch.uint8)
        image[0, row, col, 0] = 255
        point = trunk.feature_points_pixels(image)[0, 0]
        torch.testing.assert_close(point, torch.tensor([col, row], dtype=torch.float64))


def test_full_state_network_is_dx_40_40_du():
    net = FullStateMLP()
    assert n_params(net) == (L.dX * 40 + 40) + (40 * 40 + 40) + (40 * L.dU + L.dU)
    assert net(torch.zeros(3, L.dX)).shape == (3, L.dU)
    with pytest.raises(ValueError, match="no images"):
        net(torch.zeros(3, L.dX), random_images(3, (8, 8)))


# --- gradients ---------------------------------------------------------------------------------

TINY_CNN = VisuomotorCNNConfig(image_size=(12, 10), conv_filters=(3, 2), conv_kernels=(3, 3),
                               conv_strides=(2, 1), fc_units=(5,), dim_o=4, dim_u=2,
                               learn_temperature=True)


@pytest.mark.parametrize("make_net, images", [
    (lambda: VisuomotorCNN(TINY_CNN), random_images(3, (12, 10))),
    (lambda: FullStateMLP(FullStateMLPConfig(dim_x=4, fc_units=(5, 5), dim_u=2)), None),
], ids=["cnn", "mlp"])
def test_loss_gradient_matches_finite_differences(make_net, images):
    """The weights are drawn here, after seeding: drawn at collection they depended on the
    state of torch's generator then, and one clean-clone run failed gradcheck with them."""
    torch.manual_seed(0)
    net = make_net().double()
    names = [name for name, _ in net.named_parameters()]
    obs = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 2, dtype=torch.float64)

    def loss(obs, *params):
        out = torch.func.functional_call(net, dict(zip(names, params)), (obs, images))
        return 0.5 * ((out - target) ** 2).sum()

    params = [p.detach().clone().requires_grad_() for p in net.parameters()]
    assert torch.autograd.gradcheck(loss, (obs, *params))


# --- pose regression pre-training --------------------------------------------------------------

def test_pose_regression_vision_weights_copy_into_the_policy():
    pose = PoseRegressionCNN(PoseRegressionConfig(image_size=(64, 64)))
    policy = VisuomotorCNN(CPU_CNN)
    images = random_images(4, (64, 64))
    assert pose(images).shape == (4, 3 * L.n_ee_points)
    assert not torch.equal(pose.vision(images), policy.vision(images))
    copy_vision_weights(pose, policy)
    assert torch.equal(pose.vision(images), policy.vision(images))


def test_copy_refuses_different_vision_layers():
    pose = PoseRegressionCNN(PoseRegressionConfig(image_size=(64, 64), conv_filters=(64, 32, 16)))
    with pytest.raises(ValueError, match="conv_filters"):
        copy_vision_weights(pose, VisuomotorCNN(CPU_CNN))


# --- architecture dicts ------------------------------------------------------------------------

@pytest.mark.parametrize("net", [VisuomotorCNN(CPU_CNN), FullStateMLP()])
def test_architecture_survives_json_and_rebuilds_the_same_network(net):
    arch = json.loads(json.dumps(net.architecture()))
    rebuilt = build_network(arch)
    assert type(rebuilt) is type(net) and rebuilt.config == net.config
    assert rebuilt.architecture() == arch


@pytest.mark.parametrize("architecture, message", [
    ([1, 2], "expected a mapping"),
    ({"image_size": [64, 64]}, "kind: expected one of"),
    ({"kind": "resnet"}, "'resnet'"),
    ({"kind": "visuomotor_cnn", "fc_unit": [40]}, r"unknown key\(s\) \['fc_unit'\]"),
    ({"kind": "visuomotor_cnn", "dim_o": "32"}, "architecture.dim_o: expected an integer"),
    ({"kind": "visuomotor_cnn", "image_size": [10, 10]}, "too small for the conv layers"),
    ({"kind": "visuomotor_cnn", "image_size": [64]}, "architecture.image_size: expected 2 items"),
    ({"kind": "visuomotor_cnn", "conv_kernels": [7, 5]}, "one entry per layer"),
    ({"kind": "visuomotor_cnn", "conv_filters": [64, 0, 32]}, "conv_filters: expected positive"),
    ({"kind": "full_state_mlp", "dim_u": 0}, "dim_u: expected a positive integer"),
])
def test_bad_architecture_is_a_clear_error(architecture, message):
    with pytest.raises(ConfigError, match=message):
        build_network(architecture)


def test_wrong_images_are_refused():
    net = VisuomotorCNN(CPU_CNN)
    obs = torch.zeros(2, L.dO_config)
    with pytest.raises(ValueError, match="expected uint8 N x 64 x 64 x 3"):
        net(obs, random_images(2, (64, 64)).float())
    with pytest.raises(ValueError, match="expected uint8 N x 64 x 64 x 3"):
        net(obs, random_images(2, (64, 48)))
    with pytest.raises(ValueError, match="needs images"):
        net(obs)
