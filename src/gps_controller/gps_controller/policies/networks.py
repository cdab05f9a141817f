"""The networks of the policies (the paper's visuomotor architecture and its pre-training), with
their architectures as typed configs.

- `VisuomotorCNN`: the paper's policy, o = (image, configuration) -> mean torques.
      conv 64@7x7 stride 2 -> conv 32@5x5 -> conv 32@5x5 (ReLU, no pooling, no padding)
      -> spatial softmax -> expected (x, y) per map (64 feature points)
      -> concat robot configuration (32) -> FC 40 -> FC 40 (ReLU) -> linear 7.
  At 240x240 the conv3 maps are 109x109 and the network has 92,143 parameters.
- `FullStateMLP`: the small full-state network x -> 40 -> 40 -> u that stands in for the CNN
  during trajectory pre-training.
- `PoseRegressionCNN`: the same vision layers + one linear layer regressing the 3 target points;
  trained first, its vision weights are copied into the policy (`copy_vision_weights`).

Images enter every network as uint8 N x H x W x 3 RGB tensors (the camera and message layout);
the vision trunk converts them to float N x 3 x H x W scaled to [0, 1]. Vector inputs are the
already-whitened observation (see `gaussian_policy`). `build_network` rebuilds a network from its
architecture dict, which is how a policy travels in a gps_msgs/PolicyWeights message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from gps_controller.layout import PR2_RIGHT_ARM
from gps_controller.policies.spatial_softmax import SpatialSoftmax
from gps_controller.typed_config import ConfigError, from_mapping, to_mapping


def _positive_ints(owner: str, name: str, values, allow_empty: bool = False) -> tuple[int, ...]:
    values = tuple(values)
    bad = any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in values)
    if bad or (not values and not allow_empty):
        raise ConfigError(f"{owner}.{name}: expected positive integers, got {list(values)}")
    return values


def _check_positive(owner: str, **values: int) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ConfigError(f"{owner}.{name}: expected a positive integer, got {value!r}")


@dataclass(frozen=True)
class VisionConfig:
    """The vision layers: convolutions (ReLU, no padding, no pooling) and the spatial softmax.

    image_size is (height, width) of the input images; the defaults are the paper's network.
    """

    image_size: tuple[int, int] = (240, 240)
    image_channels: int = 3
    conv_filters: tuple[int, ...] = (64, 32, 32)
    conv_kernels: tuple[int, ...] = (7, 5, 5)
    conv_strides: tuple[int, ...] = (2, 1, 1)
    softmax_temperature: float = 1.0
    learn_temperature: bool = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        for name in ("image_size", "conv_filters", "conv_kernels", "conv_strides"):
            object.__setattr__(self, name, _positive_ints(owner, name, getattr(self, name)))
        if len(self.image_size) != 2:
            raise ConfigError(f"{owner}.image_size: expected [height, width], "
                              f"got {list(self.image_size)}")
        _check_positive(owner, image_channels=self.image_channels)
        if not len(self.conv_filters) == len(self.conv_kernels) == len(self.conv_strides):
            raise ConfigError(f"{owner}: conv_filters, conv_kernels and conv_strides must have one "
                              f"entry per layer, got {len(self.conv_filters)}, "
                              f"{len(self.conv_kernels)} and {len(self.conv_strides)}")
        if not self.softmax_temperature > 0.0:
            raise ConfigError(f"{owner}.softmax_temperature: must be positive, "
                              f"got {self.softmax_temperature}")
        last = self.conv_map_sizes[-1]
        if min(last) < 1:
            raise ConfigError(f"{owner}.image_size: {list(self.image_size)} is too small for the "
                              f"conv layers (last map would be {last[0]} x {last[1]})")

    @property
    def conv_map_sizes(self) -> list[tuple[int, int]]:
        """(height, width) after each conv layer: (n - kernel) // stride + 1 (no padding)."""
        sizes, (h, w) = [], self.image_size
        for k, s in zip(self.conv_kernels, self.conv_strides):
            h, w = (h - k) // s + 1, (w - k) // s + 1
            sizes.append((h, w))
        return sizes

    @property
    def n_feature_points(self) -> int:
        return self.conv_filters[-1]

    def vision_fields(self) -> dict[str, Any]:
        """The fields that define the vision layers, whatever the subclass."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(VisionConfig)}


@dataclass(frozen=True)
class VisuomotorCNNConfig(VisionConfig):
    """The paper's policy network: vision layers, then fc_units on [feature points, config]."""

    fc_units: tuple[int, ...] = (40, 40)
    dim_o: int = PR2_RIGHT_ARM.dO_config
    dim_u: int = PR2_RIGHT_ARM.dU

    def __post_init__(self) -> None:
        super().__post_init__()
        owner = type(self).__name__
        object.__setattr__(self, "fc_units", _positive_ints(owner, "fc_units", self.fc_units))
        _check_positive(owner, dim_o=self.dim_o, dim_u=self.dim_u)


@dataclass(frozen=True)
class PoseRegressionConfig(VisionConfig):
    """Vision layers + one linear layer to the target points (3 points x 3 coordinates)."""

    dim_pose: int = 3 * PR2_RIGHT_ARM.n_ee_points

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_positive(type(self).__name__, dim_pose=self.dim_pose)


@dataclass(frozen=True)
class FullStateMLPConfig:
    """The full-state network x -> fc_units (ReLU) -> u of trajectory pre-training; no hidden
    units make it a linear policy u = W x + b."""

    dim_x: int = PR2_RIGHT_ARM.dX
    fc_units: tuple[int, ...] = (40, 40)
    dim_u: int = PR2_RIGHT_ARM.dU

    def __post_init__(self) -> None:
        owner = type(self).__name__
        object.__setattr__(self, "fc_units", _positive_ints(owner, "fc_units", self.fc_units,
                                                            allow_empty=True))
        _check_positive(owner, dim_x=self.dim_x, dim_u=self.dim_u)


PAPER_CNN = VisuomotorCNNConfig()
"""The paper's network: 240x240 images, 92,143 parameters."""

CPU_CNN = VisuomotorCNNConfig(image_size=(64, 64))
"""The same layers on 64x64 images, the size that trains at a useful rate on a CPU."""


class MLP(nn.Module):
    """Linear layers with ReLU between them and a linear output."""

    def __init__(self, dim_in: int, hidden: tuple[int, ...], dim_out: int) -> None:
        super().__init__()
        sizes = (dim_in, *hidden)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.out = nn.Linear(sizes[-1], dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.hidden:
            x = torch.relu(layer(x))
        return self.out(x)


class VisionTrunk(nn.Module):
    """uint8 images N x H x W x 3 -> feature points N x 2C, [x_0, y_0, x_1, y_1, ...]."""

    def __init__(self, config: VisionConfig) -> None:
        super().__init__()
        self.config = config
        channels = (config.image_channels, *config.conv_filters)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, k, stride=s)
            for c_in, c_out, k, s in zip(channels[:-1], channels[1:], config.conv_kernels,
                                         config.conv_strides))
        self.softmax = SpatialSoftmax(config.softmax_temperature, config.learn_temperature)

    def check_images(self, images: torch.Tensor) -> None:
        """Raise ValueError unless `images` is uint8 N x H x W x C of the configured size."""
        h, w = self.config.image_size
        expected = (h, w, self.config.image_channels)
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images: expected uint8 N x {h} x {w} x {expected[2]}, got "
                             f"{images.dtype} {tuple(images.shape)}")

    def feature_maps(self, images: torch.Tensor) -> torch.Tensor:
        """The last conv layer's ReLU maps, N x C x h x w."""
        self.check_images(images)
        dtype = self.convs[0].weight.dtype
        x = images.permute(0, 3, 1, 2).to(dtype) / 255.0
        for conv in self.convs:
            x = torch.relu(conv(x))
        return x

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.feature_maps(images))

    def feature_points_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """The feature points in input-image pixel coordinates, N x C x 2 as (column, row), with
        pixel centres at integers: a point at the centre of last-map pixel m sits at the centre
        of its receptive field, offset + stride * m, in the input image."""
        points = self.forward(images).reshape(images.shape[0], -1, 2)
        h, w = self.config.conv_map_sizes[-1]
        map_size = points.new_tensor([w, h])
        map_pixel = ((points + 1.0) * map_size - 1.0) / 2.0
        stride, offset = 1, 0.0
        for k, s in zip(self.config.conv_kernels, self.config.conv_strides):
            offset += stride * (k - 1) / 2.0
            stride *= s
        return offset + stride * map_pixel


class VisuomotorCNN(nn.Module):
    """The paper's policy network: mean torques from (whitened configuration, image)."""

    kind: ClassVar[str] = "visuomotor_cnn"
    uses_images: ClassVar[bool] = True

    def __init__(self, config: VisuomotorCNNConfig = PAPER_CNN) -> None:
        super().__init__()
        self.config = config
        self.vision = VisionTrunk(config)
        self.head = MLP(2 * config.n_feature_points + config.dim_o, config.fc_units, config.dim_u)

    @property
    def dim_obs(self) -> int:
        return self.config.dim_o

    @property
    def dim_u(self) -> int:
        return self.config.dim_u

    def forward(self, obs: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """obs: N x dim_o whitened configuration; images: uint8 N x H x W x 3 -> N x dim_u."""
        if images is None:
            raise ValueError("the visuomotor CNN needs images")
        return self.head(torch.cat((self.vision(images), obs), dim=-1))

    def feature_points(self, images: torch.Tensor) -> torch.Tensor:
        """The expected (x, y) per conv map, N x C x 2, normalised to [-1, 1] over the map."""
        return self.vision(images).reshape(images.shape[0], -1, 2)

    def architecture(self) -> dict:
        return {"kind": self.kind, **to_mapping(self.config)}


class FullStateMLP(nn.Module):
    """Mean torques from the whitened full state x; no images."""

    kind: ClassVar[str] = "full_state_mlp"
    uses_images: ClassVar[bool] = False

    def __init__(self, config: FullStateMLPConfig = FullStateMLPConfig()) -> None:
        super().__init__()
        self.config = config
        self.head = MLP(config.dim_x, config.fc_units, config.dim_u)

    @property
    def dim_obs(self) -> int:
        return self.config.dim_x

    @property
    def dim_u(self) -> int:
        return self.config.dim_u

    def forward(self, obs: torch.Tensor, images: torch.Tensor | None = None) -> torch.Tensor:
        """obs: N x dim_x whitened state -> N x dim_u."""
        if images is not None:
            raise ValueError("the full-state network takes no images")
        return self.head(obs)

    def architecture(self) -> dict:
        return {"kind": self.kind, **to_mapping(self.config)}


class PoseRegressionCNN(nn.Module):
    """Target points (N x 9, 3 points x (x, y, z)) regressed from images through the policy's
    vision layers and one linear layer on the feature points (the paper's vision pre-training)."""

    def __init__(self, config: PoseRegressionConfig = PoseRegressionConfig()) -> None:
        super().__init__()
        self.config = config
        self.vision = VisionTrunk(config)
        self.pose = nn.Linear(2 * config.n_feature_points, config.dim_pose)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pose(self.vision(images))


def copy_vision_weights(source: PoseRegressionCNN, target: VisuomotorCNN) -> None:
    """Load the pre-trained vision layers of `source` into `target` (same vision config only)."""
    theirs, ours = source.config.vision_fields(), target.config.vision_fields()
    differing = {k: (theirs[k], ours[k]) for k in theirs if theirs[k] != ours[k]}
    if differing:
        raise ValueError(f"vision layers differ (pose regression, policy): {differing}")
    target.vision.load_state_dict(source.vision.state_dict())


NETWORK_KINDS: dict[str, tuple[type[nn.Module], type]] = {
    VisuomotorCNN.kind: (VisuomotorCNN, VisuomotorCNNConfig),
    FullStateMLP.kind: (FullStateMLP, FullStateMLPConfig),
}


def build_network(architecture: Mapping[str, Any]) -> VisuomotorCNN | FullStateMLP:
    """A freshly initialised network from its architecture dict {"kind": ..., config fields};
    raises ConfigError (a ValueError) naming the bad key."""
    if not isinstance(architecture, Mapping):
        raise ConfigError(f"architecture: expected a mapping, got {architecture!r}")
    fields = dict(architecture)
    kind = fields.pop("kind", None)
    if kind not in NETWORK_KINDS:
        raise ConfigError(f"architecture.kind: expected one of {sorted(NETWORK_KINDS)}, "
                          f"got {kind!r}")
    network_cls, config_cls = NETWORK_KINDS[kind]
    return network_cls(from_mapping(config_cls, fields, "architecture"))
