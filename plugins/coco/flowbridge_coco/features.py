"""Precomputed image features: any backbone's vectors, one row per COCO image.

Pretrained weights cannot be downloaded here, so a user who wants the original captioning
set-up extracts the features once elsewhere (VGG16 fc7: 4096 dims) and hands over two files:

* the **features**: a ``.npy`` array or a ``.pt`` tensor ``[n_images, feature_dim]`` (float);
* the **ids**: which COCO image each row belongs to, in row order: a ``.txt`` file with one
  integer id per line, a ``.json`` list of ints, or a ``.npy``/``.pt`` integer vector ``[n]``.

Rows may come in any order and include images the annotations do not use; every image the
dataset uses needs a row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import CocoDataError, CocoFileNotFoundError

__all__ = ["read_ids", "read_features", "FeatureTable"]


def _load_array(path: Path, source: str) -> np.ndarray | torch.Tensor:
    """The array in a ``.npy`` (no pickles) or ``.pt`` (``weights_only``) file; ``source``
    says in errors where the path came from, e.g. ``"coco option features"``."""
    if path.suffix not in (".npy", ".pt"):
        raise CocoDataError(f"{path} ({source}) must be a .npy or .pt file, got {path.suffix!r}")
    if not path.is_file():
        raise CocoFileNotFoundError(f"{path}: no such file ({source})")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            array = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # numpy and torch raise many kinds for a damaged file
        raise CocoDataError(f"{path} ({source}) cannot be read: {exc}") from None
    if not isinstance(array, (np.ndarray, torch.Tensor)):
        raise CocoDataError(
            f"{path} ({source}) must hold a single array or tensor, got a "
            f"{type(array).__name__}; save the tensor itself (torch.save(tensor, path))"
        )
    return array


def read_ids(path: str | os.PathLike) -> list[int]:
    """The image ids of a ``.txt`` (one per line), ``.json`` (a list) or ``.npy``/``.pt``
    (an integer vector) file.

    Raises:
        CocoDataError: the file is missing, or an entry is not an integer (named by line or
            index).
    """
    path = Path(path)
    if path.suffix in (".npy", ".pt"):
        array = _load_array(path, "coco option feature_ids")
        values = array.tolist() if array.ndim == 1 else None
        if values is None or not all(isinstance(v, int) for v in values):
            raise CocoDataError(
                f"{path} (coco option feature_ids) must hold a 1-D integer vector of image ids, "
                f"got dtype {array.dtype} and shape {list(array.shape)}"
            )
        return values
    if not path.is_file():
        raise CocoFileNotFoundError(f"{path}: no such file (coco option feature_ids)")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        try:
            values = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:  # or nested thousands deep
            raise CocoDataError(f"{path.name}: not valid JSON ({exc})") from None
        if not isinstance(values, list):
            raise CocoDataError(f"{path.name}: expected a JSON list of image ids")
        for index, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, int):
                raise CocoDataError(f"{path.name}: entry [{index}] is {value!r}, not an image id")
        return values
    ids = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            ids.append(int(line))
        except ValueError:
            raise CocoDataError(
                f"{path.name}: line {number} is {line.strip()!r:.40}, not an image id; write "
                f"one integer COCO image id per line"
            ) from None
    return ids


def read_features(path: str | os.PathLike, source: str = "coco option features") -> torch.Tensor:
    """A float feature matrix ``[n, feature_dim]`` from a ``.npy`` or ``.pt`` file; ``source``
    names where the path came from in errors (a command-line flag, say).

    Raises:
        CocoDataError: the file is missing or not a finite 2-D float array.
    """
    path = Path(path)
    array = _load_array(path, source)
    if not isinstance(array, torch.Tensor):
        array = torch.from_numpy(np.ascontiguousarray(array)) if array.dtype.kind == "f" else array
    if not isinstance(array, torch.Tensor) or not array.is_floating_point() or array.dim() != 2:
        kind = f"dtype {array.dtype}, shape {list(array.shape)}"
        raise CocoDataError(
            f"{path} ({source}) must hold a float array [n_images, feature_dim], got {kind}"
        )
    if not torch.isfinite(array).all():
        rows = torch.nonzero(~torch.isfinite(array).all(dim=1)).flatten()[:5].tolist()
        raise CocoDataError(f"{path}: rows {rows} contain NaN or Inf values")
    return array


class FeatureTable:
    """Feature rows looked up by COCO image id.

    Args:
        features: path of the feature matrix ``[n, feature_dim]``.
        ids: path of the id file (row ``i`` belongs to image ``ids[i]``).

    Raises:
        CocoDataError: see :func:`read_features` and :func:`read_ids`; also when the two
            files disagree on the number of rows or an id repeats.
    """

    def __init__(self, features: str | os.PathLike, ids: str | os.PathLike):
        self.features = read_features(features)
        order = read_ids(ids)
        if len(order) != len(self.features):
            raise CocoDataError(
                f"{Path(ids).name} lists {len(order)} image ids but {Path(features).name} has "
                f"{len(self.features)} rows; give one id per feature row, in row order"
            )
        self.rows: dict[int, int] = {}
        for row, image_id in enumerate(order):
            if image_id in self.rows:
                raise CocoDataError(
                    f"{Path(ids).name}: image id {image_id} is listed twice (rows "
                    f"{self.rows[image_id]} and {row})"
                )
            self.rows[image_id] = row

    @property
    def feature_dim(self) -> int:
        return self.features.shape[1]

    def select(self, image_ids: Sequence[int]) -> torch.Tensor:
        """The rows of ``image_ids``, ``[len(image_ids), feature_dim]`` (a gather, one copy).

        Raises:
            CocoDataError: an image has no row (the first few missing ids are named).
        """
        missing = [i for i in image_ids if i not in self.rows]
        if missing:
            raise CocoDataError(
                f"{len(missing)} images have no feature row, e.g. ids {missing[:5]}; extract "
                f"features for every image of the annotations (or lower max_images)"
            )
        index = torch.tensor([self.rows[i] for i in image_ids], dtype=torch.long)
        return self.features.index_select(0, index)
