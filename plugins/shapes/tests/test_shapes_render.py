"""Rendering: shapes, ranges, determinism, and that jitter makes every image different."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flowbridge_shapes import render
from flowbridge_shapes.render import coverage

ATTRS = {
    "shape": "square",
    "color": "red",
    "size": "large",
    "horizontal": "left",
    "vertical": "top",
}


def test_images_are_float_in_unit_range_and_deterministic():
    images = render([ATTRS] * 3, np.random.default_rng(0))
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    assert torch.equal(images, render([ATTRS] * 3, np.random.default_rng(0)))
    # the same attributes, three different images
    assert not torch.equal(images[0], images[1]) and not torch.equal(images[1], images[2])


def test_coverage_by_hand():
    # A square of half-size 2 centred on a pixel corner covers exactly a 4x4 block.
    got = coverage(["square"], torch.tensor([4.0]), torch.tensor([4.0]), torch.tensor([2.0]), 8)
    want = torch.zeros(8, 8)
    want[2:6, 2:6] = 1
    assert torch.equal(got[0], want)
    # A circle's coverage sums to its area.
    disk = coverage(["circle"], torch.tensor([16.0]), torch.tensor([16.0]), torch.tensor([5.0]), 32)
    assert float(disk.sum()) == pytest.approx(np.pi * 25, rel=0.01)


def test_object_sits_where_its_attributes_say():
    image = render([ATTRS], np.random.default_rng(0))[0]
    saturation = image.amax(0) - image.amin(0)
    rows, cols = torch.nonzero(saturation > 0.3, as_tuple=True)
    assert rows.float().mean() < 16 and cols.float().mean() < 16  # top left
    assert image[0].max() > image[1].max() + 0.3  # red


def test_bad_attributes_are_explained():
    with pytest.raises(ValueError, match="unknown attribute 'texture'"):
        render([{**ATTRS, "texture": "smooth"}], np.random.default_rng(0))
    with pytest.raises(TypeError, match="must be a dict"):
        render(["a red square"], np.random.default_rng(0))
