"""The ``coco`` paired dataset: COCO images (or their features) paired with their captions.

A split holds one pair per caption: ``a`` = the image item, ``b`` = the caption, and ``meta``
= ``{"image_id": id, "references": [every caption of the image]}``. The pairs of one image
share its item (one tensor, not copies), so a split of 113k images costs the images once.

Image items are ``uint8`` tensors ``[C, S, S]`` (the image domain's collate scales them to
[0, 1]) or, in features mode, float vectors ``[feature_dim]``. Evaluation works per image:
:meth:`CocoDataset.images` gives a split's images with all their references.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch

from flowbridge.domain import Domain, PairedDataset, PairedSplit
from flowbridge.plugins import options_signature, refuse_unknown_options
from flowbridge_text.tokenizer import tokenize

from .annotations import CocoImage, read_annotations
from .errors import CocoDataError
from .features import FeatureTable
from .images import load_images
from .options import SPLITS, CocoOptions

__all__ = ["CocoDataset", "CocoImages"]

_OPTION_NAMES = [f.name for f in fields(CocoOptions)]


@dataclass(frozen=True)
class CocoImages:
    """The images of one split, for evaluation.

    Attributes:
        ids: COCO image ids ``[n]``.
        data: the items stacked, ``uint8 [n, C, S, S]`` or ``float [n, feature_dim]``.
        references: every reference caption of each image.
        files: each image's path relative to the image folder.
    """

    ids: list[int]
    data: torch.Tensor
    references: list[list[str]]
    files: list[str]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def items(self) -> list[torch.Tensor]:
        """One item per image (views of :attr:`data`)."""
        return list(self.data.unbind(0))


class CocoDataset(PairedDataset):
    """COCO captions (Karpathy split by default) as pairs of ``("image", "text")`` items.

    Options are those of :class:`~flowbridge_coco.options.CocoOptions`; ``self.options``
    holds them resolved, so ``CocoDataset(**dataset.options)`` rebuilds the same dataset.
    Files are read on first use, and each split is loaded once per dataset object.

    Example:
        >>> dataset = CocoDataset(root="data/coco", size=64, max_images=1000)
        >>> train = dataset.split("train")         # one pair per caption
        >>> test = dataset.images("test")          # one entry per image, all references
    """

    name = "coco"
    domains = ("image", "text")
    splits = SPLITS

    def __init__(self, **options: Any):
        refuse_unknown_options("coco dataset", options, _OPTION_NAMES, "data.options")
        self.config = CocoOptions(**options)
        self.options = self.config.as_dict()
        self._annotated: list[CocoImage] | None = None
        self._features: FeatureTable | None = None
        self._images: dict[str, CocoImages] = {}

    # The options by name and default, for `flowbridge plugins --all` and the registry's check.
    __init__.__signature__ = options_signature(CocoOptions)

    def _path(self, relative: str) -> Path:
        return Path(self.config.root) / relative

    def _check_split(self, name: str) -> None:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; the coco dataset has {list(SPLITS)}")

    def annotated(self, split: str) -> list[CocoImage]:
        """The annotated images of ``split`` (after the ``splits`` mapping and
        ``max_images``), in file order."""
        self._check_split(split)
        if self._annotated is None:
            self._annotated = read_annotations(self.config.annotations, self.config.root)
            mapping = self.config.splits
            unmapped = sorted({i.split for i in self._annotated} - set(mapping))
            if unmapped:
                raise CocoDataError(
                    f"the annotations use splits {unmapped} that the coco option splits does "
                    f"not map (it maps {sorted(mapping)}); add them, e.g. splits = "
                    f'{{{unmapped[0]} = "train", ...}}'
                )
        chosen = [i for i in self._annotated if self.config.splits[i.split] == split]
        return chosen[: self.config.max_images] if self.config.max_images else chosen

    def images(self, split: str) -> CocoImages:
        """The images of ``split`` with all their references (loaded once, then kept)."""
        if split not in self._images:
            annotated = self.annotated(split)
            if not annotated:
                raise CocoDataError(
                    f"the {split} split has no images: none of the annotations' splits maps to "
                    f"{split!r} (coco option splits = {self.config.splits})"
                )
            self._images[split] = CocoImages(
                ids=[image.id for image in annotated],
                data=self._load(split, annotated),
                references=[list(image.captions) for image in annotated],
                files=[image.file for image in annotated],
            )
        return self._images[split]

    def _feature_table(self) -> FeatureTable:
        if self._features is None:
            c = self.config
            self._features = FeatureTable(self._path(c.features), self._path(c.feature_ids))
        return self._features

    def _load(self, split: str, annotated: list[CocoImage]) -> torch.Tensor:
        c = self.config
        if c.mode == "features":
            return self._feature_table().select([image.id for image in annotated])
        cache = None
        if c.cache:
            name = f"images-{split}-{len(annotated)}-{c.size}px-{c.channels}c.pt"
            cache = self._path(c.cache) / name
        return load_images(annotated, self._path(c.images), c.size, c.channels, cache, c.workers)

    def split(self, name: str) -> PairedSplit:
        """One pair per caption of every image of split ``name`` (see the module docstring)."""
        images = self.images(name)
        limit, longest = self.config.captions_per_image, self.config.max_length
        a, b, meta = [], [], []
        for image_id, item, references in zip(
            images.ids, images.items, images.references, strict=True
        ):
            record = {"image_id": image_id, "references": references}
            for caption in references[:limit] if limit else references:
                if longest and len(tokenize(caption)) > longest:
                    continue
                a.append(item)
                b.append(caption)
                meta.append(record)
        if not a:
            raise CocoDataError(
                f"the {name} split has no caption of at most max_length={longest} tokens; "
                f"raise coco option max_length (0 = no limit)"
            )
        return PairedSplit(a=a, b=b, meta=meta)

    def check_domains(self, image: Domain, text: Domain) -> None:
        """Training's check (:meth:`flowbridge.PairedDataset.check_domains`): the images fit
        the image domain (:meth:`check_image_domain`); any text domain takes the captions."""
        self.check_image_domain(image)

    def check_image_domain(self, domain: Domain) -> None:
        """Check that this dataset's items fit ``domain``, the image domain of a bridge: mode
        ``"images"`` needs its ``encoder = "conv"`` with the same ``size`` and ``channels``,
        mode ``"features"`` its ``encoder = "features"`` with the feature file's ``feature_dim``.

        Training (through :meth:`check_domains`), the evaluation functions and
        ``flowbridge-coco prepare`` call it, before any image is read (in features mode it
        reads the feature file, which they would read next).

        Raises:
            CocoDataError: a setting differs; the message names both.
        """
        encoder = domain.options.get("encoder")
        takes = "features" if encoder == "features" else "images"
        if self.config.mode != takes:
            raise CocoDataError(
                f"coco option mode ([data.options]) is {self.config.mode!r} but the image "
                f"domain's encoder is {encoder!r}, which takes {takes}; use mode = 'images' "
                f"with encoder = 'conv', or mode = 'features' with encoder = 'features'"
            )
        if takes == "features":
            # The feature file is read here (training and evaluation read it next anyway), so
            # that prepare names a feature_dim mismatch instead of passing it to training.
            ours, theirs = self._feature_table().feature_dim, domain.options.get("feature_dim")
            if ours != theirs:
                raise CocoDataError(
                    f"coco option features ({self.config.features}) holds vectors of {ours} "
                    f"dims but the image domain's feature_dim is {theirs}; set feature_dim = "
                    f"{ours} under the image domain's options, or extract {theirs}-dim features"
                )
            return
        for name in ("size", "channels"):
            ours, theirs = getattr(self.config, name), domain.options.get(name)
            if ours != theirs:
                raise CocoDataError(
                    f"coco option {name} ([data.options]) is {ours} but the image domain's "
                    f"{name} is {theirs}; set them equal"
                )

    def training_captions(self) -> list[str]:
        """Every caption of the training images (what a "novel" caption is not)."""
        return [caption for image in self.annotated("train") for caption in image.captions]
