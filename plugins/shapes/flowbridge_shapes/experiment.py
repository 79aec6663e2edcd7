"""Train and score LNFMM variants on the shapes testbed (shared by the demo and the benchmark).

A *variant* is a name for a residual-prior family plus a few settings; everything else is
:data:`TESTBED` — the testbed's default model, small enough for 2 CPU cores.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from flowbridge import Bridge, PairedSplit, RunConfig, load_run_config
from flowbridge.config import merge_settings
from flowbridge.metrics import accuracy_gap

from .dataset import ShapesDataset
from .metrics import (
    caption_ceiling,
    caption_metrics,
    caption_reconstruction,
    captions_by_image,
    image_ceiling,
    image_metrics,
    image_reconstruction,
    one_pair_per_image,
)

__all__ = [
    "TESTBED",
    "EvaluateAt",
    "VARIANTS",
    "testbed_data",
    "run_config",
    "evaluate",
    "evaluate_split",
    "data_ceilings",
    "scoring",
    "summary",
    "TEMPERATURES",
    "text_to_image_tradeoff",
    "at_equal_diversity",
    "names",
    "inputs_scored",
    "strict_json",
]

#: The testbed's run configuration (images are domain a, captions domain b).
TESTBED: dict[str, Any] = {
    "preset": "small",
    "data": {"dataset": "shapes", "options": {"train_size": 2000, "seed": 0}},
    "domains": {
        "a": {
            "name": "image",
            "options": {
                "size": 32,
                "channels": 3,
                "loss": "bce",
                "hidden": 32,
                # Edge pixels weighed 1 + 6e: the image residual then holds the shape of a
                # small object (open shapes drawn as blobs from the image's own residual
                # 26-29% of the time instead of 46-50%), but the decoder follows the
                # residual's colour over the caption's too. Classifier-free guidance undoes
                # that: each row's shared code dropped 15% of the time in training, and
                # generated images decoded as D(s, r) + (D(s, r) - D(0, r)). After 1,500
                # steps text->image +7.7 and +3.7 points at equal diversity (seeds 0 and 1),
                # with 5 points more of the entropy's ceiling at temperature 1
                # (benchmarks/README.md).
                "edge_weight": 6.0,
                "shared_dropout": 0.15,
                "guidance": 1.0,
            },
        },
        "b": {
            "name": "text",
            "options": {
                "embedding": 64,
                "hidden": 128,
                # As wide as the encoder: a 256-wide decoder LSTM took a quarter of each
                # training step; at 128, 30% more steps fit in the same wall time and
                # every score but the captions' own reconstruction rose (benchmarks/README.md).
                "decoder_hidden": 128,
                "layers": 1,
                "max_length": 16,
                "min_count": 1,
                # Word dropout makes the decoder rely on the latent (not on the previous
                # words), which keeps the residual in use: the collapse lever of
                # calibration.md, 0.3-0.5 there.
                "word_dropout": 0.5,
                "embedding_dropout": 0.1,
            },
        },
    },
    # The calibration model; only what the testbed changes is spelled out here.
    "model": {
        # Text: a prior weight of 1 next to summed token NLLs collapsed every caption sample
        # to one (calibration.md); 0.1-0.3 kept them diverse. Images: at 0.3 the image
        # residuals spread where the prior puts little mass and sampled images showed two
        # faint objects; the full ELBO weight of 1 (and 8 instead of 16 residual dims) raised
        # text->image accuracy from 0.24 to 0.33 after 900 steps, and lr 2e-3 to 0.41. A
        # weight of 2 keeps a sampled image residual closer to what its shared code says
        # (colour errors of text->image ~40% -> ~27%): +4.6 to +6.9 points text->image on
        # three seeds, for up to 4 points of entropy; 4 (or a smaller image
        # cross-reconstruction weight) broke the text->image renders (benchmarks/README.md).
        # The contrastive term (each image's carried code must pick out its own caption's
        # among the batch's): the image encoder learns the shape of small objects from it
        # much faster than from the captions' cross-reconstruction alone. After 1,500 steps
        # (seeds 0 and 1) image->text 0.80/0.77 -> 0.92/0.93 (shapes named wrong 24-32% ->
        # 7-9%), text->image 0.74/0.78 -> 0.83/0.81 at the same entropy; weights 20 and 50
        # gained a little more image->text for less diversity (benchmarks/README.md).
        "weights": {"prior_a": 2.0, "prior_b": 0.3, "contrastive": 10.0},
        # A mixture of 16 Gaussians under each residual flow instead of one: a flow maps one
        # Gaussian to a connected blob, so with the four positions (and the shapes, colours,
        # sizes) a caption leaves open it kept mass between them, and 18-24% of the sampled
        # images were two faint objects. With the mixture: 2-4% unreadable, text->image
        # accuracy +21 and +22 points at the same entropy after the same 1,300 steps (seeds
        # 0 and 1), image->text unchanged (-3.8, +0.8); 8 and 32 components fare alike
        # (benchmarks/README.md).
        "residual_components": 16,
    },
    "train": {
        "steps": 1500,
        "lr": 2e-3,
        # Scored and saved: the average of the weights over about the last 50 steps. After
        # 2,000 steps (seeds 0 and 1) image->text +1.7 and +1.4 points, text->image +3.0 and
        # +3.0 with 2.7 and 2.9 points more of the entropy's ceiling, against the raw
        # weights of the same run; decays 0.99 and 0.995 fared alike (benchmarks/README.md).
        "ema_decay": 0.98,
        "validate_every": 0,
        "checkpoint_every": 500,
        "log_every": 25,
    },
}

#: Sampling temperatures of the text→image trade-off sweeps: around 1, wide enough that one
#: prior's diversity at temperature 1 falls inside the other's curve.
TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.15)

#: The image options of the testbed before stop 34 (every pixel alike, no guidance).
_UNGUIDED = {"edge_weight": 0.0, "shared_dropout": 0.0, "guidance": 0.0}

#: Variant name -> settings merged over :data:`TESTBED`.
VARIANTS: dict[str, dict[str, Any]] = {
    "lnfmm": {},
    # LNFMM as published: one normal under each residual flow.
    "lnfmm-single": {"model": {"residual_components": 1}},
    "gaussian": {"model": {"residual_prior": "gaussian", "residual_components": 1}},
    "standard": {"model": {"residual_prior": "standard", "residual_components": 1}},
    "deterministic": {
        "model": {
            "residual_prior": "none",
            "residual_a": 0,
            "residual_b": 0,
            "residual_components": 1,
        }
    },
    "align": {"model": {"weights": {"align": 1.0}}},
    # The testbed before stop 34: every pixel alike, no guidance.
    "lnfmm-unguided": {"domains": {"a": {"options": _UNGUIDED}}},
    # Pixels on the target's edges weighed 1 + 2 e in the image loss, without guidance: the
    # images' own reconstructions keep more small shapes, but text->image stayed level at
    # equal diversity on three seeds (benchmarks/README.md).
    "lnfmm-edges": {"domains": {"a": {"options": {**_UNGUIDED, "edge_weight": 2.0}}}},
    # Edges weighed 1 + 6e without guidance: the residual holds the shape, and the decoder
    # follows its colour over the caption's too; at equal diversity -0.1 and +5.0 points on
    # two seeds after 2,000 steps over lnfmm-unguided (benchmarks/README.md).
    "lnfmm-edges6": {"domains": {"a": {"options": {**_UNGUIDED, "edge_weight": 6.0}}}},
    "no-cross": {"model": {"weights": {"cross": 0.0}}},
    # Each image residual must be likelier under its own caption's context than under 16
    # others of the batch (the core's prior_nce_a), so that the prior lets the caption
    # matter: +3.4 points text->image at equal steps on one seed, but level or behind at
    # equal wall time on three (it costs 8-13% of the steps), so the testbed leaves it off
    # (benchmarks/README.md).
    "lnfmm-nce": {"model": {"weights": {"prior_nce_a": 1.0}}},
    # Adam's second-moment decay at 0.99 instead of 0.999: the image autoencoder alone keeps
    # small shapes after fewer steps with it, but in the bridge (four seeds, 1,800 steps)
    # every score moved within a seed's noise, so the testbed keeps torch's default
    # (benchmarks/README.md).
    "lnfmm-b2": {"train": {"adam_betas": [0.9, 0.99]}},
    # The image's own reconstruction faded out between steps 600 and 1,200 (the core's
    # train.weight_schedule), so that from then on the image side learns from the captions'
    # carried codes alone: after 1,800 steps image->text +0.1 to +1.5 points on four seeds
    # (0.973-0.985; 0.98 on one), about a seed's spread between thread counts, and
    # text->image -0.6 to -1.1 at equal diversity. The testbed leaves it off: it trades one
    # missed target for the other, and an unpaired image has no term but its own
    # reconstruction to learn from (benchmarks/README.md).
    "lnfmm-fade": {"train": {"weight_schedule": {"rec_a": [[600, 1.0], [1200, 0.0]]}}},
}


def testbed_data(train_size: int) -> dict[str, Any]:
    """The shapes dataset's options: the testbed's, with ``train_size`` training images."""
    return {**TESTBED["data"]["options"], "train_size": train_size}


def run_config(variant: str, out: str, **overrides: Any) -> RunConfig:
    """The run configuration of ``variant`` writing to ``out``; ``overrides`` are nested
    dicts merged last (e.g. ``train={"steps": 300}``)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; variants: {sorted(VARIANTS)}")
    data = merge_settings(merge_settings(TESTBED, VARIANTS[variant]), overrides)
    data = merge_settings(data, {"train": {"out": out}})
    return load_run_config(data)


def evaluate(
    bridge: Bridge,
    split: PairedSplit,
    samples: int = 10,
    inputs: int = 200,
    seed: int = 0,
    temperature: float = 1.0,
    ceilings: bool = True,
    *,
    training: Sequence[Sequence[str]] | None = None,
    combinations: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """Image→text and text→image accuracy and diversity with ``samples`` outputs per input.

    Captions are decoded greedily, so caption diversity comes from the latent samples alone
    (with word sampling even a deterministic model looks diverse). Returns the metrics, how
    well each domain's own reconstruction keeps the input (what bounds both translations:
    a decoder that loses an attribute of its own input cannot render it from the other
    domain either), the data's own ceilings on the same inputs, and the generated outputs.

    ``training``, the training captions per image (:func:`~.metrics.captions_by_image`),
    adds the captioning literature's diversity metrics to image→text and its ceiling
    (:func:`flowbridge.metrics.caption_diversity`); ``combinations``, those of ``split``
    (:meth:`~.dataset.ShapesDataset.combinations_of`), are what the text→image ceiling's real
    images are drawn from (default: all, held-out pairs included).
    """
    # Each image once, with its first caption as the text input.
    chosen = one_pair_per_image(split.meta)[:inputs]
    meta = [split.meta[i] for i in chosen]
    started = time.perf_counter()
    captions = bridge.translate(
        [split.a[i] for i in chosen],
        "image",
        samples=samples,
        temperature=temperature,
        generator=torch.Generator().manual_seed(seed),
        method="greedy",
    )
    originals, texts = [split.a[i] for i in chosen], [split.b[i] for i in chosen]
    images = _text_to_image(bridge, texts, samples, temperature, seed)
    rebuilt = bridge.reconstruct(originals, "image")
    rebuilt_texts = bridge.reconstruct(texts, "text", method="greedy")
    result: dict[str, Any] = {
        "samples": samples,
        "inputs": len(chosen),
        "image_to_text": caption_metrics(captions, meta, training),
        "text_to_image": image_metrics(images, meta),
        "reconstruction": {
            "image": image_reconstruction(originals, rebuilt),
            "text": caption_reconstruction(texts, rebuilt_texts),
        },
        "seconds": time.perf_counter() - started,
        "outputs": {
            "inputs": chosen,
            "captions": captions,
            "images": images,
            "reconstructed_images": rebuilt,
        },
    }
    if ceilings:
        result["ceiling"] = _ceilings(meta, samples, seed, training, combinations)
    return result


def _ceilings(
    meta: Sequence[Mapping[str, Any]],
    samples: int,
    seed: int,
    training: Sequence[Sequence[str]] | None,
    combinations: Sequence[Mapping[str, str]] | None,
) -> dict[str, Any]:
    return {
        "image_to_text": caption_ceiling(meta, samples, seed, training),
        "text_to_image": image_ceiling(meta, samples, seed, combinations=combinations),
    }


def data_ceilings(
    dataset: ShapesDataset, split: str, samples: int = 10, inputs: int = 200, seed: int = 0
) -> dict[str, Any]:
    """The data's own ceilings on the inputs :func:`evaluate_split` scores, without a model:
    its ``"ceiling"`` (K true captions per image from the caption generator, K real images
    per caption from ``split``'s own combinations). They depend on the inputs alone, so a
    benchmark of many models computes them once."""
    chosen = dataset.split(split)
    meta = [chosen.meta[i] for i in one_pair_per_image(chosen.meta)[:inputs]]
    return _ceilings(meta, samples, seed, **scoring(dataset, split))


def scoring(dataset: ShapesDataset, split: str) -> dict[str, Any]:
    """The keyword arguments :func:`evaluate` takes for ``split`` of ``dataset``: the training
    captions per image (the captioning literature's diversity metrics: novelty against them,
    self-CIDEr's document frequencies from them) and the split's own attribute combinations
    (what the text→image ceiling's real images are drawn from). The demo and the benchmarks
    score every split through it, so their numbers for one split are the same numbers."""
    train_split = dataset.split("train")
    return {
        "training": captions_by_image(train_split.meta, train_split.b),
        "combinations": dataset.combinations_of(split),
    }


def evaluate_split(
    bridge: Bridge,
    dataset: ShapesDataset,
    split: str,
    samples: int = 10,
    inputs: int = 200,
    seed: int = 0,
    ceilings: bool = True,
) -> dict[str, Any]:
    """:func:`evaluate` on split ``split`` of ``dataset``, with that split's :func:`scoring`."""
    return evaluate(
        bridge,
        dataset.split(split),
        samples,
        inputs,
        seed,
        ceilings=ceilings,
        **scoring(dataset, split),
    )


def summary(result: Mapping[str, Any], ceiling: Mapping[str, Any] | None = None) -> dict:
    """The headline numbers of :func:`evaluate` as one flat dict, with the diversity figures
    as fractions of the data's own ``ceiling`` (default: the result's own, if it has one)."""
    i2t, t2i = result["image_to_text"], result["text_to_image"]
    row = {
        "i2t_accuracy": i2t["accuracy"],
        "i2t_distinct_valid": i2t["distinct_valid"],
        "t2i_accuracy": t2i["accuracy"],
        "t2i_unstated_entropy": t2i["unstated_entropy"],
    }
    if "reconstruction" in result:
        row["image_rec_attributes_kept"] = result["reconstruction"]["image"]["attributes_kept"]
        row["caption_rec_claims_kept"] = result["reconstruction"]["text"]["claims_kept"]
    ceiling = ceiling or result.get("ceiling")
    if ceiling:
        row["i2t_distinct_valid_of_ceiling"] = _fraction(
            i2t["distinct_valid"], ceiling["image_to_text"]["distinct_valid"]
        )
        row["t2i_entropy_of_ceiling"] = _fraction(
            t2i["unstated_entropy"], ceiling["text_to_image"]["unstated_entropy"]
        )
    return {k: float(np.round(v, 4)) for k, v in row.items()}


def _fraction(value: float, ceiling: float) -> float:
    """``value`` as a fraction of the data's ``ceiling``; NaN where the ceiling is 0 (a few
    inputs whose K true images happen to repeat every attribute the caption leaves open)."""
    return value / ceiling if ceiling else math.nan


class EvaluateAt:
    """A training callback that scores the model with :func:`evaluate` at chosen steps:
    accuracy and diversity against training steps, from one run.

    Pass it in ``callbacks`` to :func:`flowbridge.train`; after the run ``rows`` holds one
    :func:`summary` per chosen step (diversity as fractions of the data's ceiling, computed
    at the first of them), plus ``step`` and ``train_seconds``: wall time since this callback
    was made, its own evaluations left out. The random number generators are put back after
    each evaluation, so a run scored along the way trains exactly as one that is not.

    Args:
        steps: the steps after which to score (positive integers).
        split: the split to score on (e.g. the test split).
        samples, inputs, seed: as for :func:`evaluate`.
        ceiling: the data's ceilings on the same inputs, if already known (``evaluate``'s
            ``"ceiling"``); else computed at the first chosen step and kept in ``ceiling``.
        training, combinations: the training captions per image and the attribute
            combinations of ``split``, as for :func:`evaluate`.
    """

    def __init__(
        self,
        steps: Sequence[int],
        split: PairedSplit,
        samples: int = 10,
        inputs: int = 200,
        seed: int = 0,
        ceiling: Mapping[str, Any] | None = None,
        *,
        training: Sequence[Sequence[str]] | None = None,
        combinations: Sequence[Mapping[str, str]] | None = None,
    ):
        if not steps or any(not isinstance(s, int) or s < 1 for s in steps):
            raise ValueError(f"steps must be positive integers, got {list(steps)}")
        self.steps, self.split = frozenset(steps), split
        self.samples, self.inputs, self.seed = samples, inputs, seed
        self.rows: list[dict[str, float]] = []
        self.ceiling = ceiling
        self.scoring = {"training": training, "combinations": combinations}
        self._made, self._evaluating = time.perf_counter(), 0.0

    def __call__(self, trainer: Any, step: int, terms: Mapping[str, float]) -> None:
        if step not in self.steps:
            return
        started = time.perf_counter()
        bridge = trainer.evaluation_bridge
        cuda = [bridge.device] if bridge.device.type == "cuda" else []
        # Evaluating samples with seeded generators, but a domain may still touch the global
        # RNGs: fork them so training goes on with the same random draws.
        with torch.random.fork_rng(devices=cuda):
            result = evaluate(
                bridge,
                self.split,
                self.samples,
                self.inputs,
                self.seed,
                ceilings=self.ceiling is None,
                **self.scoring,
            )
        self.ceiling = self.ceiling or result["ceiling"]
        seconds = started - self._made - self._evaluating
        self.rows.append(
            {"step": step, "train_seconds": round(seconds, 1), **summary(result, self.ceiling)}
        )
        self._evaluating += time.perf_counter() - started


def _text_to_image(
    bridge: Bridge,
    texts: Sequence,
    samples: int,
    temperature: float,
    seed: int,
    component_temperature: float | None = None,
    candidates: int = 1,
) -> list[list]:
    """K images per caption, the noise seeded from ``seed`` the same way wherever the testbed
    samples text→image (so a temperature sweep repeats :func:`evaluate` at temperature 1)."""
    return bridge.translate(
        texts,
        "text",
        samples=samples,
        temperature=temperature,
        generator=torch.Generator().manual_seed(seed + 1),
        component_temperature=component_temperature,
        candidates=candidates,
    )


def text_to_image_tradeoff(
    bridge: Bridge,
    split: PairedSplit,
    temperatures: Sequence[float],
    samples: int = 10,
    inputs: int = 200,
    seed: int = 0,
    known: Mapping[float, Mapping[str, float]] | None = None,
    component_temperature: float | None = None,
    candidates: int = 1,
) -> list[dict[str, float]]:
    """Text→image accuracy and unstated-attribute entropy at each sampling temperature: the
    model's accuracy-diversity trade-off curve, one row ``{"temperature", "accuracy",
    "unstated_entropy", "readable"}`` per temperature. Same inputs and generator seed as
    :func:`evaluate`, so the row at temperature 1 repeats its text→image numbers: pass them
    as ``known={1.0: result["text_to_image"]}`` and that temperature is not sampled again.

    ``component_temperature`` holds the image prior's mixture weights at one temperature
    while the sweep tempers the noise; ``candidates`` keeps each image the best of that many
    draws by the model's own reading (both: see :meth:`~flowbridge.Bridge.translate`)."""
    chosen = one_pair_per_image(split.meta)[:inputs]
    meta = [split.meta[i] for i in chosen]
    texts = [split.b[i] for i in chosen]
    known = known or {}
    rows = []
    for temperature in temperatures:
        if temperature in known:
            rows.append({"temperature": float(temperature), **known[temperature]})
            continue
        images = _text_to_image(
            bridge, texts, samples, temperature, seed, component_temperature, candidates
        )
        rows.append({"temperature": float(temperature), **image_metrics(images, meta)})
    return rows


def at_equal_diversity(
    curve: Sequence[Mapping[str, float]], reference: Sequence[Mapping[str, float]]
) -> dict[str, Any]:
    """How far ``curve``'s text→image accuracy lies above ``reference``'s at equal diversity.

    Both are :func:`text_to_image_tradeoff` rows. Wherever the two models' ranges of
    unstated-attribute entropy overlap, each curve is read at the other's points
    (:func:`~flowbridge.metrics.accuracy_gap`). Returns ``gains`` (``[entropy, accuracy of
    curve - accuracy of reference]`` pairs), their ``overlap`` range of entropies and their
    ``mean``, ``min`` and ``max``; all None (``gains`` empty) when the ranges do not
    overlap. Rows with a NaN entropy (no readable image) are left out.
    """
    points = [
        [
            (row["unstated_entropy"], row["accuracy"])
            for row in rows
            if math.isfinite(row["unstated_entropy"])
        ]
        for rows in (curve, reference)
    ]
    # A curve without one readable row overlaps nothing.
    gains = accuracy_gap(*points) if all(points) else []
    values = [gain for _, gain in gains]
    return {
        "overlap": [gains[0][0], gains[-1][0]] if gains else None,
        "gains": [list(pair) for pair in gains],
        "mean": float(np.mean(values)) if values else None,
        "min": min(values, default=None),
        "max": max(values, default=None),
    }


def names(text: str, valid: Sequence[str], what: str = "--variants") -> list[str]:
    """The comma list ``text`` of names, checked before any training: each one of ``valid``,
    none empty (a stray comma) or given twice (it would train twice and keep one result).

    Raises:
        ValueError: naming the bad entry and listing the valid names.
    """
    listed = [name.strip() for name in text.split(",")]
    for name in listed:
        if not name:
            problem = f"{what} has an empty entry in {text!r}"
        elif name not in valid:
            problem = f"{what}: unknown name {name!r}"
        elif listed.count(name) > 1:
            problem = f"{what} names {name!r} twice"
        else:
            continue
        raise ValueError(f"{problem}; choose from: {', '.join(valid)}")
    return listed


def inputs_scored(split: PairedSplit, inputs: int) -> int:
    """How many inputs :func:`evaluate` scores when asked for ``inputs``: one per image, so at
    most as many as the split has images."""
    return len(one_pair_per_image(split.meta)[:inputs])


def strict_json(data: Any) -> str:
    """``data`` as JSON that every parser reads: NaN and infinities (the entropy of rows with
    no readable image, the PSNR of a perfect reconstruction) written as ``null``, where
    :func:`json.dumps` would write the bare ``NaN`` that strict parsers reject."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, Mapping):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [finite(item) for item in value]
        return value

    return json.dumps(finite(data), indent=2, allow_nan=False)
