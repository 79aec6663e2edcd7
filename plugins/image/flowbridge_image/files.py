"""Image files a person opens: reading PNG/JPEG into tensors, writing PNG grids atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from PIL import Image, ImageOps

from flowbridge.checks import check_positive_int
from flowbridge.files import atomic_write

from .items import SIXTEEN_BIT_MODES, check_unit_range, pil_image_to_tensor

__all__ = ["image_grid", "load_image", "save_image_grid"]

# Pillow modes with a single colour band (every 16-bit one included, whatever its byte order);
# everything else (RGB, RGBA, P, CMYK...) reads as RGB.
_GRAY_MODES = ("1", "L", "LA", "I", "F", *SIXTEEN_BIT_MODES)


def load_image(
    path: str | os.PathLike, channels: int | None = None, size: int | None = None
) -> torch.Tensor:
    """Read an image file (PNG, JPEG, anything Pillow opens) as ``[C, H, W]`` in [0, 1].

    The image is turned upright as its EXIF orientation says (phone cameras store photos
    sideways with such a tag). 8-bit images are divided by 255, 16-bit grayscale ones by 65535.

    Args:
        path: the file.
        channels: 1 (converted to grayscale, Pillow's ``"L"``: ITU-R 601 luma) or 3 (RGB;
            alpha is dropped); ``None`` keeps 1 for grayscale files and 3 otherwise.
        size: if given and the image is not ``size x size``: centre-crop to a square, then
            resize to ``size x size`` with bicubic filtering (``PIL.ImageOps.fit``).

    Raises:
        TypeError, ValueError: a bad argument; or, naming the file, it is missing, not an
            image Pillow can read, or a 32-bit integer or float image (no known range).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if channels not in (None, 1, 3) or isinstance(channels, bool):
        raise ValueError(f"channels must be 1, 3 or None (as the file is), got {channels!r}")
    if size is not None:
        check_positive_int(size, "size")
    try:
        with Image.open(path) as image:
            image.load()
    except FileNotFoundError:
        raise ValueError(f"cannot read image {str(path)!r}: no such file") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(
            f"cannot read image {str(path)!r}: {exc}; expected a PNG or JPEG file"
        ) from None
    image = ImageOps.exif_transpose(image)
    if channels is None:
        channels = 1 if image.mode in _GRAY_MODES else 3
    if image.mode not in (*SIXTEEN_BIT_MODES, "I", "F"):  # those keep their bits until read
        image = image.convert("L" if channels == 1 else "RGB")
    if size is not None and image.size != (size, size):
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.BICUBIC)
    return pil_image_to_tensor(image, channels, f"image {str(path)!r}")


def image_grid(images: torch.Tensor | Sequence, padding: int = 2) -> Image.Image:
    """Images as one grid, a Pillow image: a notebook shows it as the cell's output, and
    ``.save(path)`` writes it (:func:`save_image_grid` writes it atomically).

    Args:
        images: ``[rows, columns, C, H, W]`` (one row per input, one column per sample),
            ``[n, C, H, W]`` (one row) or ``[C, H, W]``; or what ``translate`` returns to an
            image domain, ``images[i][k]`` (``[C, H, W]`` tensors, as many per row), or a list
            of ``[C, H, W]`` tensors (one row); values in [0, 1]; ``C`` is 1 or 3.
        padding: white pixels between neighbouring cells.
    """
    if isinstance(images, (list, tuple)):
        images = _stacked(images)
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        kind = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise TypeError(
            f"images must be a float tensor [rows, columns, C, H, W] in [0, 1], got {kind}"
        )
    if images.dim() not in (3, 4, 5) or images.shape[-3] not in (1, 3):
        raise ValueError(
            f"images must have shape [rows, columns, C, H, W], [n, C, H, W] or [C, H, W] with "
            f"C = 1 or 3, got {list(images.shape)}"
        )
    if 0 in images.shape:
        raise ValueError(f"images must hold at least one pixel, got shape {list(images.shape)}")
    check_positive_int(padding, "padding", allow_zero=True)
    while images.dim() < 5:
        images = images.unsqueeze(0)
    check_unit_range(images, "images")
    # Pad every cell on the right and bottom, then drop the outer strip: padding sits only
    # between cells.
    cells = F.pad(images.detach().cpu(), (0, padding, 0, padding), value=1.0)
    grid = rearrange(cells, "r k c h w -> (r h) (k w) c")
    grid = grid[: grid.shape[0] - padding, : grid.shape[1] - padding]
    pixels = (grid * 255).round().to(torch.uint8).numpy()
    # Pillow picks "L" for a 2-D uint8 array and "RGB" for [H, W, 3].
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def _stacked(images: Sequence) -> torch.Tensor:
    """``images[i][k]`` (or ``images[k]``) of ``[C, H, W]`` tensors as one tensor."""
    if images and all(isinstance(image, torch.Tensor) for image in images):
        rows = [list(images)]
    else:
        rows = [list(row) if isinstance(row, (list, tuple)) else row for row in images]
    odd = sorted({type(row).__name__ for row in rows if not isinstance(row, list)})
    if odd:  # an array or a PIL image where a row of tensors belongs
        raise TypeError(
            f"images as lists must be images[i][k] of [C, H, W] tensors (or a list of such "
            f"tensors), got {', '.join(odd)} in the list: convert with torch.as_tensor"
        )
    lengths = [len(row) for row in rows]
    if not rows or len(set(lengths)) != 1 or not lengths[0]:
        raise ValueError(
            f"images as lists must be images[i][k] with the same, non-zero number of images "
            f"in every row, got row lengths {lengths}"
        )
    cells = [image for row in rows for image in row]
    if not all(isinstance(image, torch.Tensor) for image in cells):
        kinds = sorted({type(image).__name__ for image in cells})
        raise TypeError(f"images[i][k] must be [C, H, W] tensors, got {', '.join(kinds)}")
    if len({image.shape for image in cells}) != 1:
        shapes = sorted({tuple(image.shape) for image in cells})
        raise ValueError(f"images[i][k] must all have one shape, got {shapes}")
    return torch.stack([torch.stack(row) for row in rows])


def save_image_grid(
    images: torch.Tensor | Sequence, path: str | os.PathLike, padding: int = 2
) -> Path:
    """Write images as one PNG grid (atomically) and return its path.

    Args:
        images: as :func:`image_grid` takes them.
        path: the PNG file to write (its suffix is kept as given).
        padding: white pixels between neighbouring cells.
    """
    picture = image_grid(images, padding)
    return atomic_write(path, lambda file: picture.save(file, format="PNG"))
