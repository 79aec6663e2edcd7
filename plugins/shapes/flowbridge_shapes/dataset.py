"""The "shapes" paired dataset: rendered images and underspecified captions, many to many."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from flowbridge.checks import check_positive_int
from flowbridge.domain import Domain, PairedDataset, PairedSplit

from .attributes import all_combinations, held_out_pairs, sample_attributes
from .captions import sample_caption
from .render import render

__all__ = ["ShapesDataset"]

_SPLITS = ("train", "val", "test", "novel")


class ShapesDataset(PairedDataset):
    """Procedural image/caption pairs with known attributes (no files, no downloads).

    Every image shows one object (shape, colour, size, horizontal and vertical position, with
    jitter); each image is paired with ``captions_per_image`` independent captions, each
    stating a random non-empty subset of its attributes. So one image has many true captions
    and one caption many fitting images.

    Splits: ``train``, ``val`` and ``test`` draw from the same attribute combinations;
    ``novel`` draws only from combinations whose (shape, colour) pair never occurs in the other
    splits (``novel_pairs`` pairs, chosen by ``seed``). Sizes count *images*; a split has
    ``size * captions_per_image`` pairs, the image repeated (the same tensor) for each caption.

    ``meta[i]`` of a pair: ``{"image": index of the image within the split, "attributes":
    the image's attributes, "claims": what the caption states}``.

    Args:
        train_size, val_size, test_size, novel_size: images per split.
        captions_per_image: captions paired with each image.
        image_size: image side in pixels (the layout scales with it; 32 by default).
        novel_pairs: (shape, colour) pairs held out for the ``novel`` split.
        seed: everything is a deterministic function of the options.
    """

    name: ClassVar[str] = "shapes"
    domains: ClassVar[tuple[str, str]] = ("image", "text")
    splits: ClassVar[tuple[str, ...]] = _SPLITS

    def __init__(
        self,
        train_size: int = 2000,
        val_size: int = 200,
        test_size: int = 200,
        novel_size: int = 200,
        captions_per_image: int = 3,
        image_size: int = 32,
        novel_pairs: int = 4,
        seed: int = 0,
    ):
        sizes = dict(train=train_size, val=val_size, test=test_size, novel=novel_size)
        for split, n in sizes.items():
            check_positive_int(n, f"{split}_size", allow_zero=True)
        check_positive_int(captions_per_image, "captions_per_image")
        check_positive_int(image_size, "image_size")
        if image_size < 16:
            raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
        check_positive_int(seed, "seed", allow_zero=True)
        self.sizes = sizes
        self.captions_per_image = captions_per_image
        self.image_size = image_size
        self.seed = seed
        #: the (shape, colour) pairs only the novel split shows
        self.held_out = held_out_pairs(novel_pairs, seed)
        combos = all_combinations()
        self.combinations = {
            "seen": [c for c in combos if (c["shape"], c["color"]) not in self.held_out],
            "novel": [c for c in combos if (c["shape"], c["color"]) in self.held_out],
        }
        self.options = {
            **{f"{split}_size": n for split, n in sizes.items()},
            "captions_per_image": captions_per_image,
            "image_size": image_size,
            "novel_pairs": novel_pairs,
            "seed": seed,
        }
        self._cache: dict[str, PairedSplit] = {}

    def check_domains(self, image: Domain, text: Domain) -> None:
        """The image domain must take this testbed's RGB images of ``image_size`` pixels."""
        options = image.options
        wanted = {"encoder": "conv", "size": self.image_size, "channels": 3}
        for key, value in wanted.items():
            if options.get(key, value) != value:
                raise ValueError(
                    f"the shapes images need the image domain's {key} = {value!r} (shapes option "
                    f"image_size is {self.image_size}, RGB), but it is {options.get(key)!r}"
                )

    def split(self, name: str) -> PairedSplit:
        if name not in self._cache:
            self._cache[name] = self._make(name)
        return self._cache[name]

    def combinations_of(self, name: str) -> list[dict[str, str]]:
        """The attribute combinations split ``name`` draws its images from: the held-out
        (shape, colour) pairs for ``novel``, every other combination for the others."""
        if name not in _SPLITS:
            raise ValueError(f"unknown split {name!r} of dataset 'shapes'; splits: {_SPLITS}")
        return self.combinations["novel" if name == "novel" else "seen"]

    def _make(self, name: str) -> PairedSplit:
        # One independent random stream per split: a split does not change when another's
        # size does.
        pool = self.combinations_of(name)
        rng = np.random.default_rng([self.seed, _SPLITS.index(name)])
        n = self.sizes[name]
        if n and not pool:
            raise ValueError("the novel split needs novel_pairs >= 1 (or novel_size=0)")
        attributes = sample_attributes(n, rng, pool)
        images = list(render(attributes, rng, self.image_size).unbind(0))
        a, b, meta = [], [], []
        for index, (image, attrs) in enumerate(zip(images, attributes, strict=True)):
            for _ in range(self.captions_per_image):
                caption, claims = sample_caption(attrs, rng)
                a.append(image)
                b.append(caption)
                meta.append({"image": index, "attributes": dict(attrs), "claims": claims})
        return PairedSplit(a, b, meta)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"ShapesDataset({options})"
