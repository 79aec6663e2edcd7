"""The LNFMM evaluation on COCO: image captioning and text-to-image synthesis.

**Captioning** (:func:`evaluate_captioning`), for every image of the split:

1. K caption samples (default 100, each decoded by beam search of width 2);
2. *oracle* (best-of-K) and mean-of-K BLEU-1..4, METEOR, ROUGE-L, CIDEr-D against the
   image's references (:func:`flowbridge.metrics.caption_scores`);
3. *consensus re-ranking* (:mod:`~flowbridge_coco.consensus`, k = 60 neighbours by image
   feature, m = 125; fewer when the training split has fewer images or references, and the
   metrics record how many were used): the top-ranked caption is scored the same way, and
   at corpus level as COCO caption tables are (``consensus_corpus``: corpus BLEU, METEOR's
   aggregate);
4. *diversity* of the top ``diversity_top`` re-ranked captions (default 5, the "best-5"
   protocol of the diverse-captioning papers LNFMM compares with; 0 = all K): Div-1, Div-2,
   mBLEU-4, unique and novel fractions, self-CIDEr. An empty caption (no words decoded) is
   not novel.

Image features for the neighbours are the dataset's features in features mode (the paper's
VGG vectors) and the bridge's shared image codes in images mode.

**Text-to-image** (:func:`evaluate_text_to_image`): K images for the first reference caption
of each image, written as PNG grids (one row per caption) with a Markdown index, and, given a
feature extractor, Fréchet distance, precision and recall against the real images
(:mod:`~flowbridge_coco.image_metrics`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from flowbridge import Bridge
from flowbridge.checks import check_positive_int
from flowbridge.files import atomic_write, atomic_write_text
from flowbridge.metrics import CiderD, caption_diversity, caption_scores
from flowbridge_image import save_image_grid

from .consensus import consensus_order, nearest_neighbours
from .dataset import CocoDataset, CocoImages
from .errors import CocoDataError
from .image_metrics import image_feature_scores
from .sampling import batches, encode_shared, sample_captions, sample_images

__all__ = [
    "CaptioningSettings",
    "CaptioningResult",
    "TextToImageSettings",
    "FeatureExtractor",
    "evaluate_captioning",
    "evaluate_text_to_image",
    "image_features",
    "extract_features",
]

#: Maps a batch of images ``[b, C, H, W]`` in [0, 1] to feature vectors ``[b, d]``.
FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]

#: :func:`flowbridge.metrics.caption_diversity`'s keys as ``results.json`` names them (the
#: papers' names, which :mod:`~flowbridge_coco.report` reads), in the file's order.
_DIVERSITY_NAMES = {
    "unique": "unique",
    "novel": "novel",
    "div_1": "Div-1",
    "div_2": "Div-2",
    "mbleu_4": "mBLEU-4",
    "self_cider": "self-CIDEr",
}


def _check_settings(settings: Any) -> None:
    """Counts are ints >= 1 (>= 0 for seeds and "0 = all" limits), ``temperature`` > 0."""
    for name, value in asdict(settings).items():
        if name == "temperature":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"temperature must be a number > 0, got {value!r}")
        elif name != "meteor":
            zero_ok = name.startswith("max_") or name in ("seed", "diversity_top")
            check_positive_int(value, name, allow_zero=zero_ok)


@dataclass(frozen=True)
class CaptioningSettings:
    """How :func:`evaluate_captioning` samples and scores.

    Attributes:
        samples: K caption samples per image (100 as the authors' follow-up evaluation).
        beam_size: beam width decoding each sample (2 as the original).
        temperature: τ scaling the residual prior's noise.
        neighbours: k training images whose references form the consensus pool (60).
        consensus_top: m similarities summed per candidate (125).
        diversity_top: re-ranked captions per image the diversity metrics see (5; 0 = all K).
        batch_size: images per translation batch.
        seed: seed of the residual noise.
        meteor: score METEOR (runs Java; off = faster).
        max_images: evaluate only the split's first this many images (0 = all).
    """

    samples: int = 100
    beam_size: int = 2
    temperature: float = 1.0
    neighbours: int = 60
    consensus_top: int = 125
    diversity_top: int = 5
    batch_size: int = 16
    seed: int = 0
    meteor: bool = True
    max_images: int = 0

    def __post_init__(self):
        _check_settings(self)


@dataclass
class CaptioningResult:
    """What :func:`evaluate_captioning` measured.

    Attributes:
        metrics: the JSON-ready numbers and settings (see :func:`evaluate_captioning`).
        captions: each image id's K samples, best consensus score first.
    """

    metrics: dict[str, Any]
    captions: dict[int, list[str]]


def image_features(
    bridge: Bridge, dataset: CocoDataset, images: CocoImages, progress: bool = False
) -> torch.Tensor:
    """Features ``[n, d]`` by which consensus re-ranking finds neighbours: the dataset's own
    feature vectors in features mode, the bridge's shared image codes in images mode."""
    if dataset.config.mode == "features":
        return images.data
    return encode_shared(bridge, images.items, "image", progress=progress)


def _first(images: CocoImages, n: int) -> CocoImages:
    if not n or n >= len(images):
        return images
    return CocoImages(images.ids[:n], images.data[:n], images.references[:n], images.files[:n])


def evaluate_captioning(
    bridge: Bridge,
    dataset: CocoDataset,
    split: str = "test",
    settings: CaptioningSettings | None = None,
    progress: bool = False,
) -> CaptioningResult:
    """Caption every image of ``split`` K times and score the samples as LNFMM did.

    Returns:
        ``metrics`` = ``{"task", "split", "images", "settings", "used", "oracle": {metric:
        value}, "mean_of_k": {...}, "consensus": {...}, "diversity": {...}, "skipped":
        {metric: reason}}`` and the ranked captions of every image. ``settings`` are as
        asked; ``used`` = ``{"neighbours", "consensus_top": [fewest, most]}`` is what consensus
        re-ranking could apply: at most as many neighbours as training images, and per image
        at most as many similarities as its neighbours have references.
        ``diversity["novel"]`` is the fraction of captions that are neither empty nor a
        training caption: an empty caption is counted, as not novel.

    Raises:
        CocoDataError: the dataset's items do not fit the bridge's image domain
            (:meth:`CocoDataset.check_image_domain`), or a file is missing or malformed.
    """
    settings = settings or CaptioningSettings()
    dataset.check_image_domain(bridge.domains[bridge.side("image")])
    test = _first(dataset.images(split), settings.max_images)
    train = dataset.images("train")
    candidates = sample_captions(
        bridge,
        test.items,
        settings.samples,
        beam_size=settings.beam_size,
        temperature=settings.temperature,
        batch_size=settings.batch_size,
        seed=settings.seed,
        progress=progress,
    )
    neighbours = nearest_neighbours(
        image_features(bridge, dataset, test, progress),
        image_features(bridge, dataset, train, progress),
        settings.neighbours,
        device=bridge.device,
    )
    cider = CiderD(train.references)
    orders = consensus_order(
        candidates, neighbours, train.references, cider, settings.consensus_top, progress
    )
    ranked = [[row[j] for j in order] for row, order in zip(candidates, orders, strict=True)]
    pools = [sum(len(train.references[j]) for j in near) for near in neighbours.tolist()]
    oracle = caption_scores(candidates, test.references, meteor=settings.meteor)
    consensus = caption_scores([r[:1] for r in ranked], test.references, meteor=settings.meteor)
    top = [r[: settings.diversity_top] if settings.diversity_top else r for r in ranked]
    # The training images' references are dataset.training_captions(), grouped by image.
    scores = caption_diversity(top, train.references)
    diversity = {
        "captions_per_image": len(top[0]),
        **{name: scores[key] for key, name in _DIVERSITY_NAMES.items() if key in scores},
    }
    metrics = {
        "task": "captioning",
        "split": split,
        "images": len(test),
        "settings": asdict(settings),
        "used": {
            "neighbours": neighbours.shape[1],
            "consensus_top": [min(settings.consensus_top, n) for n in (min(pools), max(pools))],
        },
        "oracle": oracle["best"],
        "mean_of_k": oracle["mean"],
        "consensus": consensus["mean"],
        # What COCO caption tables (and the LNFMM paper) report for one caption per image:
        # corpus BLEU and METEOR's aggregate, not the mean of per-caption scores above.
        "consensus_corpus": consensus["corpus"],
        "diversity": diversity,
        "skipped": oracle["skipped"],
    }
    return CaptioningResult(metrics, dict(zip(test.ids, ranked, strict=True)))


@dataclass(frozen=True)
class TextToImageSettings:
    """How :func:`evaluate_text_to_image` samples and scores.

    Attributes:
        samples: K images per caption.
        temperature: τ scaling the residual prior's noise.
        batch_size: captions per translation batch (also images per feature batch × K).
        seed: seed of the residual noise.
        max_captions: use only the first this many images' captions (0 = all).
        grid_rows: captions per PNG grid.
        k: neighbours defining the precision/recall balls (3).
    """

    samples: int = 10
    temperature: float = 1.0
    batch_size: int = 16
    seed: int = 0
    max_captions: int = 0
    grid_rows: int = 16
    k: int = 3

    def __post_init__(self):
        _check_settings(self)


def extract_features(
    extractor: FeatureExtractor, images: torch.Tensor, batch_size: int = 64
) -> torch.Tensor:
    """Run ``extractor`` over ``images [n, C, H, W]`` (``uint8`` or floats in [0, 1]) in
    batches; returns ``[n, d]`` on the CPU.

    Raises:
        ValueError: the extractor raised (the message names it and the batch's shape), or
            returned something other than features ``[b, d]``.
    """
    features = []
    with torch.no_grad():
        for part in batches(len(images), batch_size):
            batch = images[part]
            batch = batch.float() / 255 if batch.dtype == torch.uint8 else batch
            try:
                out = extractor(batch)
            except Exception as exc:  # the user's code: say which code failed, and on what
                qualname = getattr(extractor, "__qualname__", type(extractor).__qualname__)
                name = f"{getattr(extractor, '__module__', '?')}:{qualname}"
                raise ValueError(
                    f"the feature extractor {name} (--extractor) failed on images "
                    f"{list(batch.shape)} in [0, 1]: {type(exc).__name__}: {exc}"
                ) from exc
            if not isinstance(out, torch.Tensor) or out.dim() != 2 or len(out) != len(batch):
                shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"the feature extractor must map images [{len(batch)}, C, H, W] to "
                    f"features [{len(batch)}, d], got {shape}"
                )
            features.append(out.detach().float().cpu())
    return torch.cat(features)


def _write_grids(images: torch.Tensor, captions: list[str], out: Path, rows: int) -> list[Path]:
    """PNG grids of ``rows`` captions each (one row per caption, one column per sample) of
    ``images``, ``uint8 [n, K, C, H, W]``, and a Markdown index ``grids.md`` naming each row's
    caption."""
    lines = ["# Text-to-image samples", ""]
    paths = []
    for number, start in enumerate(range(0, len(captions), rows)):
        # One grid's rows as floats at a time, not the whole split's.
        grid = images[start : start + rows].float() / 255
        path = save_image_grid(grid, out / f"grid_{number:03d}.png")
        paths.append(path)
        lines += [f"## {path.name}", "", f"![{path.name}]({path.name})", ""]
        lines += [f"{i + 1}. {caption}" for i, caption in enumerate(captions[start : start + rows])]
        lines.append("")
    paths.append(atomic_write_text(out / "grids.md", "\n".join(lines)))
    return paths


def evaluate_text_to_image(
    bridge: Bridge,
    dataset: CocoDataset,
    out: str | os.PathLike,
    split: str = "test",
    extractor: FeatureExtractor | None = None,
    real_features: torch.Tensor | None = None,
    settings: TextToImageSettings | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Generate K images for each caption of ``split``, write them, and score them.

    Writes ``out/grids/grid_NNN.png`` with ``out/grids/grids.md`` (which caption each row
    shows) and ``out/generated.pt`` (``uint8 [n, K, C, H, W]``, for feature extractors run
    elsewhere: ``flowbridge-coco fid``).

    Args:
        extractor: maps images to features; without one FID, precision and recall are
            skipped.
        real_features: features ``[n, d]`` of real images (with an ``extractor``, for the
            generated ones); default: ``extractor`` applied to the split's images (needs the
            dataset's images mode).

    Returns:
        ``{"task", "split", "captions", "settings", "scores": {"FID", "precision",
        "recall", "real", "generated"}, "files": [...], "skipped": {...}}``.

    Raises:
        CocoDataError: as :func:`evaluate_captioning`.
        ValueError: the extractor failed (see :func:`extract_features`); or, before any
            sampling, ``real_features`` came without an ``extractor``, or there are fewer
            than ``settings.k + 1`` real or generated images for precision and recall.
    """
    settings = settings or TextToImageSettings()
    dataset.check_image_domain(bridge.domains[bridge.side("image")])
    out = Path(out)
    test = _first(dataset.images(split), settings.max_captions)
    captions = [references[0] for references in test.references]
    if real_features is not None and extractor is None:
        raise ValueError(
            "real image features (--real-features) need a feature extractor (--extractor) for "
            "the generated images' features, to compare them with"
        )
    if extractor is not None:  # before sampling: a refusal after it would waste the samples
        real = len(real_features) if real_features is not None else len(test.ids)
        fake, least = len(captions) * settings.samples, settings.k + 1
        if min(real, fake) < least:
            raise ValueError(
                f"precision and recall with k = {settings.k} neighbours (--pr-neighbours) "
                f"need at least {least} real and {least} generated images, got {real} real "
                f"({split} split) and {fake} generated; lower k or score more captions"
            )
    generated = sample_images(
        bridge,
        captions,
        settings.samples,
        temperature=settings.temperature,
        batch_size=settings.batch_size,
        seed=settings.seed,
        progress=progress,
        # Score exactly what is saved: 8-bit images, as the real ones are.
        quantize=True,
    )
    files = _write_grids(generated, captions, out / "grids", settings.grid_rows)
    files.append(atomic_write(out / "generated.pt", lambda file: torch.save(generated, file)))
    result: dict[str, Any] = {
        "task": "text-to-image",
        "split": split,
        "captions": len(captions),
        "settings": asdict(settings),
        "files": [str(path) for path in files],
        "skipped": {},
    }
    if extractor is None:
        result["skipped"]["FID"] = (
            "no feature extractor given: pass one (--extractor module:function) or extract "
            "features of generated.pt elsewhere and run flowbridge-coco fid"
        )
        return result
    fake = extract_features(extractor, generated.flatten(0, 1), settings.batch_size)
    if real_features is None:
        if dataset.config.mode != "images":
            raise CocoDataError(
                "real image features are needed: give real_features (--real-features), or "
                "evaluate a dataset in mode='images' so the extractor sees the real images"
            )
        real_features = extract_features(extractor, test.data, settings.batch_size)
    result["scores"] = image_feature_scores(real_features, fake, settings.k)
    return result
