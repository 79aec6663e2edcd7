"""The ``coco`` dataset's options, validated once, with the mode's defaults filled in.

Options come from a run configuration's ``[data.options]`` table, so they are JSON/TOML
values; an option that does not apply to the chosen ``mode`` is left out (it stays ``None``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from flowbridge.checks import check_positive_int

__all__ = ["CocoOptions", "MODES", "SPLITS", "KARPATHY_SPLITS"]

MODES = ("images", "features")
SPLITS = ("train", "val", "test")
#: The Karpathy split's four parts; ``restval`` (30k val2014 images) joins training, as in
#: every paper that reports on this split.
KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}

_MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "images": {"images": "images", "size": 64, "channels": 3, "cache": "cache", "workers": 4},
    "features": {},
}
_MODE_OPTIONS = {"images": ("images", "size", "channels", "cache", "workers"),
                 "features": ("features", "feature_ids")}  # fmt: skip


def _check_str(value: Any, name: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise TypeError(
            f"coco option {name} must be a{'' if allow_empty else ' non-empty'} str (a path), "
            f"got {type(value).__name__} {value!r}"
        )
    return value


@dataclass(frozen=True)
class CocoOptions:
    """Options of :class:`~flowbridge_coco.CocoDataset`.

    Relative paths start from ``root``.

    Attributes:
        root: the COCO folder (default ``"data/coco"``).
        annotations: a Karpathy split file (default ``"dataset_coco.json"``), or a table
            ``{split: path}`` of official captions files (see
            :func:`~flowbridge_coco.annotations.read_annotations`).
        mode: ``"images"`` (read image files) or ``"features"`` (precomputed vectors).
        images: the image folder, holding ``train2014/`` and ``val2014/`` (images mode;
            default ``"images"``).
        size: side of the square images, in pixels (images mode; default 64).
        channels: 3 (RGB) or 1 (grayscale) (images mode; default 3).
        cache: folder of the resized-image cache files; ``""`` turns caching off (images
            mode; default ``"cache"``).
        workers: threads decoding images when a cache is built (images mode; default 4).
        features: the feature matrix ``[n_images, feature_dim]``, ``.npy`` or ``.pt``
            (features mode; required).
        feature_ids: the image id of each feature row: ``.txt``, ``.json``, ``.npy`` or
            ``.pt`` (features mode; required).
        splits: where each annotation split goes: a table ``{source: target}`` with targets
            ``"train"``, ``"val"``, ``"test"`` or ``""`` (left out). Default: the Karpathy
            split with ``restval`` in training.
        captions_per_image: captions per image used as pairs, the first ones in file order
            (0 = all; default 5, as COCO has 5 to 7). Evaluation uses all of them.
        max_length: leave out of the pairs any caption longer than this many tokens (the
            text domain's tokenizer; 0 = no limit). Evaluation references keep them.
        max_images: use only the first this many images of each split (0 = all), for quick
            runs.
    """

    root: str = "data/coco"
    annotations: str | dict[str, str] = "dataset_coco.json"
    mode: str = "images"
    images: str | None = None
    size: int | None = None
    channels: int | None = None
    cache: str | None = None
    workers: int | None = None
    features: str | None = None
    feature_ids: str | None = None
    splits: dict[str, str] = field(default_factory=lambda: dict(KARPATHY_SPLITS))
    captions_per_image: int = 5
    max_length: int = 0
    max_images: int = 0

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"coco option mode must be one of {list(MODES)}, got {self.mode!r}")
        other = next(m for m in MODES if m != self.mode)
        for name in _MODE_OPTIONS[other]:
            if getattr(self, name) is not None:
                raise ValueError(
                    f"coco option {name} applies to mode={other!r} only, but mode="
                    f"{self.mode!r}; leave {name} out"
                )
        for name, value in _MODE_DEFAULTS[self.mode].items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, value)
        _check_str(self.root, "root")
        self._check_annotations()
        self._check_splits()
        for name in ("captions_per_image", "max_length", "max_images"):
            check_positive_int(getattr(self, name), f"coco option {name}", allow_zero=True)
        if self.mode == "images":
            self._check_images()
        else:
            for name in ("features", "feature_ids"):
                if getattr(self, name) is None:
                    raise ValueError(
                        f"coco option {name} is required with mode='features': the path of "
                        f"the {'feature matrix' if name == 'features' else 'row id file'}"
                    )
                _check_str(getattr(self, name), name)

    def _check_annotations(self) -> None:
        if isinstance(self.annotations, Mapping):
            for split, path in self.annotations.items():
                _check_str(path, f"annotations.{split}")
            return
        _check_str(self.annotations, "annotations")

    def _check_splits(self) -> None:
        if not isinstance(self.splits, Mapping) or not self.splits:
            raise TypeError(
                f"coco option splits must be a non-empty table {{source = target}}, got "
                f"{self.splits!r}"
            )
        for source, target in self.splits.items():
            if target not in (*SPLITS, ""):
                raise ValueError(
                    f"coco option splits.{source} must be one of {list(SPLITS)} or '' (left "
                    f"out), got {target!r}"
                )

    def _check_images(self) -> None:
        _check_str(self.images, "images")
        _check_str(self.cache, "cache", allow_empty=True)
        check_positive_int(self.size, "coco option size")
        check_positive_int(self.workers, "coco option workers")
        if self.size < 16 or self.size % 8:
            raise ValueError(
                f"coco option size must be a multiple of 8 and >= 16 (the image domain's "
                f"rule), got {self.size}"
            )
        if check_positive_int(self.channels, "coco option channels") not in (1, 3):
            raise ValueError(f"coco option channels must be 1 or 3, got {self.channels!r}")

    def as_dict(self) -> dict[str, Any]:
        """The resolved options; ``CocoOptions(**as_dict())`` rebuilds the same options."""
        return asdict(self)
