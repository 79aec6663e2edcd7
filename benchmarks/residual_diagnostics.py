r"""What the testbed's image residual holds, and how much of text→image's gap is its prior's.

Trains the testbed (or loads a checkpoint) and measures, on the test captions (K samples each):

* ``text_to_image``: accuracy and diversity of the residual prior's own draws at τ = 1, with
  each attribute's share drawn wrong where stated and its entropy where left open
  (:func:`~flowbridge_shapes.metrics.image_metrics` with ``by_attribute``), next to the
  data's own ceiling;
* ``fitting_residuals``: the same when each caption's carried code is decoded with the
  posterior-mean residuals of K training images whose attributes fit the caption: what a
  residual prior that drew exactly where the posteriors are would give;
* ``critic_exemplars``: the same when the residuals are those of K training images drawn
  with probability :math:`\propto \exp(k \cos(f(s_A^{(j)}), s_B) / τ)`, the contrastive term's
  own critic (τ its temperature) at sharpness k = 1 and 2: the optimal InfoNCE critic is the
  density ratio :math:`p(c | x) / p(c)` up to a constant, so at k = 1 this draws training
  images from :math:`p(x | c)` as far as the model itself can tell them apart, a residual
  prior that knew exactly what the shared codes know (needs ``weights.contrastive`` > 0);
* ``prior_mass``: over the training images' residuals, the share of p(r | caption) on images
  that fit the caption, and for each attribute the share on images with another value where
  the caption states it;
* ``probe``: how often a 5-nearest-neighbour vote among the training images' residuals (or
  shared codes) names each attribute of a test image;
* ``own_residual``: what the decoder makes of what a caption leaves open. Each test caption's
  carried code is decoded with its own image's posterior-mean residual; per attribute, over
  the captions that leave it open, the share of images drawn with the image's value
  (``right``) and the share whose value the oracle cannot read (``undecided``: an undecided
  shape, or an unreadable image). A residual that held the attribute plainly would give
  ``right`` near the image's own reconstruction's; a decoder unsure between the residual's
  readings draws an in-between blob, undecided;
* ``conflicts``: who wins when the caption and the residual disagree. For each attribute, the
  captions that state it are decoded with the residuals of training images that hold every
  other claim but have another value of it; per attribute, the share of the readable images
  drawn with the caption's value and the share drawn with the residual image's.

    .venv/bin/python benchmarks/residual_diagnostics.py --steps 2000 --seed 0
    .venv/bin/python benchmarks/residual_diagnostics.py --variant lnfmm-edges --steps 2000
    .venv/bin/python benchmarks/residual_diagnostics.py --checkpoint runs/shapes/checkpoint.pt

Writes ``results/residual_diagnostics.json``; the numbers are discussed in benchmarks/README.md
("Where text→image's remaining errors come from").
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from flowbridge import Bridge, load_bridge, train
from flowbridge.commands import positive_int
from flowbridge.files import atomic_write_text, check_parent
from flowbridge.provenance import measured, versions
from flowbridge_shapes.attributes import ATTRIBUTES
from flowbridge_shapes.captions import claims_hold
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import TESTBED, VARIANTS, run_config
from flowbridge_shapes.metrics import (
    image_metrics,
    one_pair_per_image,
    sample_images,
)
from flowbridge_shapes.oracle import read_images

RESULTS = Path(__file__).parent / "results"


def knn_probe(
    bank: torch.Tensor,
    bank_attributes: Sequence[Mapping[str, str]],
    queries: torch.Tensor,
    query_attributes: Sequence[Mapping[str, str]],
    k: int = 5,
) -> dict[str, float]:
    """Per attribute, the share of ``queries [q, d]`` whose value the majority of their ``k``
    nearest ``bank [b, d]`` rows (Euclidean) names; ties go to the value seen first among the
    nearest."""
    nearest = torch.cdist(queries, bank).topk(min(k, len(bank)), largest=False).indices
    right = collections.Counter()
    for row, truth in zip(nearest.tolist(), query_attributes, strict=True):
        for attribute in ATTRIBUTES:
            votes = collections.Counter(bank_attributes[j][attribute] for j in row)
            right[attribute] += votes.most_common(1)[0][0] == truth[attribute]
    return {attribute: right[attribute] / len(query_attributes) for attribute in ATTRIBUTES}


def prior_mass(
    log_prob: torch.Tensor,
    claims: Sequence[Mapping[str, str]],
    bank_attributes: Sequence[Mapping[str, str]],
) -> dict[str, float]:
    """Where a conditional density puts its mass among a bank of residuals.

    ``log_prob [n, b]`` is log p(r_j | caption i) of bank row j. Normalised over the bank,
    returns ``fitting`` (the mean share on rows whose attributes hold every claim), ``fitting
    rows`` (the share of such rows, the mass of a density that ignored the caption) and, per
    attribute, the mean share on rows with another value over the captions that state it
    (NaN where none does)."""
    weights = log_prob.softmax(dim=1)
    fits = torch.tensor([[claims_hold(c, a) for a in bank_attributes] for c in claims])
    report = {
        "fitting": (weights * fits).sum(dim=1).mean().item(),
        "fitting rows": fits.float().mean().item(),
    }
    for attribute in ATTRIBUTES:
        stated = [i for i, c in enumerate(claims) if attribute in c]
        other = torch.tensor(
            [[a[attribute] != claims[i][attribute] for a in bank_attributes] for i in stated]
        ).reshape(len(stated), len(bank_attributes))
        share = (weights[stated] * other).sum(dim=1).mean().item() if stated else float("nan")
        report[attribute] = share
    return report


def _choose(pool: Sequence[int], samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` rows of ``pool``, drawn with replacement only when it has fewer."""
    return rng.choice(pool, samples, replace=len(pool) < samples)


def conflicting_rows(
    claims: Sequence[Mapping[str, str]],
    bank_attributes: Sequence[Mapping[str, str]],
    attribute: str,
    samples: int,
    rng: np.random.Generator,
) -> dict[int, np.ndarray]:
    """For each caption ``i`` that states ``attribute``: ``samples`` bank rows (drawn with
    replacement only when fewer exist) whose attributes hold every other claim but give
    ``attribute`` another value. Captions no row conflicts with that way are left out."""
    rows = {}
    for i, stated in enumerate(claims):
        if attribute not in stated:
            continue
        others = {key: value for key, value in stated.items() if key != attribute}
        pool = [
            j
            for j, a in enumerate(bank_attributes)
            if a[attribute] != stated[attribute] and claims_hold(others, a)
        ]
        if pool:
            rows[i] = _choose(pool, samples, rng)
    return rows


def winners(
    readings: Sequence[str | None],
    stated: Sequence[str],
    residual_values: Sequence[str],
) -> dict[str, float]:
    """Images drawn for an attribute that the caption states as ``stated[n]`` and the
    residual's own image has as ``residual_values[n]``; ``readings[n]`` is the value the oracle
    reads in image n (``None``: unreadable). Of the readable ones: the share drawn as the
    caption says (``caption``), as the residual's image has it (``residual``), and how many
    were readable (``images``)."""
    rows = zip(readings, stated, residual_values, strict=True)
    seen = [row for row in rows if row[0] is not None]
    if not seen:
        return {"caption": math.nan, "residual": math.nan, "images": 0}
    return {
        "caption": sum(value == said for value, said, _ in seen) / len(seen),
        "residual": sum(value == held for value, _, held in seen) / len(seen),
        "images": len(seen),
    }


def conflicts(
    bridge: Bridge,
    context: torch.Tensor,
    claims: Sequence[Mapping[str, str]],
    bank: torch.Tensor,
    bank_attributes: Sequence[Mapping[str, str]],
    samples: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """:func:`winners` per attribute: ``context [n, d_s]`` (the captions' codes carried into
    the image's space) decoded with the residuals of :func:`conflicting_rows`."""
    report = {}
    for offset, attribute in enumerate(ATTRIBUTES):
        rows = conflicting_rows(
            claims, bank_attributes, attribute, samples, np.random.default_rng([seed, offset])
        )
        if not rows:
            report[attribute] = winners([], [], [])
            continue
        captions = torch.as_tensor([i for i, picked in rows.items() for _ in picked])
        picked = np.concatenate(list(rows.values()))
        images = bridge.domains["a"].generate(
            bridge.decoders["a"], context[captions], bank[torch.as_tensor(picked)]
        )
        readings = [None if r is None else r[attribute] for r in read_images(images)]
        stated = [claims[i][attribute] for i in captions.tolist()]
        report[attribute] = winners(
            readings, stated, [bank_attributes[j][attribute] for j in picked]
        )
    return report


def open_attributes(
    readings: Sequence[Mapping[str, str | None] | None],
    claims: Sequence[Mapping[str, str]],
    truths: Sequence[Mapping[str, str]],
) -> dict[str, dict[str, float]]:
    """Per attribute, over the rows whose ``claims`` leave it open: the share of the images
    read (``readings``, ``None`` where unreadable) with the value ``truths`` gives
    (``right``), the share read without one (``undecided``), and how many rows (``captions``);
    NaN shares where no caption leaves it open."""
    report = {}
    for attribute in ATTRIBUTES:
        rows = [
            (None if read is None else read[attribute], truth[attribute])
            for read, stated, truth in zip(readings, claims, truths, strict=True)
            if attribute not in stated
        ]
        report[attribute] = {
            "right": float(np.mean([drawn == value for drawn, value in rows]))
            if rows
            else math.nan,
            "undecided": float(np.mean([drawn is None for drawn, _ in rows])) if rows else math.nan,
            "captions": len(rows),
        }
    return report


def critic_weights(
    caption: torch.Tensor, carried: torch.Tensor, temperature: float, sharpness: float
) -> torch.Tensor:
    """``[captions, bank]`` probabilities, each row ``softmax(k cos(carried_j, caption) / τ)``:
    the contrastive critic's guess of which bank items fit each caption."""
    cosine = F.normalize(caption, dim=1) @ F.normalize(carried, dim=1).T
    return torch.softmax(sharpness * cosine / temperature, dim=1)


def critic_exemplars(
    bridge: Bridge,
    caption: torch.Tensor,
    context: torch.Tensor,
    meta: Sequence[Mapping],
    bank: torch.Tensor,
    bank_shared: torch.Tensor,
    samples: int,
    seed: int,
    sharpness: Sequence[float] = (1.0, 2.0),
) -> dict[str, dict]:
    """Image metrics of each caption's carried code (``context``, from its shared code
    ``caption``) decoded with the posterior-mean residuals of ``samples`` bank images drawn by
    :func:`critic_weights`, per sharpness ``k`` (keys ``"k=1"``, ...)."""
    carried, _ = bridge.map_shared(bank_shared, "image")
    generator = torch.Generator().manual_seed(seed)
    report = {}
    for k in sharpness:
        weights = critic_weights(caption, carried, bridge.config.contrastive_temperature, k)
        picks = torch.multinomial(weights, samples, replacement=True, generator=generator)
        images = bridge.domains["a"].generate(
            bridge.decoders["a"], context.repeat_interleave(samples, dim=0), bank[picks.flatten()]
        )
        rows = [images[n * samples : (n + 1) * samples] for n in range(len(meta))]
        report[f"k={k:g}"] = image_metrics(rows, meta, by_attribute=True)
    return report


def _encoded(bridge: Bridge, images: Sequence[torch.Tensor], chunk: int = 500):
    """Posterior means of the images: residuals and shared codes, each ``[n, d]``."""
    parts = [
        bridge.encode(list(images[i : i + chunk]), "image") for i in range(0, len(images), chunk)
    ]
    return torch.cat([p.residual for p in parts]), torch.cat([p.shared for p in parts])


@torch.no_grad()
def diagnose(
    bridge: Bridge,
    train_split,
    test_split,
    samples: int,
    inputs: int,
    seed: int,
    combinations=None,
) -> dict:
    """The module docstring's measures for ``inputs`` test captions (image = side a, text =
    side b, as on the testbed), the training split's images (their first caption each) as
    the bank of residuals; the draws seeded as :func:`flowbridge_shapes.experiment.evaluate`
    seeds them, the data's own images drawn from ``combinations`` (the test split's, as the
    ceiling's are)."""
    bridge.eval()
    chosen = one_pair_per_image(test_split.meta)[:inputs]
    meta = [test_split.meta[i] for i in chosen]
    texts = [test_split.b[i] for i in chosen]
    claims = [m["claims"] for m in meta]
    firsts = one_pair_per_image(train_split.meta)
    bank_attributes = [train_split.meta[i]["attributes"] for i in firsts]
    bank, bank_shared = _encoded(bridge, [train_split.a[i] for i in firsts])
    caption = bridge.encode(texts, "text").shared
    context, _ = bridge.map_shared(caption, "text")

    drawn = bridge.translate(
        texts, "text", samples=samples, generator=torch.Generator().manual_seed(seed + 1)
    )
    rng = np.random.default_rng([seed, 0x1A6])
    real = [sample_images(c, samples, rng, combinations=combinations) for c in claims]

    # Each caption's code next to the residuals of K training images that fit it.
    rng = np.random.default_rng(seed)
    picks = []
    for c in claims:
        pool = [j for j, a in enumerate(bank_attributes) if claims_hold(c, a)]
        if not pool:
            raise ValueError(f"no training image fits the claims {dict(c)}; train on more images")
        picks.append(_choose(pool, samples, rng))
    residual = bank[torch.as_tensor(np.concatenate(picks))]
    fitting = bridge.domains["a"].generate(
        bridge.decoders["a"], context.repeat_interleave(samples, dim=0), residual
    )
    fitting = [fitting[n * samples : (n + 1) * samples] for n in range(len(meta))]

    log_prob = torch.stack(
        [bridge.priors["a"].log_prob(bank, row.expand(len(bank), -1)) for row in context]
    )
    query_attributes = [m["attributes"] for m in meta]
    query, query_shared = _encoded(bridge, [test_split.a[i] for i in chosen])
    return {
        "inputs": len(meta),
        "samples": samples,
        "bank": len(bank),
        "text_to_image": image_metrics(drawn, meta, by_attribute=True),
        # The draws of image_ceiling (same generator): the data's own K images per caption.
        "ceiling": image_metrics(real, meta, by_attribute=True),
        "fitting_residuals": image_metrics(fitting, meta, by_attribute=True),
        # The critic is the contrastive term's: without it the cosines mean nothing.
        "critic_exemplars": critic_exemplars(
            bridge, caption, context, meta, bank, bank_shared, samples, seed
        )
        if bridge.config.weights.contrastive
        else None,
        "prior_mass": prior_mass(log_prob, claims, bank_attributes),
        "probe": {
            "residual": knn_probe(bank, bank_attributes, query, query_attributes),
            "shared": knn_probe(bank_shared, bank_attributes, query_shared, query_attributes),
        },
        "own_residual": open_attributes(
            read_images(bridge.domains["a"].generate(bridge.decoders["a"], context, query)),
            claims,
            query_attributes,
        ),
        "conflicts": conflicts(bridge, context, claims, bank, bank_attributes, samples, seed),
        "residual_scale": bank.std(dim=0).mean().item(),
        "shared_scale": bank_shared.std(dim=0).mean().item(),
    }


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained testbed bridge (default: train one)")
    parser.add_argument(
        "--variant",
        default="lnfmm",
        choices=sorted(VARIANTS),
        metavar="VARIANT",
        help="the testbed variant to train (quality.py's, not its semi-supervised settings)",
    )
    parser.add_argument(
        "--steps", type=positive_int, default=2000, help="training steps, without --checkpoint"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-size", type=positive_int, default=TESTBED["data"]["options"]["train_size"]
    )
    parser.add_argument("--samples", type=positive_int, default=10)
    parser.add_argument("--inputs", type=positive_int, default=200)
    parser.add_argument("--threads", type=positive_int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "residual_diagnostics.json"))
    args = parser.parse_args(argv)
    # Before the data and the training, not after them.
    try:
        check_parent(args.out)
        if Path(args.out).is_dir():
            raise IsADirectoryError(f"--out {args.out!r} is a folder, not a JSON file")
        # A file or a run directory; its own message says what is wrong with it.
        bridge = load_bridge(args.checkpoint) if args.checkpoint else None
    except (OSError, ValueError) as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    dataset = ShapesDataset(**{**TESTBED["data"]["options"], "train_size": args.train_size})
    if bridge is None:
        budget = {"steps": args.steps, "seed": args.seed, "checkpoint_every": 0, "progress": False}
        data = {"options": {"train_size": args.train_size}}
        with tempfile.TemporaryDirectory(prefix="flowbridge-diagnostics-") as run:
            bridge = train(run_config(args.variant, run, train=budget, data=data)).bridge
    report = {
        **versions(__file__),
        **measured(),
        "checkpoint": args.checkpoint,
        "variant": None if args.checkpoint else args.variant,
        "steps": None if args.checkpoint else args.steps,
        "seed": args.seed,
        "train_size": args.train_size,
        **diagnose(
            bridge,
            dataset.split("train"),
            dataset.split("test"),
            args.samples,
            args.inputs,
            args.seed,
            dataset.combinations_of("test"),
        ),
    }
    atomic_write_text(args.out, json.dumps(report, indent=2))  # whole or not at all
    print(
        json.dumps(
            {
                k: report[k]
                for k in (
                    "fitting_residuals",
                    "critic_exemplars",
                    "prior_mass",
                    "probe",
                    "own_residual",
                )
            },
            indent=1,
        )
    )
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
