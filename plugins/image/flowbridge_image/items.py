"""Turning what a user holds into checked image and feature tensors.

An **image item** is a float tensor ``[C, H, W]`` with values in [0, 1]. These are accepted too
and converted:

* a ``uint8`` tensor ``[C, H, W]`` (torchvision's ``read_image`` layout): divided by 255;
* a ``uint8`` numpy array ``[H, W, C]`` (Pillow's and OpenCV's layout), or ``[H, W]`` for a
  grayscale domain: moved to ``[C, H, W]`` and divided by 255;
* a PIL image: converted to mode ``"L"`` (1 channel) or ``"RGB"`` (3 channels), then as a
  ``uint8`` array; 16-bit grayscale is divided by 65535. Its size must already match;
  :func:`~flowbridge_image.load_image` resizes.

A **feature item** (``encoder="features"``) is a 1-D float tensor or numpy array
``[feature_dim]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from einops import rearrange, repeat
from PIL import Image

__all__ = [
    "SIXTEEN_BIT_MODES",
    "check_batch",
    "pil_image_to_tensor",
    "check_unit_range",
    "to_image_tensor",
    "uint8_array_to_tensor",
    "to_feature_tensor",
]


def check_batch(x: Any, shape: Sequence[int], name: str) -> torch.Tensor:
    """Check that ``x`` is a floating tensor ``[batch, *shape]``; return it."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != tuple(shape):
        expected = ", ".join(["batch", *map(str, shape)])
        raise ValueError(f"{name} must have shape [{expected}], got {list(x.shape)}")
    return x


def _check_finite(x: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.isfinite(x).all():
        raise ValueError(f"{what} contains NaN or Inf values")
    return x


def check_unit_range(image: torch.Tensor, what: str) -> torch.Tensor:
    """Check that ``image`` is finite with values in [0, 1]; return it."""
    # NaN compares False with any bound, so the range check alone would let it through.
    _check_finite(image, what)
    low, high = image.min().item(), image.max().item()
    if low < 0 or high > 1:
        raise ValueError(
            f"{what} values must lie in [0, 1], got min {low:.4g} and max {high:.4g}; scale "
            f"0-255 data with x / 255 and [-1, 1] data with (x + 1) / 2"
        )
    return image


def _check_shape(image: torch.Tensor, channels: int, size: int, what: str) -> torch.Tensor:
    if tuple(image.shape) != (channels, size, size):
        if tuple(image.shape) == (size, size, channels):
            # Pillow, OpenCV and matplotlib hold images channels-last: the layout is what is
            # wrong, not the size.
            hint = "it looks like [H, W, C]: move the channels first with .permute(2, 0, 1)"
        elif image.dim() == 3 and tuple(image.shape[1:]) == (size, size):
            # The size fits: only the channels differ (a grayscale image for an RGB domain).
            hint = (
                f"convert it to {channels} channel{'s' * (channels > 1)} "
                "(load_image(path, channels, size) does) or build the domain with "
                f"channels={image.shape[0]}"
            )
        else:
            hint = (
                "resize it (load_image(path, channels, size) does) or build the domain with "
                "matching size and channels"
            )
        raise ValueError(
            f"{what} must have shape [{channels}, {size}, {size}] ([C, H, W]), got "
            f"{list(image.shape)}; {hint}"
        )
    return image


def uint8_array_to_tensor(array: np.ndarray, channels: int, what: str) -> torch.Tensor:
    """A ``uint8`` array ``[H, W, C]`` (or ``[H, W]`` when ``channels == 1``) as a float
    tensor ``[C, H, W]`` in [0, 1]."""
    if array.ndim == 2 and channels == 1:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] != channels:
        also = " or [H, W]" if channels == 1 else ""
        raise ValueError(
            f"{what}: a uint8 array must have shape [H, W, {channels}] ([H, W, C]){also}, got "
            f"{list(array.shape)}"
        )
    # torch.tensor copies: arrays from Pillow are read-only.
    image = rearrange(torch.tensor(array), "h w c -> c h w")
    return image.to(torch.get_default_dtype()) / 255


#: Pillow's modes of 16-bit grayscale files (depth maps, medical and scientific images).
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def pil_image_to_tensor(image: Image.Image, channels: int, what: str) -> torch.Tensor:
    """A PIL image as a float tensor ``[C, H, W]`` in [0, 1]: 8-bit modes converted to ``"L"``
    or ``"RGB"`` and divided by 255; 16-bit grayscale divided by 65535 (and repeated over the
    channels of an RGB domain), since converting it to ``"L"`` would clip every value above
    255 to white. 32-bit integer and float images (modes ``"I"``, ``"F"``) have no known range
    and are refused."""
    if image.mode in ("I", "F"):
        kind = "integer" if image.mode == "I" else "floating-point"
        raise ValueError(
            f"{what}: a 32-bit {kind} image (Pillow mode {image.mode!r}) has no known range of "
            f"values; convert it to 8 or 16 bits, or pass a float tensor [C, H, W] in [0, 1]"
        )
    if image.mode in SIXTEEN_BIT_MODES:
        gray = torch.from_numpy(np.asarray(image).astype(np.float32) / 65535)
        return repeat(gray, "h w -> c h w", c=channels).to(torch.get_default_dtype())
    return uint8_array_to_tensor(
        np.asarray(image.convert("L" if channels == 1 else "RGB")), channels, what
    )


def to_image_tensor(item: Any, channels: int, size: int, what: str = "image") -> torch.Tensor:
    """Convert an image item (see the module docstring) to a float tensor ``[C, H, W]`` in
    [0, 1] of the default dtype, checking its shape and values."""
    if isinstance(item, Image.Image):
        if item.size != (size, size):
            raise ValueError(
                f"{what}: a PIL image must be {size}x{size} pixels, got {item.size[0]}x"
                f"{item.size[1]}; resize it first, or read the file with load_image(path, "
                f"size={size}), which crops and resizes"
            )
        return pil_image_to_tensor(item, channels, what)
    if isinstance(item, np.ndarray):
        if item.dtype != np.uint8:
            raise TypeError(
                f"{what}: a numpy image must be uint8 [H, W, C], got dtype {item.dtype}; for "
                f"float data in [0, 1] pass a tensor [C, H, W] (torch.from_numpy(array) of an "
                f"[H, W, C] array, then .permute(2, 0, 1))"
            )
        return _check_shape(uint8_array_to_tensor(item, channels, what), channels, size, what)
    if not isinstance(item, torch.Tensor):
        raise TypeError(
            f"{what} must be a float tensor [C, H, W] in [0, 1], a uint8 tensor [C, H, W], a "
            f"uint8 numpy array [H, W, C] or a PIL image, got {type(item).__name__}"
        )
    if item.dtype == torch.uint8:
        return _check_shape(item, channels, size, what).to(torch.get_default_dtype()) / 255
    if not item.is_floating_point():
        raise TypeError(
            f"{what} must be a float tensor with values in [0, 1] or a uint8 tensor, got "
            f"dtype {item.dtype}"
        )
    image = check_unit_range(_check_shape(item, channels, size, what), what)
    return image.to(torch.get_default_dtype())


def to_feature_tensor(item: Any, feature_dim: int, what: str = "feature vector") -> torch.Tensor:
    """Convert a feature item (1-D float tensor or numpy array) to a tensor ``[feature_dim]``."""
    if isinstance(item, np.ndarray) and item.dtype.kind == "f":
        item = torch.tensor(item)
    if not isinstance(item, torch.Tensor) or not item.is_floating_point():
        kind = f"dtype {item.dtype}" if hasattr(item, "dtype") else type(item).__name__
        raise TypeError(
            f"{what} must be a 1-D float tensor or numpy array [{feature_dim}], got {kind}"
        )
    if tuple(item.shape) != (feature_dim,):
        raise ValueError(
            f"{what} must have shape [{feature_dim}] (feature_dim), got {list(item.shape)}"
        )
    return _check_finite(item, what).to(torch.get_default_dtype())
