"""Spatial softmax + expected position put a single bright spot at its pixel centre
x_j = (2j + 1) / W - 1, y_i = (2i + 1) / H - 1 (gps_controller.policies.spatial_softmax)."""

import pytest
import torch

from gps_controller.policies.spatial_softmax import SpatialSoftmax, pixel_centres

BRIGHT = 1e4  # exp(-1e4) underflows to 0: the softmax puts all its mass on the spot


def spot_maps(height, width, spots):
    """One channel per (row, col) spot: zero everywhere, BRIGHT at the spot."""
    maps = torch.zeros(1, len(spots), height, width, dtype=torch.float64)
    for c, (row, col) in enumerate(spots):
        maps[0, c, row, col] = BRIGHT
    return maps


@pytest.mark.parametrize("height, width", [(1, 1), (8, 8), (5, 7), (13, 4), (109, 109)])
def test_single_spot_lands_on_its_pixel_centre(height, width):
    spots = [(0, 0), (height - 1, width - 1), (height // 2, width // 3), (height - 1, 0)]
    points = SpatialSoftmax()(spot_maps(height, width, spots))
    expected = []
    for row, col in spots:
        expected += [(2 * col + 1) / width - 1, (2 * row + 1) / height - 1]
    assert points.shape == (1, 2 * len(spots))
    torch.testing.assert_close(points[0], torch.tensor(expected, dtype=torch.float64))


def test_uniform_map_gives_the_image_centre():
    points = SpatialSoftmax()(torch.zeros(2, 3, 6, 9))
    torch.testing.assert_close(points, torch.zeros(2, 6))


def test_temperature_weights_two_pixels_by_a_sigmoid():
    # A 1 x 2 map [0, a]: x = -1/2 p_0 + 1/2 p_1 with p_1 = sigmoid(a / alpha).
    a, alpha = 1.5, 0.7
    maps = torch.tensor([[[[0.0, a]]]], dtype=torch.float64)
    x, y = SpatialSoftmax(temperature=alpha)(maps)[0]
    assert x.item() == pytest.approx(-0.5 + torch.sigmoid(torch.tensor(a / alpha)).item())
    assert y.item() == 0.0


def test_softmax_is_a_distribution_per_channel():
    s = SpatialSoftmax().softmax(torch.randn(2, 4, 5, 6))
    torch.testing.assert_close(s.sum(dim=(2, 3)), torch.ones(2, 4))


def test_pixel_centres_span_the_open_interval():
    torch.testing.assert_close(pixel_centres(4), torch.tensor([-0.75, -0.25, 0.25, 0.75]))


def test_temperature_is_a_parameter_only_when_learnable():
    fixed, learned = SpatialSoftmax(2.0), SpatialSoftmax(2.0, learnable=True)
    assert list(fixed.parameters()) == [] and "temperature" in fixed.state_dict()
    assert [p.item() for p in learned.parameters()] == [2.0]


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="temperature must be positive"):
        SpatialSoftmax(0.0)
    with pytest.raises(ValueError, match="N x C x H x W"):
        SpatialSoftmax()(torch.zeros(3, 4, 5))
