"""Spatial softmax and expected image position: the layer that turns each conv map into a
feature point (the paper's visuomotor policy architecture).

For channel c with activations a_cij at row i, column j:

    s_cij = exp(a_cij / alpha) / sum_i'j' exp(a_ci'j' / alpha)       (softmax over all pixels)
    f_c   = ( sum_ij s_cij x_j , sum_ij s_cij y_i )                  (expected position)

Coordinates are normalised pixel centres: x runs along the width and y along the height,
    x_j = (2 j + 1) / W - 1,   y_i = (2 i + 1) / H - 1,
so the image's left/top edge is -1 and its right/bottom edge is +1 (the `align_corners=False`
convention of `torch.nn.functional.grid_sample`). Output is N x 2C, interleaved per channel as
[x_0, y_0, x_1, y_1, ...], so `out.view(N, C, 2)` gives one (x, y) point per channel.
"""

from __future__ import annotations

import torch
from torch import nn


def pixel_centres(size: int, *, device=None, dtype=None) -> torch.Tensor:
    """Normalised coordinates (2 k + 1) / size - 1 of the `size` pixel centres along one axis."""
    return (2.0 * torch.arange(size, device=device, dtype=dtype) + 1.0) / size - 1.0


class SpatialSoftmax(nn.Module):
    """N x C x H x W activations -> N x 2C expected (x, y) positions, [x_0, y_0, x_1, y_1, ...].

    The temperature alpha is a learnable parameter when `learnable` is true and a fixed buffer
    otherwise; either way it is saved in the state_dict as a 1-element tensor `temperature`.
    """

    def __init__(self, temperature: float = 1.0, learnable: bool = False) -> None:
        super().__init__()
        if not temperature > 0.0:
            raise ValueError(f"spatial softmax temperature must be positive, got {temperature}")
        value = torch.tensor([float(temperature)])
        if learnable:
            self.temperature = nn.Parameter(value)
        else:
            self.register_buffer("temperature", value)

    def softmax(self, features: torch.Tensor) -> torch.Tensor:
        """The per-channel distribution s_cij over pixels, N x C x H x W (sums to 1 per map)."""
        n, c, h, w = features.shape
        logits = features.reshape(n, c, h * w) / self.temperature
        return torch.softmax(logits, dim=-1).reshape(n, c, h, w)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.ndim != 4:
            raise ValueError(f"spatial softmax expects N x C x H x W, got {tuple(features.shape)}")
        n, c, h, w = features.shape
        s = self.softmax(features)
        xs = pixel_centres(w, device=features.device, dtype=s.dtype)
        ys = pixel_centres(h, device=features.device, dtype=s.dtype)
        # The marginals over rows and columns give the expectations with H + W products per map.
        x = (s.sum(dim=2) * xs).sum(dim=-1)
        y = (s.sum(dim=3) * ys).sum(dim=-1)
        return torch.stack((x, y), dim=-1).reshape(n, 2 * c)
