r"""Testbed metrics: accuracy and diversity of generated items, judged by the oracle.

The functions take the generated items (``items[i][k]``: sample ``k`` for input ``i``) and the
meta of the pairs the inputs came from (``meta[i]``, as :class:`~.dataset.ShapesDataset`
writes it), so the demo and the benchmark call them on any model's outputs.

Image -> text (:func:`caption_metrics`, inputs are images, ``meta[i]["attributes"]``):

* ``accuracy``: captions that parse and whose every claim holds for the image;
* ``distinct_valid``: distinct accurate captions / K, averaged over inputs (collapse to one
  caption per image scores 1/K however accurate it is);
* ``parsed``: captions inside the testbed's grammar;
* with the training captions given (``training``), the diversity metrics of the captioning
  literature (:func:`flowbridge.metrics.caption_diversity`, also exported here): ``div_1``,
  ``div_2``, ``mbleu_4``, ``unique``, ``novel`` and ``self_cider``.

Text -> image (:func:`image_metrics`, inputs are captions, ``meta[i]["claims"]``):

* ``accuracy``: images whose read attributes satisfy every claim of the caption (a shape the
  oracle leaves undecided, a blob, satisfies no stated shape);
* ``unstated_entropy``: for each attribute the caption leaves open, the entropy of its value
  over the input's readable images (for the shape, those whose shape is decided) divided by
  :math:`\log(\#\text{values})`, averaged over those attributes and inputs (0: every sample
  alike; 1: values spread evenly);
* ``readable``: images in which the oracle finds an object.

Ceilings (:func:`caption_ceiling`, :func:`image_ceiling`) score the data itself on the same
inputs: K true captions from the caption sampler, K real images that fit the caption, drawn
from the attribute combinations of the inputs' split (the held-out pairs only in the novel
split, never in the others: the data of a split never shows the other's).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from flowbridge.metrics import caption_diversity

from .attributes import ATTRIBUTES, all_combinations, sample_attributes
from .captions import claims_hold, normalize_caption, parse_caption, sample_captions
from .oracle import read_images
from .render import render

__all__ = [
    "caption_metrics",
    "caption_diversity",
    "captions_by_image",
    "image_metrics",
    "caption_ceiling",
    "image_ceiling",
    "sample_images",
    "image_reconstruction",
    "attributes_kept",
    "caption_reconstruction",
    "one_pair_per_image",
]


def _check_rows(items: object, meta: object, key: str, what: str) -> list[dict]:
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise TypeError(f"{what} must be a list with one list of K samples per input")
    if not isinstance(meta, Sequence) or len(meta) != len(items):
        count = len(meta) if isinstance(meta, Sequence) else type(meta).__name__
        raise ValueError(
            f"{what} has {len(items)} inputs but meta has {count}; give the meta of the pair "
            f"each input came from (split.meta[i])"
        )
    for i, (row, m) in enumerate(zip(items, meta, strict=True)):
        if isinstance(row, str) or not isinstance(row, Sequence) or not row:
            raise ValueError(f"{what}[{i}] must be a non-empty list of samples")
        if not isinstance(m, Mapping) or key not in m:
            raise ValueError(f"meta[{i}] must be a dict with {key!r} (the dataset's meta)")
    return [dict(m[key]) for m in meta]


def caption_metrics(
    captions: Sequence[Sequence[str]],
    meta: Sequence[Mapping],
    training: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """Image -> text accuracy and diversity; ``captions[i]`` are the K captions generated for
    the image of ``meta[i]``. With ``training`` (the training captions, one list per image:
    :func:`captions_by_image`), also :func:`caption_diversity`."""
    attributes = _check_rows(captions, meta, "attributes", "captions")
    accurate, parsed, distinct_valid = [], [], []
    for samples, attrs in zip(captions, attributes, strict=True):
        claims = [parse_caption(c) for c in samples]
        ok = [claims_hold(c, attrs) for c in claims]
        accurate += ok
        parsed += [c is not None for c in claims]
        valid = {normalize_caption(c) for c, good in zip(samples, ok, strict=True) if good}
        distinct_valid.append(len(valid) / len(samples))
    result = {
        "accuracy": float(np.mean(accurate)),
        "distinct_valid": float(np.mean(distinct_valid)),
        "parsed": float(np.mean(parsed)),
    }
    if training is not None:
        result.update(caption_diversity(captions, training))
    return result


def captions_by_image(meta: Sequence[Mapping], captions: Sequence[str]) -> list[list[str]]:
    """The captions of each image, in the order of the images' first pairs: ``captions[j]``
    is the caption of the pair with ``meta[j]`` (a split's ``b`` and ``meta``)."""
    if len(meta) != len(captions):
        raise ValueError(f"{len(captions)} captions but meta of {len(meta)} pairs")
    groups: dict[int, list[str]] = {}
    for m, caption in zip(meta, captions, strict=True):
        groups.setdefault(m["image"], []).append(caption)
    return list(groups.values())


def _normalised_entropy(values: list[str], attribute: str) -> float:
    counts = np.array(list(Counter(values).values()), dtype=np.float64)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum() / math.log(len(ATTRIBUTES[attribute])))


def image_metrics(
    images: Sequence[Sequence[torch.Tensor]], meta: Sequence[Mapping], by_attribute: bool = False
) -> dict[str, Any]:
    """Text -> image accuracy and diversity; ``images[i]`` are the K images (``[3, H, W]`` in
    [0, 1]) generated for the caption of ``meta[i]``.

    ``unstated_entropy`` is NaN when every caption states every attribute. With
    ``by_attribute``, the same readings also give ``"by_attribute"``: for each attribute,
    ``wrong``, the share of readable images drawn with another value where the caption states
    it (an undecided shape included), and ``entropy``, the mean normalised entropy of its
    values among the readable images of a caption that leaves it open (NaN where no caption
    states it, or none leaves it open).
    """
    claims = _check_rows(images, meta, "claims", "images")
    flat = [image for row in images for image in row]
    read = iter(read_images(flat))
    accurate, readable, unstated = [], [], []
    wrong: dict[str, list[bool]] = {attribute: [] for attribute in ATTRIBUTES}
    entropies: dict[str, list[float]] = {attribute: [] for attribute in ATTRIBUTES}
    for row, stated in zip(images, claims, strict=True):
        found = [next(read) for _ in row]
        accurate += [claims_hold(stated, attrs) for attrs in found]
        readable += [attrs is not None for attrs in found]
        seen = [attrs for attrs in found if attrs is not None]
        for attribute in ATTRIBUTES:
            if attribute in stated:
                wrong[attribute] += [attrs[attribute] != stated[attribute] for attrs in seen]
            elif values := [a[attribute] for a in seen if a[attribute] is not None]:
                entropy = _normalised_entropy(values, attribute)
                entropies[attribute].append(entropy)
                unstated.append(entropy)
    result: dict[str, Any] = {
        "accuracy": float(np.mean(accurate)),
        "unstated_entropy": float(np.mean(unstated)) if unstated else math.nan,
        "readable": float(np.mean(readable)),
    }
    if by_attribute:
        result["by_attribute"] = {
            attribute: {
                "wrong": float(np.mean(wrong[attribute])) if wrong[attribute] else math.nan,
                "entropy": (
                    float(np.mean(entropies[attribute])) if entropies[attribute] else math.nan
                ),
            }
            for attribute in ATTRIBUTES
        }
    return result


def caption_ceiling(
    meta: Sequence[Mapping],
    k: int,
    seed: int = 0,
    training: Sequence[Sequence[str]] | None = None,
) -> dict[str, float]:
    """:func:`caption_metrics` of K true captions per image drawn from the data's caption
    sampler: what the data itself scores on these inputs (``training``: as there)."""
    rng = np.random.default_rng([seed, 0xCA9])
    rows = [sample_captions(m["attributes"], k, rng) for m in meta]
    return caption_metrics(rows, meta, training)


def sample_images(
    claims: Mapping[str, str],
    k: int,
    rng: np.random.Generator,
    image_size: int = 32,
    combinations: Sequence[Mapping[str, str]] | None = None,
) -> list[torch.Tensor]:
    """``k`` real images that fit a caption's claims: the attributes it leaves open drawn
    uniformly among ``combinations`` (default: all) that agree with the claims."""
    pool = [c for c in (combinations or all_combinations()) if claims_hold(claims, c)]
    if not pool:
        raise ValueError(f"no attribute combination satisfies the claims {dict(claims)}")
    return list(render(sample_attributes(k, rng, pool), rng, image_size).unbind(0))


def image_ceiling(
    meta: Sequence[Mapping],
    k: int,
    seed: int = 0,
    image_size: int = 32,
    combinations: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, float]:
    """:func:`image_metrics` of K real images per caption (:func:`sample_images`), drawn from
    ``combinations``: those of the inputs' split (``ShapesDataset.combinations_of(split)``),
    so that the ceiling is that split's data; default: all."""
    rng = np.random.default_rng([seed, 0x1A6])
    rows = [sample_images(m["claims"], k, rng, image_size, combinations) for m in meta]
    return image_metrics(rows, meta)


def image_reconstruction(
    originals: Sequence[torch.Tensor], reconstructions: Sequence[torch.Tensor]
) -> dict[str, float]:
    """How well reconstructions keep images: mean squared error, PSNR (dB, of the mean MSE,
    peak 1) and ``attributes_kept``, the fraction whose oracle reading equals the original's."""
    if len(originals) != len(reconstructions) or not originals:
        raise ValueError(
            f"need as many reconstructions as originals (at least one), got "
            f"{len(reconstructions)} and {len(originals)}"
        )
    x, y = torch.stack(list(originals)).float(), torch.stack(list(reconstructions)).float()
    if x.shape != y.shape:
        raise ValueError(f"originals are {list(x.shape)} but reconstructions {list(y.shape)}")
    mse = float((x - y).square().mean())
    return {
        "mse": mse,
        "psnr": 10 * math.log10(1 / mse) if mse > 0 else math.inf,
        "attributes_kept": attributes_kept(read_images(x), read_images(y)),
    }


def attributes_kept(
    originals: Sequence[Mapping[str, str | None] | None],
    reconstructions: Sequence[Mapping[str, str | None] | None],
) -> float:
    """The fraction of reconstructions whose oracle reading equals their original's (an
    original the oracle cannot read, or whose shape it leaves undecided, counts as not kept),
    from :func:`~.oracle.read_images`."""
    pairs = list(zip(originals, reconstructions, strict=True))
    return float(np.mean([a is not None and None not in a.values() and a == b for a, b in pairs]))


def caption_reconstruction(
    originals: Sequence[str], reconstructions: Sequence[str]
) -> dict[str, float]:
    """How well reconstructions keep captions: ``exact`` (same words) and ``claims_kept``
    (parse to the same claims)."""
    if len(originals) != len(reconstructions) or not originals:
        raise ValueError(
            f"need as many reconstructions as originals (at least one), got "
            f"{len(reconstructions)} and {len(originals)}"
        )
    pairs = list(zip(originals, reconstructions, strict=True))
    exact = [normalize_caption(a) == normalize_caption(b) for a, b in pairs]
    kept = [(c := parse_caption(a)) is not None and c == parse_caption(b) for a, b in pairs]
    return {"exact": float(np.mean(exact)), "claims_kept": float(np.mean(kept))}


def one_pair_per_image(meta: Sequence[Mapping]) -> list[int]:
    """Indices of the first pair of each image of a split: the inputs of an image -> text
    evaluation (each image once)."""
    first: dict[int, int] = {}
    for index, m in enumerate(meta):
        first.setdefault(m["image"], index)
    return list(first.values())
