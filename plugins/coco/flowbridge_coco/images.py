"""COCO images from a folder, resized once and kept in a cache file.

Decoding and resizing 113k JPEGs takes minutes, so the result, a ``uint8`` tensor
``[n, C, S, S]``, is saved to a ``.pt`` cache (written atomically: a temporary file, then
:func:`os.replace`) and reused while it is *valid*: same format version, image size and
channels, the same image ids in the same order, and every source file unchanged (same byte
size and modification time). Anything else rebuilds it. The cache is read with
``torch.load(weights_only=True, mmap=True)``, so a cache larger than memory is paged in as
batches touch it.

Images are kept as ``uint8`` (a quarter of the float size); the image domain's ``collate``
turns a ``uint8 [C, S, S]`` item into floats in [0, 1].
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch

from flowbridge.files import atomic_write, damaged_part
from flowbridge_image import load_image

from .annotations import CocoImage
from .errors import CocoDataError, CocoFileNotFoundError

__all__ = ["CACHE_FORMAT", "CACHE_VERSION", "resolve_image_path", "load_images"]

CACHE_FORMAT = "flowbridge-coco-images"
# 2: load_image turns photos upright by their EXIF orientation and scales 16-bit grayscale.
CACHE_VERSION = 2

log = logging.getLogger(__name__)


def resolve_image_path(folder: Path, image: CocoImage) -> Path:
    """The file of ``image``: ``folder/image.file``, or ``folder/<file name>`` when the images
    were unpacked without their set folder.

    Raises:
        CocoFileNotFoundError: neither exists (both paths are named).
    """
    path = folder / image.file
    if path.is_file():
        return path
    flat = folder / Path(image.file).name
    if flat.is_file():
        return flat
    tried = f"{path} or {flat}" if flat != path else str(path)
    raise CocoFileNotFoundError(
        f"image {image.id} ({image.split} split): no file at {tried}; set the coco option "
        f"images to the folder that holds train2014/ and val2014/"
    )


def _stamps(paths: Sequence[Path]) -> torch.Tensor:
    """``[n, 2]``: byte size and modification time (ns) of each file."""
    return torch.tensor([[s.st_size, s.st_mtime_ns] for s in map(os.stat, paths)], dtype=torch.long)


def _read_cache(path: Path) -> dict[str, Any] | None:
    """The cache's content, or ``None`` if it is not a readable cache file (or one whose
    bytes changed since it was written, which torch.load alone would read as other pixels)."""
    if not path.is_file():
        return None
    damaged = damaged_part(path)
    if damaged == "the zip directory":  # not a torch file (any more): rebuilt, as always
        log.info("image cache %s is unreadable; rebuilding it", path)
        return None
    if damaged is not None:  # a torch file whose pixels changed: worth a word
        log.warning(
            "image cache %s is damaged (%s fails its checksum); rebuilding it", path, damaged
        )
        return None
    try:
        content = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or foreign file: rebuild it rather than fail
        log.info("image cache %s is unreadable (%s); rebuilding it", path, exc)
        return None
    return content if isinstance(content, dict) else None


def _cache_matches(
    content: dict[str, Any] | None,
    ids: torch.Tensor,
    stamps: torch.Tensor,
    size: int,
    channels: int,
) -> bool:
    if content is None or content.get("format") != CACHE_FORMAT:
        return False
    images = content.get("images")
    return (
        content.get("version") == CACHE_VERSION
        and content.get("size") == size
        and content.get("channels") == channels
        and torch.equal(content.get("ids", torch.empty(0)), ids)
        and torch.equal(content.get("stamps", torch.empty(0)), stamps)
        and isinstance(images, torch.Tensor)
        and images.dtype == torch.uint8
        and tuple(images.shape) == (len(ids), channels, size, size)
    )


def _decode(path: Path, channels: int, size: int) -> torch.Tensor:
    try:
        image = load_image(path, channels, size)
    except ValueError as exc:
        raise CocoDataError(f"{exc}; remove or replace the file") from None
    return (image * 255).round().to(torch.uint8)


def load_images(
    images: Sequence[CocoImage],
    folder: str | os.PathLike,
    size: int,
    channels: int = 3,
    cache: str | os.PathLike | None = None,
    workers: int = 4,
) -> torch.Tensor:
    """Images as ``uint8 [n, C, size, size]``, in the order of ``images``.

    Each file is centre-cropped to a square and resized (bicubic) by
    :func:`flowbridge_image.load_image`.

    Args:
        images: the annotated images to load.
        folder: the image folder (``image.file`` is relative to it).
        size: the side ``S`` of the square images.
        channels: 3 (RGB) or 1 (grayscale).
        cache: the cache file to reuse or (re)write; ``None`` loads without caching.
        workers: threads decoding files (Pillow decodes without holding the GIL).

    Raises:
        CocoFileNotFoundError: an image file is missing.
        CocoDataError: an image file cannot be decoded.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CocoFileNotFoundError(
            f"image folder {folder} does not exist; set the coco option images to the folder "
            f"that holds the COCO images (train2014/, val2014/)"
        )
    paths = [resolve_image_path(folder, image) for image in images]
    ids = torch.tensor([image.id for image in images], dtype=torch.long)
    stamps = _stamps(paths)
    if cache is not None:
        content = _read_cache(Path(cache))
        if _cache_matches(content, ids, stamps, size, channels):
            return content["images"]
        log.info("building the image cache %s (%d images)", cache, len(paths))
    # Filled in place: at 256 px the training images alone take 22 GB.
    batch = torch.empty(len(paths), channels, size, size, dtype=torch.uint8)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, image in enumerate(pool.map(lambda path: _decode(path, channels, size), paths)):
            batch[i] = image
    if cache is not None:
        content = {
            "format": CACHE_FORMAT,
            "version": CACHE_VERSION,
            "size": size,
            "channels": channels,
            "ids": ids,
            "stamps": stamps,
            "images": batch,
        }
        atomic_write(cache, lambda file: torch.save(content, file))
    return batch
