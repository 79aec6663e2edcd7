r"""Procedural rendering: one anti-aliased, jittered object on a plain gray background.

Geometry is in pixels of a ``size x size`` image, with pixel ``(row i, column j)`` covering
:math:`[j, j+1] \times [i, i+1]`. Layout numbers below are for a 32-pixel image and scale with
``size / 32``. Every shape fits a square of half-size :math:`s` around its centre
:math:`(c_x, c_y)`; in unit coordinates :math:`u = (x - c_x)/s`, :math:`v = (y - c_y)/s`
(``v`` grows downwards):

* circle :math:`u^2 + v^2 \le 1`; square :math:`\max(|u|, |v|) \le 1`;
* diamond :math:`|u| + |v| \le 1`; triangle (apex up) :math:`v \le 1,\ |u| \le (v + 1)/2`.

Jitter (uniform): centre :math:`\pm 1.25` px, half-size 3.5-4.5 px (small) or 6.5-7.5 px
(large), hue :math:`\pm 6^\circ`, saturation and value 0.7-1, background gray 0.1-0.4. So two
images of the same attributes never coincide, while every attribute stays unambiguous.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from einops import reduce

from .attributes import check_attributes

__all__ = [
    "CENTERS",
    "HALF_SIZES",
    "HUES",
    "SIZE_THRESHOLD",
    "Layout",
    "coverage",
    "hsv_to_rgb",
    "render",
    "render_layout",
    "sample_layout",
    "shape_moments",
]

#: object centre (in 32-pixel units) of each horizontal / vertical position
CENTERS = {"left": 9.0, "right": 23.0, "top": 9.0, "bottom": 23.0}
POSITION_JITTER = 1.25
#: half-size range (32-pixel units) of each size; the oracle splits them at SIZE_THRESHOLD
HALF_SIZES = {"small": (3.5, 4.5), "large": (6.5, 7.5)}
SIZE_THRESHOLD = 5.5
#: hue in degrees of each colour: 30 degrees apart at least, five times the jitter
HUES = {"red": 0.0, "orange": 30.0, "yellow": 58.0, "green": 120.0, "blue": 225.0, "purple": 280.0}
HUE_JITTER = 6.0
SATURATION = (0.7, 1.0)
VALUE = (0.7, 1.0)
BACKGROUND = (0.1, 0.4)


def _inside(shape: str, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    if shape == "circle":
        return u.square() + v.square() <= 1
    if shape == "square":
        return torch.maximum(u.abs(), v.abs()) <= 1
    if shape == "diamond":
        return u.abs() + v.abs() <= 1
    if shape == "triangle":
        return (v <= 1) & (u.abs() <= (v + 1) / 2)
    raise ValueError(f"unknown shape {shape!r}")


@functools.cache
def shape_moments(shape: str) -> tuple[float, float]:
    """Area and vertical centroid offset of the unit shape (half-size 1, centre 0).

    Measured on a fine grid from the same inside test that renders, so the oracle's templates
    and the renderer cannot disagree (circle: :math:`\\pi`, 0; triangle: 2, 1/3; ...).
    """
    t = (torch.arange(2048, dtype=torch.float64) + 0.5) / 1024 - 1
    inside = _inside(shape, t[None, :], t[:, None]).double()
    cell = (2 / 2048) ** 2
    area = float(inside.sum()) * cell
    centroid = float((inside * t[:, None]).sum()) * cell / area
    return area, centroid


def coverage(
    shapes: Sequence[str],
    cx: torch.Tensor,
    cy: torch.Tensor,
    half_size: torch.Tensor,
    size: int,
    supersample: int = 4,
) -> torch.Tensor:
    """Fraction of each pixel the shape covers, ``[n, size, size]`` in [0, 1].

    Args:
        shapes: ``n`` shape names.
        cx, cy, half_size: ``[n]`` centre and half-size in pixels.
        size: image side in pixels.
        supersample: sub-pixel samples per side (anti-aliasing).
    """
    n = len(shapes)
    out = torch.empty(n, size, size)
    grid = (torch.arange(size * supersample, dtype=torch.float32) + 0.5) / supersample
    names = np.asarray(shapes)
    for shape in np.unique(names):
        index = torch.as_tensor(np.flatnonzero(names == shape))
        # Chunks bound the memory of the [chunk, size*ss, size*ss] sub-pixel grid.
        for chunk in index.split(128):
            s = half_size[chunk].float()[:, None, None]
            u = (grid[None, None, :] - cx[chunk].float()[:, None, None]) / s
            v = (grid[None, :, None] - cy[chunk].float()[:, None, None]) / s
            inside = _inside(str(shape), u, v).float()
            out[chunk] = reduce(
                inside, "n (h a) (w b) -> n h w", "mean", a=supersample, b=supersample
            )
    return out


def hsv_to_rgb(hue: np.ndarray, saturation: np.ndarray, value: np.ndarray) -> np.ndarray:
    """HSV (hue in degrees) to RGB in [0, 1]: ``[n] x 3 -> [n, 3]``."""
    h = (np.asarray(hue, dtype=np.float64) % 360.0) / 60.0
    s, v = np.asarray(saturation, np.float64), np.asarray(value, np.float64)
    # The standard piecewise-linear hexcone, written with one formula per channel.
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None]) % 6
    return v[:, None] - (v * s)[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


@dataclass
class Layout:
    """Everything random about ``n`` images, in pixels: ``cx, cy, half_size [n]``,
    ``rgb [n, 3]`` (object colour), ``background [n]`` (gray level)."""

    shapes: list[str]
    cx: np.ndarray
    cy: np.ndarray
    half_size: np.ndarray
    rgb: np.ndarray
    background: np.ndarray


def sample_layout(
    attributes: Sequence[Mapping[str, str]], rng: np.random.Generator, size: int = 32
) -> Layout:
    """Draw the jittered geometry and colours of one image per attribute assignment."""
    attrs = [check_attributes(a, complete=True) for a in attributes]
    n, unit = len(attrs), size / 32

    def jitter(center: np.ndarray, width: float) -> np.ndarray:
        return (center + rng.uniform(-width, width, n)) * unit

    cx = jitter(np.array([CENTERS[a["horizontal"]] for a in attrs]), POSITION_JITTER)
    cy = jitter(np.array([CENTERS[a["vertical"]] for a in attrs]), POSITION_JITTER)
    low, high = np.array([HALF_SIZES[a["size"]] for a in attrs]).reshape(n, 2).T
    half_size = rng.uniform(low, high) * unit
    hue = np.array([HUES[a["color"]] for a in attrs]) + rng.uniform(-HUE_JITTER, HUE_JITTER, n)
    rgb = hsv_to_rgb(hue, rng.uniform(*SATURATION, n), rng.uniform(*VALUE, n))
    background = rng.uniform(*BACKGROUND, n)
    return Layout([a["shape"] for a in attrs], cx, cy, half_size, rgb, background)


def render_layout(layout: Layout, size: int = 32) -> torch.Tensor:
    """Images ``[n, 3, size, size]`` in [0, 1] for a layout (deterministic)."""
    alpha = coverage(
        layout.shapes,
        torch.as_tensor(layout.cx),
        torch.as_tensor(layout.cy),
        torch.as_tensor(layout.half_size),
        size,
    )[:, None]
    rgb = torch.as_tensor(layout.rgb, dtype=torch.float32)[:, :, None, None]
    background = torch.as_tensor(layout.background, dtype=torch.float32)[:, None, None, None]
    return background + alpha * (rgb - background)


def render(
    attributes: Sequence[Mapping[str, str]], rng: np.random.Generator, size: int = 32
) -> torch.Tensor:
    """Render one image per attribute assignment: ``[n, 3, size, size]`` in [0, 1]."""
    return render_layout(sample_layout(attributes, rng, size), size)
