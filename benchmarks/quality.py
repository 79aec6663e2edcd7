"""Quality benchmark on the shapes testbed: accuracy *and* diversity of LNFMM and baselines.

Trains each variant with the same seed and number of steps, scores K samples per test input
(greedy caption decoding), and writes ``benchmarks/results/quality.json`` with the numbers,
the data's ceilings, wall times, the settings and the commit, so runs can be compared across
commits. Each variant is scored on the held-out split too (its ``held_out``: the ``novel``
split's images and captions, of (shape, colour) pairs that training never shows, against that
split's own ceilings, ``held_out_ceiling``), and image->text also by the captioning
literature's diversity metrics (Div-1, Div-2, mBLEU-4, unique, novel, self-CIDEr), the data's
own next to them. The JSON is rewritten (atomically) after each variant, with ``complete``
false until every one of ``requested_variants`` is in; a number that could not be measured
(the entropy of rows with no readable image) is ``null``.

    .venv/bin/python benchmarks/quality.py                       # every variant
    .venv/bin/python benchmarks/quality.py --variants lnfmm,gaussian --steps 800
    .venv/bin/python benchmarks/quality.py --variants lnfmm,gaussian --steps 800 --jobs 2
    .venv/bin/python benchmarks/quality.py --seconds 180   # 3 minutes of training each
    .venv/bin/python benchmarks/quality.py --variants lnfmm --seconds 180 --device cuda
    .venv/bin/python benchmarks/quality.py --variants lnfmm --steps 6000 --at 2000,4000,6000
    .venv/bin/python benchmarks/quality.py --variants lnfmm --steps 2000 --component-temperature 1
    .venv/bin/python benchmarks/quality.py --variants lnfmm --steps 2000 --candidates 2

With ``--seconds`` every variant trains for the same wall time (``train.max_seconds``), as
the issue's targets are stated ("within 3 minutes of training on 2 CPU cores", "at equal wall
time"): the steps each reached are in the JSON (its top-level ``steps``, the cap, is null
unless ``--steps`` set one). Wall time depends on the machine and its load, so such runs are
comparable within one quiet run, not across machines.

With ``--jobs 2`` (and the default 2 threads) the variants train two at a time, side by side,
each in a process of its own with one thread (:mod:`flowbridge_shapes.side_by_side`, as the
demo does; a last variant left alone trains with both): on a 2-core machine two runs of one
thread train 30-45% more steps per second than one run of two. Each variant's ``threads`` in
the JSON says how many it had; its numbers are those it would reach trained alone with as
many. Only with ``--steps``: with ``--seconds`` each variant's time is its budget.

With ``--at`` each variant is also scored while it trains, after each of the given steps (its
``curve`` in the JSON: accuracy and diversity against steps, training time without the
evaluations); use it with ``--steps``, as evaluations would take from a ``--seconds`` budget.

Variants (see ``flowbridge_shapes.experiment.VARIANTS``): ``lnfmm`` (flow priors over a
16-Gaussian mixture, and an image loss weighing edge pixels 1 + 6e with the decoder's
classifier-free guidance: the testbed's default), ``lnfmm-unguided`` (every pixel alike, no
guidance: the default before stop 34), ``lnfmm-single`` (over one normal, as published),
``gaussian``, ``standard``, ``deterministic``, ``align`` (explicit alignment on), ``no-cross``
(no cross-reconstruction), ``lnfmm-edges`` (edge pixels weighed 1 + 2e without guidance;
``lnfmm-edges6``: 1 + 6e without guidance),
``lnfmm-nce`` (the image residual prior's density contrast, ``prior_nce_a = 1``),
``lnfmm-b2`` (Adam's β2 at 0.99 instead of 0.999), ``lnfmm-fade`` (the image's own
reconstruction faded out between steps 600 and 1,200), and the semi-supervised settings:
``paired-10`` (10% of the pairs, nothing else), ``semi-10`` (the same 10% plus the other 90%
as unpaired images and captions from the first step), ``semi-10-warm`` (unpaired batches
after 450 steps, every 2nd step), ``semi-10-back`` (the same, each unpaired caption also
back-translated: ``back_b = 1``) and ``semi-10-both`` (unpaired images back-translated too, at
``back_a = 0.25``).

The variants of each comparison in :data:`COMPARISONS` (the priors against LNFMM, the
semi-supervised settings against ``paired-10``) are also scored text->image at several
sampling temperatures (``--temperatures``): each one's accuracy-diversity curve. The JSON's
``equal_diversity`` gives, per pair, the first one's accuracy minus the second's wherever
their diversities overlap, since comparing two models each at temperature 1 mixes an
accuracy difference with a diversity difference (10% of the pairs alone leave text->image
almost collapsed: accurate-looking, with a tenth of the data's entropy).
``--component-temperature 1`` sweeps each of them whose image prior is a Gaussian mixture a
second time with the mixture's weights held as learnt and only the noise tempered
(``component_tradeoff`` in the JSON; compared as ``<variant>@tc``). ``--candidates M``
sweeps each of them once more keeping each image the best of M draws by the model's own
reading (``candidates_tradeoff``; compared as ``<variant>@cM``).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from flowbridge import train
from flowbridge.config import merge_settings
from flowbridge.distributed import resolve_device
from flowbridge.files import atomic_write_text, check_parent
from flowbridge.provenance import measured, versions
from flowbridge_shapes import side_by_side
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import (
    TEMPERATURES,
    TESTBED,
    VARIANTS,
    EvaluateAt,
    at_equal_diversity,
    data_ceilings,
    evaluate_split,
    inputs_scored,
    names,
    run_config,
    scoring,
    strict_json,
    summary,
    testbed_data,
    text_to_image_tradeoff,
)
from flowbridge_shapes.side_by_side import Job

RESULTS = Path(__file__).parent / "results"

# The warm schedule: the pairs shape the shared spaces first, then unpaired batches every 2nd step.
_WARM = {
    "paired_fraction": 0.1,
    "unpaired_weight": 1.0,
    "unpaired_warmup": 450,
    "unpaired_every": 2,
}
#: name -> (base variant, settings merged over it): the semi-supervised settings.
SEMI = {
    "paired-10": ("lnfmm", {"train": {"paired_fraction": 0.1, "unpaired_weight": 0.0}}),
    "semi-10": ("lnfmm", {"train": {"paired_fraction": 0.1, "unpaired_weight": 1.0}}),
    "semi-10-warm": ("lnfmm", {"train": _WARM}),
    # The same, and each unpaired caption back-translated through a generated image.
    "semi-10-back": ("lnfmm", {"train": _WARM, "model": {"weights": {"back_b": 1.0}}}),
    # And each unpaired image back-translated through a greedy caption, at a quarter weight:
    # pseudo captions of a model at 60-70% accuracy carry wrong claims.
    "semi-10-both": (
        "lnfmm",
        {"train": _WARM, "model": {"weights": {"back_b": 1.0, "back_a": 0.25}}},
    ),
}
#: (model, reference) pairs compared at equal diversity: ``equal_diversity["<model>_vs_
#: <reference>"]`` is the model's text->image accuracy gain over the reference.
COMPARISONS = (
    ("lnfmm", "gaussian"),
    ("lnfmm-single", "gaussian"),
    ("lnfmm", "lnfmm-single"),
    ("lnfmm", "standard"),
    ("lnfmm", "lnfmm-unguided"),
    ("lnfmm-edges", "lnfmm-unguided"),
    ("lnfmm-edges6", "lnfmm-unguided"),
    ("lnfmm-nce", "lnfmm"),
    ("lnfmm-b2", "lnfmm"),
    ("lnfmm-fade", "lnfmm"),
    *((name, "paired-10") for name in SEMI if name != "paired-10"),
)
#: Variants whose text->image is swept over temperatures: those of some comparison.
SWEPT = frozenset(name for pair in COMPARISONS for name in pair)
#: The sweep's temperatures: the testbed's, widened so that the nearly collapsed 10%-pairs
#: model and the semi-supervised ones (entropies ~0.06-0.13 and ~0.09-0.26) overlap.
SWEEP = (0.3, *TEMPERATURES, 1.5)
DEFAULT = (
    "lnfmm,lnfmm-single,gaussian,standard,deterministic,align,no-cross,paired-10,semi-10,"
    "semi-10-warm,semi-10-back,semi-10-both"
)
#: Every name ``--variants`` takes: the testbed's variants and the semi-supervised settings.
NAMES = (*VARIANTS, *SEMI)


def _equal_diversity(variants: dict) -> dict:
    """Each comparison's text->image accuracy gain where the two diversities overlap (the
    issue's "at equal diversity"), for the pairs whose two variants were both swept.

    A variant also swept with its mixture weights held (``--component-temperature``) is
    compared as ``<variant>@tc`` with the variant itself and with the variant's references;
    one also swept with best-of-M sampling (``--candidates``) likewise as ``<variant>@cM``.
    """
    curves = {
        n: v["text_to_image_tradeoff"] for n, v in variants.items() if "text_to_image_tradeoff" in v
    }
    pairs = list(COMPARISONS)
    for name, variant in variants.items():
        swept = {}
        if "component_tradeoff" in variant:
            swept[f"{name}@tc"] = variant["component_tradeoff"]["curve"]
        if "candidates_tradeoff" in variant:
            best_of = variant["candidates_tradeoff"]
            swept[f"{name}@c{best_of['candidates']}"] = best_of["curve"]
        for label, curve in swept.items():
            curves[label] = curve
            pairs.append((label, name))
            pairs += [(label, ref) for model, ref in COMPARISONS if model == name]
    return {
        f"{model}_vs_{reference}": at_equal_diversity(curves[model], curves[reference])
        for model, reference in pairs
        if model in curves and reference in curves
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
    )
    parser.add_argument(
        "--variants",
        default=DEFAULT,
        help=f"comma list of variants, from: {', '.join(NAMES)} (default: %(default)s)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        help=f"steps per variant (without --seconds: {TESTBED['train']['steps']}; with it: "
        "no cap but the time)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        help="train each variant this long instead (default: %(default)s, by steps); the JSON has "
        "the steps reached",
    )
    parser.add_argument(
        "--train-size",
        type=int,
        default=TESTBED["data"]["options"]["train_size"],
        help="training images, 3 captions each (default: %(default)s; the test split is the same "
        "whatever the size)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=10,
        help="K outputs per input (default: %(default)s; at least 2: diversity)",
    )
    parser.add_argument(
        "--inputs",
        type=int,
        default=200,
        help="test inputs scored (default: %(default)s; at most the test split's images, the JSON "
        "has how many)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="training and sampling seed (default: %(default)s)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)"
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="variants trained at once, each in a process of its own with an equal share of "
        "--threads (at most --threads; a variant left alone trains with them all): on 2 cores "
        "two runs of 1 thread train 30-45%% more steps per second than one of 2. With --steps "
        "only: --seconds compares variants each trained alone (default: %(default)s)",
    )
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, cuda:N or auto (training; default: %(default)s)"
    )
    parser.add_argument(
        "--temperatures",
        default=",".join(map(str, SWEEP)),
        help="text->image sampling temperatures swept for the equal-diversity comparison "
        "(finite, >= 0, each once, 1.0 among them; empty: no sweep; default: %(default)s)",
    )
    parser.add_argument(
        "--component-temperature",
        type=float,
        help="also sweep each swept variant whose image prior is a Gaussian mixture with the "
        "mixture's weights held at this temperature (1: the sweep tempers only the noise)",
    )
    parser.add_argument(
        "--candidates",
        type=int,
        default=1,
        help="also sweep each swept variant keeping each image the best of this many draws "
        "by the model's own reading (Bridge.translate's candidates; 1, the default: no such "
        "sweep)",
    )
    parser.add_argument(
        "--at",
        default="",
        help="comma list of steps (each in 1..--steps) after which each variant is also "
        "scored while it trains (with --steps, not --seconds)",
    )
    parser.add_argument(
        "--out",
        default=str(RESULTS / "quality.json"),
        help="the JSON file written after each variant, with complete: false until the last "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--keep-runs",
        action="store_true",
        help="keep each variant's run directory (checkpoint, config, log) instead of deleting it",
    )
    return parser


def _temperatures(text: str) -> list[float]:
    """``--temperatures`` as numbers, refused unless each is finite, >= 0 and given once (a
    repeat would only sweep it twice) and 1.0 is among them; empty: no sweep."""
    if not text:
        return []
    try:
        values = [float(t) for t in text.split(",")]
    except ValueError:
        raise ValueError(f"--temperatures takes a comma list of numbers, got {text!r}") from None
    if not all(math.isfinite(t) and t >= 0 for t in values):
        raise ValueError(f"--temperatures must be finite numbers >= 0, got {text!r}")
    if len(set(values)) < len(values):
        raise ValueError(f"--temperatures names a temperature twice: {text!r}")
    if 1.0 not in values:
        raise ValueError(
            "--temperatures must include 1.0, the temperature every variant is scored at"
        )
    return values


def _steps_at(text: str, steps: int) -> list[int]:
    """``--at`` as steps, refused unless each lies in 1..``steps`` (one the run never reaches
    would leave its curve short without a word)."""
    if not text:
        return []
    try:
        at = [int(step) for step in text.split(",")]
    except ValueError:
        raise ValueError(f"--at takes a comma list of steps, got {text!r}") from None
    outside = [step for step in at if not 1 <= step <= steps]
    if outside:
        raise ValueError(f"--at steps must lie in 1..{steps} (the steps trained), got {outside}")
    return at


def _check(args: argparse.Namespace) -> None:
    """Check the arguments before any training, and turn the comma lists into lists (and
    ``steps`` into the cap trained to: None with ``--seconds`` alone).

    Raises:
        ValueError, OSError: what is wrong, in a line.
    """
    if args.samples < 2:
        raise ValueError(
            f"--samples must be at least 2 (diversity compares K samples), got {args.samples}"
        )
    for flag, value in (("--inputs", args.inputs), ("--threads", args.threads)):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {args.steps}")
    if not (math.isfinite(args.seconds) and args.seconds >= 0):
        raise ValueError(f"--seconds must be a finite number >= 0, got {args.seconds}")
    if args.component_temperature is not None and not args.component_temperature >= 0:
        raise ValueError(f"--component-temperature must be >= 0, got {args.component_temperature}")
    if args.candidates < 1:
        raise ValueError(f"--candidates must be >= 1, got {args.candidates}")
    if not 1 <= args.jobs <= args.threads:
        raise ValueError(
            f"--jobs must be between 1 and --threads ({args.threads}): each variant trains "
            f"with a share of the threads, got {args.jobs}"
        )
    if args.jobs > 1 and args.seconds:
        raise ValueError(
            "--jobs trains variants side by side: use it with --steps (with --seconds each "
            "variant's time is the budget, and variants sharing the machine would reach fewer "
            "steps in it than one alone)"
        )
    if args.at and args.seconds:
        raise ValueError(
            "--at scores during training: use it with --steps (the evaluations would "
            "take from a --seconds budget)"
        )
    if args.steps is None and not args.seconds:
        args.steps = TESTBED["train"]["steps"]
    args.variants = names(args.variants, NAMES)
    args.temperatures = _temperatures(args.temperatures)
    args.at = _steps_at(args.at, args.steps or 0)
    resolve_device(args.device)
    if Path(args.out).is_dir():
        raise IsADirectoryError(f"--out {args.out!r} is a directory; name the JSON file to write")
    check_parent(args.out)


def _write(path: str, report: dict) -> None:
    """Write the JSON whole or not at all: an interrupted write keeps the previous one."""
    atomic_write_text(path, strict_json(report))


def _variant(
    name: str,
    args: argparse.Namespace,
    ceilings: tuple[dict, dict],
    dataset: ShapesDataset | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict:
    """Train variant ``name`` and score it: its entry of the JSON's ``variants``.

    Runs here or in a process of its own (``--jobs``, :mod:`flowbridge_shapes.side_by_side`:
    then ``dataset`` is ``None`` and built again, the same by its seed, and ``on_step``
    reports progress). ``ceilings`` are the data's own on the test and held-out splits'
    inputs, computed once for all variants.
    """
    dataset = dataset if dataset is not None else ShapesDataset(**testbed_data(args.train_size))
    ceiling, novel_ceiling = ceilings
    test = dataset.split("test")
    # K samples for each of the inputs, seeded: the same for every split and variant.
    sampling = (args.samples, args.inputs, args.seed)
    base, overrides = SEMI.get(name, (name, {}))
    budget = {
        # With a time budget alone the step count is only an upper bound.
        "steps": args.steps or 10**6,
        "max_seconds": args.seconds,
        "seed": args.seed,
        "device": args.device,
        "checkpoint_every": 0,
        "progress": False,
    }
    # A fresh run directory each time: a benchmark never resumes an old run.
    run_dir = tempfile.mkdtemp(prefix=f"flowbridge-quality-{name}-")
    data = {"options": {"train_size": args.train_size}}
    config = run_config(base, run_dir, **merge_settings({"train": budget, "data": data}, overrides))
    started = time.perf_counter()
    callbacks: list = [] if on_step is None else [lambda trainer, step, terms: on_step(step)]
    curve = None
    if args.at:
        curve = EvaluateAt(args.at, test, *sampling, ceiling, **scoring(dataset, "test"))
        callbacks.append(curve)
    try:
        result = train(config, callbacks=callbacks)
    finally:
        if not args.keep_runs:
            shutil.rmtree(run_dir, ignore_errors=True)
    bridge = result.bridge
    scores = evaluate_split(bridge, dataset, "test", *sampling, ceilings=False)
    # Generalisation: the held-out split, whose (shape, colour) pairs training never shows.
    held_out = evaluate_split(bridge, dataset, "novel", *sampling, ceilings=False)
    entry = {
        "steps": result.step,
        "threads": torch.get_num_threads(),
        "inputs": scores["inputs"],
        "train_seconds": result.wall_time,
        "total_seconds": time.perf_counter() - started,
        "image_to_text": scores["image_to_text"],
        "text_to_image": scores["text_to_image"],
        "reconstruction": scores["reconstruction"],
        "summary": summary(scores, ceiling),
        "held_out": {
            key: held_out[key] for key in ("image_to_text", "text_to_image", "reconstruction")
        }
        | {"summary": summary(held_out, novel_ceiling)},
    }
    if args.temperatures and name in SWEPT:
        sweep = functools.partial(
            text_to_image_tradeoff, bridge, test, args.temperatures, *sampling
        )
        known = {1.0: scores["text_to_image"]}
        entry["text_to_image_tradeoff"] = sweep(known=known)
        tau_c = args.component_temperature
        if tau_c is not None and bridge.priors["a"].mixture:
            entry["component_tradeoff"] = {
                "component_temperature": tau_c,
                # At τ = 1 = τc the draws are those of evaluate()'s.
                "curve": sweep(known=known if tau_c == 1 else None, component_temperature=tau_c),
            }
        if args.candidates > 1:
            entry["candidates_tradeoff"] = {
                "candidates": args.candidates,
                "curve": sweep(candidates=args.candidates),
            }
    if curve:
        entry["curve"] = curve.rows
    if args.keep_runs:
        entry["run"] = run_dir
    return entry


def _wave(
    wave: list[str],
    args: argparse.Namespace,
    ceilings: tuple[dict, dict],
    dataset: ShapesDataset,
    record: Callable[[str, dict], None],
) -> None:
    """Train and score the variants of one wave, and ``record(name, entry)`` each as it is
    done: a variant alone here with every thread, two or more side by side, each in a
    process of its own with a share of them."""
    if len(wave) == 1:
        record(wave[0], _variant(wave[0], args, ceilings, dataset))
        return
    jobs = [Job(name, _variant, (name, args, ceilings)) for name in wave]
    side_by_side.run(
        jobs, args.threads // len(wave), args.steps, lambda i, entry: record(wave[i], entry)
    )


def _interrupted(args: argparse.Namespace, wave: list[str], done: list[str]) -> str:
    """The line a Ctrl-C (or SIGTERM) ends the run with: what stopped, and what is kept."""
    where = f"interrupted while training {', '.join(wave)}"
    if not done:
        return f"quality.py: {where}; nothing written ({args.out} untouched)"
    missing = ",".join(name for name in args.variants if name not in done)
    return (
        f"quality.py: {where}; {args.out} holds {', '.join(done)} with complete: false. "
        f"Runs do not resume: train the rest again with --variants {missing} and another --out"
    )


def main(argv: list[str] | None = None) -> dict:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        _check(args)
    except (ValueError, OSError) as exc:
        parser.error(str(exc))
    torch.set_num_threads(args.threads)
    dataset = ShapesDataset(**testbed_data(args.train_size))
    # The data's ceilings depend on the inputs alone: computed once, for all variants.
    sampling = (args.samples, args.inputs, args.seed)
    ceilings = (
        data_ceilings(dataset, "test", *sampling),
        data_ceilings(dataset, "novel", *sampling),
    )
    report = {
        **versions(__file__),
        **measured(),
        # False until every requested variant is in: a run that stopped early says so.
        "complete": False,
        "requested_variants": args.variants,
        "threads": args.threads,
        "jobs": args.jobs,
        "device": args.device,
        # The cap asked for; None with --seconds alone (each variant's "steps" is what it reached).
        "steps": args.steps,
        "seconds": args.seconds,
        "train_size": args.train_size,
        "samples": args.samples,
        "inputs": inputs_scored(dataset.split("test"), args.inputs),
        "held_out_inputs": inputs_scored(dataset.split("novel"), args.inputs),
        "inputs_asked": args.inputs,
        "seed": args.seed,
        "temperatures": args.temperatures,
        "component_temperature": args.component_temperature,
        "candidates": args.candidates,
        "ceiling": ceilings[0],
        "held_out_ceiling": ceilings[1],
        "variants": {},
    }

    def record(name: str, entry: dict) -> None:
        report["variants"][name] = entry
        print(name, json.dumps(entry["summary"]), flush=True)
        report["equal_diversity"] = _equal_diversity(report["variants"])
        _write(args.out, report)  # as each is done: it survives a later variant's failure

    for wave in side_by_side.waves(args.variants, args.jobs):
        try:
            _wave(wave, args, ceilings, dataset, record)
        except KeyboardInterrupt:
            # Training's own note would offer resume=True from a run directory already
            # deleted: this script does not resume, so say what the JSON holds instead.
            raise SystemExit(_interrupted(args, wave, list(report["variants"]))) from None
    # In the order asked for, whichever of a wave finished first.
    report["variants"] = {name: report["variants"][name] for name in args.variants}
    report["complete"] = True
    _write(args.out, report)
    for pair, read in report["equal_diversity"].items():
        print(pair, json.dumps(read))
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
