r"""The image oracle: read the attributes of a rendered (or generated) image analytically.

Steps, for images ``[n, 3, H, W]``:

1. Saturation :math:`\max_c x_c - \min_c x_c` per pixel. The background is gray (saturation 0)
   and a pixel that mixes object and background in proportion :math:`\alpha` has saturation
   :math:`\alpha` times the object's, so ``saturation / peak`` is the object's coverage
   :math:`m`. The peak and the support (pixels above 0.25 of the peak) come from the 3x3
   box-smoothed image, which averages pixel noise away; outside the support :math:`m = 0`.
2. Colour: the hue of the coverage-weighted mean colour, nearest hue of :data:`~.render.HUES`
   (adding gray does not change a hue, so the mix with the background does not bias it).
3. Shape, by analysis by synthesis: for each shape, the template of the same area and centroid
   is rendered, blurred at each level of :data:`BLURS` (generated images are often blurry) and
   cut like the image; the shape is the template nearest to :math:`m` in :math:`L_1` between
   unit-mass distributions (a blurred small object never reaches its full saturation, so
   amplitudes differ while silhouettes still match). Size: that template's half-size against
   :data:`~.render.SIZE_THRESHOLD`; position: its centre against the image's middle.

An image with no coloured object (maximum saturation below 0.15) or one that no template fits
(distance above ``max_distance``; rendered images stay below 0.2, noise below 0.3, two objects
or smooth random blobs score 0.8 to 2) reads as ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .attributes import ATTRIBUTES
from .render import HUES, SIZE_THRESHOLD, coverage, shape_moments

__all__ = ["read_image", "read_images", "rgb_to_hue", "BLURS", "MAX_DISTANCE", "MIN_SATURATION"]

MIN_SATURATION = 0.15
MAX_DISTANCE = 0.6
_CUT = 0.25
#: blur levels (pixels) tried on every template: generated images are often blurry
BLURS = (0.0, 0.6, 1.0, 1.4)


def rgb_to_hue(rgb: torch.Tensor) -> torch.Tensor:
    """HSV hue in degrees ``[0, 360)`` of colours ``[..., 3]`` (0 for grays)."""
    r, g, b = rgb.unbind(-1)
    high, low = rgb.amax(-1), rgb.amin(-1)
    delta = (high - low).clamp_min(1e-8)
    hue = torch.where(
        high == r,
        ((g - b) / delta) % 6,
        torch.where(high == g, (b - r) / delta + 2, (r - g) / delta + 4),
    )
    return hue * 60.0


def _smooth(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of square ``[n, c, S, S]`` (zero padding: the templates are 0
    there), as ``Bᵀ x B`` with the banded ``[S, S]`` matrix ``B[i, j] = k(j - i)``: the sums of
    a zero-padded convolution, as one batched matrix product per side (about 3x quicker on a
    CPU than single-channel ``conv2d``; the oracle blurs every template four times)."""
    if sigma == 0:
        return x
    radius = math.ceil(3 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (t / sigma).square())
    kernel = kernel / kernel.sum()
    index = torch.arange(x.shape[-1])
    offset = index[None, :] - index[:, None]
    band = torch.where(
        offset.abs() <= radius, kernel[(offset + radius).clamp(0, 2 * radius)], torch.zeros(())
    )
    return band.T @ (x @ band)


def _distance(templates: torch.Tensor, m: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """L1 distance ``[n, shapes]`` between the coverage ``m`` and each template, both cut like
    the image and scaled to unit mass (see step 3 of the module docstring)."""
    peak = _smooth(templates).flatten(2).amax(2)[:, :, None, None].clamp_min(1e-8)
    templates = torch.where(templates < _CUT * peak, torch.zeros_like(templates), templates)
    templates = templates / templates.sum((2, 3), keepdim=True).clamp_min(1e-8)
    return (templates - (m / area[:, None, None])[:, None]).abs().sum((2, 3))


def _as_batch(images: torch.Tensor | Sequence[torch.Tensor]) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        batch = images
    else:
        items = list(images)
        if not all(isinstance(item, torch.Tensor) for item in items):
            kinds = sorted({type(item).__name__ for item in items})
            raise TypeError(f"images must be float tensors [3, H, W], got {kinds}")
        batch = torch.stack(items) if items else torch.empty(0, 3, 32, 32)
    if batch.dim() != 4 or batch.shape[1] != 3 or batch.shape[2] != batch.shape[3]:
        raise ValueError(
            f"images must be [n, 3, H, W] (or a list of [3, H, W]) with H == W, "
            f"got shape {list(batch.shape)}"
        )
    if not batch.is_floating_point():
        raise TypeError(f"images must be float tensors in [0, 1], got dtype {batch.dtype}")
    return batch.detach().float().cpu().clamp(0, 1)


def _templates(
    area: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor, size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per shape, the template of each image's area and centroid: coverage
    ``[n, shapes, H, W]``, half-size and centre-y ``[n, shapes]``."""
    shapes = ATTRIBUTES["shape"]
    unit_area = torch.tensor([shape_moments(s)[0] for s in shapes])
    unit_centroid = torch.tensor([shape_moments(s)[1] for s in shapes])
    half_size = (area[:, None] / unit_area).sqrt().clamp_min(0.5)
    center_y = cy[:, None] - unit_centroid * half_size
    n = area.shape[0]
    masks = coverage(
        list(shapes) * n,
        cx.repeat_interleave(len(shapes)),
        center_y.flatten(),
        half_size.flatten(),
        size,
    )
    return masks.view(n, len(shapes), size, size), half_size, center_y


def read_images(
    images: torch.Tensor | Sequence[torch.Tensor], max_distance: float = MAX_DISTANCE
) -> list[dict[str, str] | None]:
    """Read the attributes of each image.

    Args:
        images: ``[n, 3, H, W]`` or a list of ``[3, H, W]`` float tensors in [0, 1] (values
            outside are clamped); any square size, the layout scales with ``H / 32``.
        max_distance: largest :math:`L_1` distance (between unit-mass silhouettes, so in
            [0, 2]) to the nearest template for an image to count as showing a shape.

    Returns:
        One dict ``{"shape", "color", "size", "horizontal", "vertical"}`` per image, or
        ``None`` where the image shows no recognisable object.
    """
    x = _as_batch(images)
    n, size = x.shape[0], x.shape[-1]
    if n == 0:
        return []
    smooth = _smooth(x)
    saturation = smooth.amax(1) - smooth.amin(1)
    peak = saturation.flatten(1).amax(1).clamp_min(1e-8)[:, None, None]
    support = saturation / peak >= _CUT
    m = ((x.amax(1) - x.amin(1)) / peak).clamp(0, 1) * support
    area = m.sum((1, 2)).clamp_min(1e-8)
    coords = torch.arange(size, dtype=torch.float32) + 0.5
    cx = (m.sum(1) * coords).sum(1) / area
    cy = (m.sum(2) * coords).sum(1) / area

    templates, half_size, center_y = _templates(area, cx, cy, size)
    distance = torch.stack(
        [_distance(_blur(templates, sigma), m, area) for sigma in BLURS], dim=-1
    ).amin(-1)
    best = distance.argmin(1)

    weight = m.square()[:, None]
    mean_rgb = (x * weight).sum((2, 3)) / weight.sum((2, 3)).clamp_min(1e-8)
    hue = rgb_to_hue(mean_rgb)
    prototypes = torch.tensor(list(HUES.values()))
    gap = (hue[:, None] - prototypes[None, :]).abs() % 360
    color = torch.minimum(gap, 360 - gap).argmin(1)

    unit = size / 32
    rows = torch.arange(n)
    s, y = half_size[rows, best], center_y[rows, best]
    out: list[dict[str, str] | None] = []
    for i in range(n):
        if peak[i, 0, 0] < MIN_SATURATION or distance[i, best[i]] > max_distance:
            out.append(None)
            continue
        out.append(
            {
                "shape": ATTRIBUTES["shape"][best[i]],
                "color": list(HUES)[color[i]],
                "size": "large" if s[i] > SIZE_THRESHOLD * unit else "small",
                "horizontal": "left" if cx[i] < size / 2 else "right",
                "vertical": "top" if y[i] < size / 2 else "bottom",
            }
        )
    return out


def read_image(image: torch.Tensor, max_distance: float = MAX_DISTANCE) -> dict[str, str] | None:
    """Attributes of one image ``[3, H, W]`` (see :func:`read_images`), or ``None``."""
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        shape = list(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
        raise ValueError(f"read_image takes one image [3, H, W], got {shape}")
    return read_images(image[None], max_distance)[0]
