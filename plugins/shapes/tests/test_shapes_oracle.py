"""The image oracle reads fresh renderings (>= 99%), and noisy or blurry ones sensibly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flowbridge_shapes import all_combinations, read_image, read_images, render
from flowbridge_shapes.attributes import sample_attributes
from flowbridge_shapes.oracle import BLURS, rgb_to_hue
from flowbridge_shapes.oracle import _blur as oracle_blur
from flowbridge_shapes.render import hsv_to_rgb, shape_moments


def _fresh(n: int, seed: int, size: int = 32):
    """Every combination once, then random ones, rendered from a seed no dataset uses."""
    rng = np.random.default_rng([seed, 99])
    attrs = all_combinations()[:n] + sample_attributes(max(0, n - 192), rng, all_combinations())
    return attrs, render(attrs, rng, size)


def _accuracy(images, attrs) -> float:
    return float(
        np.mean([got == want for got, want in zip(read_images(images), attrs, strict=True)])
    )


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with edge replication, written independently of the oracle's."""
    r = math.ceil(3 * sigma)
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, -1).repeat(3, 1, 1)
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k[:, :, None, :], groups=3)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), k[:, :, :, None], groups=3)


@pytest.fixture(scope="module")
def fresh():
    return _fresh(400, seed=1)


def test_reads_fresh_renderings(fresh):
    attrs, images = fresh
    assert _accuracy(images, attrs) >= 0.99


def test_reads_noisy_renderings(fresh):
    attrs, images = fresh[0][:240], fresh[1][:240]  # every combination, and then some
    noise = 0.05 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    assert _accuracy((images + noise).clamp(0, 1), attrs) >= 0.97


@pytest.mark.parametrize("sigma", [0.7, 1.0])
def test_reads_blurry_renderings(fresh, sigma):
    attrs, images = fresh[0][:240], fresh[1][:240]
    assert _accuracy(_blur(images, sigma), attrs) >= 0.97


@pytest.mark.parametrize("sigma", BLURS)
def test_the_template_blur_is_a_zero_padded_separable_convolution(sigma):
    x = torch.rand(3, 4, 32, 32, generator=torch.Generator().manual_seed(0))
    expected = x
    if sigma:
        r = math.ceil(3 * sigma)
        k = torch.exp(-0.5 * (torch.arange(-r, r + 1.0) / sigma) ** 2)
        k = k / k.sum()
        flat = x.reshape(-1, 1, 32, 32)
        flat = F.conv2d(flat, k.view(1, 1, 1, -1), padding=(0, r))
        expected = F.conv2d(flat, k.view(1, 1, -1, 1), padding=(r, 0)).view_as(x)
    torch.testing.assert_close(oracle_blur(x, sigma), expected)


def test_reads_64_pixel_images():
    attrs, images = _fresh(100, seed=2, size=64)
    assert _accuracy(images, attrs) >= 0.99


def test_no_object_reads_none():
    gray = torch.full((3, 32, 32), 0.3)
    noise = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert read_image(gray) is None
    assert read_image(noise) is None
    assert read_images([]) == []


def test_list_and_batch_agree(fresh):
    attrs, images = fresh
    assert read_images(list(images[:5])) == read_images(images[:5])
    assert read_image(images[0]) == attrs[0]


def test_colour_conversions_by_hand():
    rgb = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0.5, 0.25, 0.75]])
    assert rgb_to_hue(rgb).tolist() == pytest.approx([0, 120, 240, 60, 270])
    got = hsv_to_rgb(np.array([0, 120, 60, 300]), np.array([1, 1, 1, 0]), np.array([1, 1, 1, 0.4]))
    want = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0.4, 0.4, 0.4]])
    np.testing.assert_allclose(got, want, atol=1e-12)


@pytest.mark.parametrize(
    ("shape", "area", "centroid"),
    [("circle", math.pi, 0), ("square", 4, 0), ("diamond", 2, 0), ("triangle", 2, 1 / 3)],
)
def test_shape_moments(shape, area, centroid):
    got_area, got_centroid = shape_moments(shape)
    assert got_area == pytest.approx(area, rel=1e-3)
    assert got_centroid == pytest.approx(centroid, abs=1e-3)


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match=r"\[n, 3, H, W\]"):
        read_images(torch.zeros(2, 1, 32, 32))
    with pytest.raises(TypeError, match="float tensors"):
        read_images(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(TypeError, match="float tensors"):
        read_images([np.zeros((3, 32, 32))])
    with pytest.raises(ValueError, match="one image"):
        read_image(torch.zeros(1, 3, 32, 32))
