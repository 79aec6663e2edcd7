"""``python -m flowbridge_shapes.demo``: train LNFMM on the shapes testbed and write a report.

Builds the testbed (seconds, nothing downloaded), trains LNFMM and two baselines (the
conditional-Gaussian residual prior a CVAE would use, and the deterministic mapping without
residuals) for the same number of steps, and writes to ``--out``. With 2 threads (the default)
LNFMM and the Gaussian prior train side by side, each in a process of its own with one thread,
then the deterministic mapping alone with both (``--jobs``, :mod:`.side_by_side`): on 2 cores
two runs of one thread train 30-45% more steps per second than one run of two. It writes:

* ``report.md``: a metrics table with the data's own ceilings, the captions' diversity by
  the captioning literature's metrics, the same table on the held-out split (pairs of shape
  and colour training never shows: generalisation), K generated images for test captions, K
  generated captions for test images, reconstructions, loss curves; and ``report.html``, the
  same page for a browser;
* ``text_to_image.png``, ``image_inputs.png``, ``reconstructions.png``, ``loss_curves.png``,
  ``tradeoff.png`` (text→image accuracy against diversity as the sampling temperature
  varies, for LNFMM and the Gaussian prior: the comparison at equal diversity);
* ``metrics.json`` (every number of the tables, the held-out split's caption diversity too,
  plus timings);
* ``runs/<variant>/``: each model's checkpoint, config and training log
  (``flowbridge translate --checkpoint out/runs/lnfmm/checkpoint.pt ...`` uses them).

Run again, it trains afresh and replaces each ``runs/<variant>/`` once the new model has
finished training. Just before the first one is replaced, it removes what the earlier demo
wrote beside it (its report, metrics, pictures and the runs of models this run does not
train), which would describe models no longer there; other files in ``--out`` are left alone.
Interrupted before that, the earlier demo stays whole; after it, the message names the runs
already replaced, and the report comes once every model is trained.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from flowbridge import train
from flowbridge.checkpoint import load_bridge
from flowbridge.distributed import resolve_device
from flowbridge.files import atomic_write_text, check_parent
from flowbridge.provenance import versions

from . import side_by_side
from .dataset import ShapesDataset
from .experiment import (
    TEMPERATURES,
    TESTBED,
    at_equal_diversity,
    evaluate_split,
    inputs_scored,
    names,
    run_config,
    strict_json,
    summary,
    testbed_data,
    text_to_image_tradeoff,
)
from .experiment import VARIANTS as SETTINGS
from .side_by_side import Job

__all__ = ["main"]

#: The models the demo trains by default, with their names in the report; ``--variants`` may
#: also name any other testbed variant (:data:`~flowbridge_shapes.experiment.VARIANTS`),
#: which the report names as such.
VARIANTS = {
    "lnfmm": "LNFMM (conditional flow prior, mixture base)",
    "gaussian": "conditional Gaussian prior (CVAE-style)",
    "deterministic": "deterministic (no residual)",
}
#: What the demo writes at the top of ``--out``, beside ``runs/``: all of it describes the
#: models in ``runs/``, so a rerun removes it before it replaces the first of them.
REPORT = (
    "report.md",
    "report.html",
    "metrics.json",
    "text_to_image.png",
    "image_inputs.png",
    "reconstructions.png",
    "loss_curves.png",
    "tradeoff.png",
)
SHOWN = 6  # inputs shown in the report per direction
# Steps per model. On days when the 2-core VM trains a model at ~10 steps/s on 2 threads, three
# models, their scoring and two temperature sweeps fit in the 5 minutes the demo may take,
# set-up excluded; on slower days they take 6 to 8 (README has the times, on fresh clones).
DEMO_STEPS = 900


def _html(markdown_text: str, title: str) -> str:
    """The report as a self-contained HTML page (images stay next to it, by name)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"])
    # The generated images are tiny (32 px a side): scale them up without blurring.
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}"
        "img{image-rendering:pixelated;max-width:100%}"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"
    )


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed), imported late:
    only the demo plots."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _loss_curves(runs: dict[str, Path], path: Path) -> None:
    plt = _pyplot()
    keys = ("total", "rec_a", "rec_b", "cross")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    for name, log in runs.items():
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        train = [r for r in records if r["split"] == "train"]
        for ax, key in zip(axes, keys, strict=True):
            points = [(r["step"], r[key]) for r in train if key in r]
            if points:
                ax.plot(*zip(*points, strict=True), label=name)
    for ax, key in zip(axes, keys, strict=True):
        ax.set_title({"rec_a": "rec image", "rec_b": "rec text"}.get(key, key))
        ax.set_xlabel("step")
        if key != "total":  # reconstruction NLLs are positive and fall by decades
            ax.set_yscale("log")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _tradeoff_plot(curves: dict[str, list[dict]], path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, rows in curves.items():
        ax.plot(
            [r["unstated_entropy"] for r in rows],
            [r["accuracy"] for r in rows],
            "o-",
            label=_label(name),
        )
        for r in rows:
            ax.annotate(
                f"T={r['temperature']:g}", (r["unstated_entropy"], r["accuracy"]), fontsize=7
            )
    ax.set_xlabel("unstated-attribute entropy (diversity)")
    ax.set_ylabel("text→image accuracy")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _equal_diversity_lines(curves: dict[str, list[dict]]) -> list[str]:
    """The report's paragraph on LNFMM against the Gaussian prior at equal diversity."""
    if not {"lnfmm", "gaussian"} <= curves.keys():
        return []
    read = at_equal_diversity(curves["lnfmm"], curves["gaussian"])
    if read["overlap"] is None:
        verdict = "the two curves reach no common diversity at these temperatures."
    else:
        low, high = read["overlap"]
        verdict = (
            f"where both reach the same diversity (entropy {low:.3f} to {high:.3f}), LNFMM's "
            f"text→image accuracy minus the Gaussian prior's is {100 * read['min']:+.1f} to "
            f"{100 * read['max']:+.1f} points (mean {100 * read['mean']:+.1f})."
        )
    return [
        "**At equal diversity.** Two priors compared each at temperature 1 differ in "
        "diversity as well as accuracy. Sampling at temperatures "
        f"{', '.join(f'{t:g}' for t in TEMPERATURES)} traces each one's trade-off: {verdict}",
        "",
        "![text-to-image accuracy against diversity](tradeoff.png)",
        "",
    ]


def _shared_threads(wave: list[str], args: argparse.Namespace) -> int:
    """The threads each model of ``wave`` trains with: an equal share of ``--threads``."""
    return max(1, args.threads // len(wave))


def _together(wave: list[str], args: argparse.Namespace) -> str:
    """``"A and B side by side, 1 thread each"``: how a wave of models shares the machine."""
    threads = _shared_threads(wave, args)
    labels = " and ".join(_label(name) for name in wave)
    return f"{labels} side by side, {threads} thread{'s' * (threads > 1)} each"


def _side_by_side(args: argparse.Namespace) -> str:
    """How the models shared the machine, for the report's first line."""
    waves = [wave for wave in side_by_side.waves(args.variants, args.jobs) if len(wave) > 1]
    return f" ({'; '.join(_together(wave, args) for wave in waves)})" if waves else ""


def _label(name: str) -> str:
    """A model's name in the report: the default models' descriptions, other variants' names."""
    return VARIANTS.get(name, name)


def _number(value: float, spec: str = ".3f") -> str:
    """``value`` formatted, or ``n/a`` where it is NaN: an entropy with no readable image to
    measure it on, or a share of a ceiling of 0."""
    return "n/a" if math.isnan(value) else format(value, spec)


def _of_data(value: float, share: float) -> str:
    """A diversity figure and its share of the data's own, e.g. ``0.812 (91% of data)``."""
    if math.isnan(value):
        return "n/a"
    return f"{value:.3f} ({_number(share, '.0%')} of data)"


def _table(results: dict, ceiling: dict, times: dict | None = None, steps: int = 0) -> str:
    """The metrics table; with ``times``, the training times with the steps per second they
    came to, since the same seeded numbers take as long as the machine is slow."""
    head = (
        "| model | image→text accuracy | distinct & valid of K | text→image accuracy "
        "| unstated-attribute entropy |" + " train time |" * bool(times) + "\n"
        "| --- | --- | --- | --- | --- |" + " --- |" * bool(times) + "\n"
    )
    lines = []
    for name, result in results.items():
        s = summary(result, ceiling)
        time_cell = f" {times[name]:.0f} s ({steps / times[name]:.1f} steps/s) |" if times else ""
        lines.append(
            f"| {_label(name)} | {s['i2t_accuracy']:.3f} "
            f"| {_of_data(s['i2t_distinct_valid'], s['i2t_distinct_valid_of_ceiling'])} "
            f"| {s['t2i_accuracy']:.3f} "
            f"| {_of_data(s['t2i_unstated_entropy'], s['t2i_entropy_of_ceiling'])} |{time_cell}"
        )
    i2t, t2i = ceiling["image_to_text"], ceiling["text_to_image"]
    lines.append(
        f"| *the data itself (ceiling)* | {i2t['accuracy']:.3f} | {i2t['distinct_valid']:.3f} "
        f"| {t2i['accuracy']:.3f} | {_number(t2i['unstated_entropy'])} |" + " |" * bool(times)
    )
    return head + "\n".join(lines) + "\n"


#: The captioning literature's diversity metrics in the report: key, column, and which way
#: is more diverse.
_DIVERSITY = (
    ("div_1", "Div-1 ↑"),
    ("div_2", "Div-2 ↑"),
    ("mbleu_4", "mBLEU-4 ↓"),
    ("unique", "unique ↑"),
    ("novel", "novel ↑"),
    ("self_cider", "self-CIDEr ↑"),
)


def _diversity_table(results: dict, ceiling: dict) -> str:
    """Image→text diversity by the captioning literature's metrics, the data's own below."""
    head = (
        "| model | " + " | ".join(label for _, label in _DIVERSITY) + " |\n"
        "| --- |" + " --- |" * len(_DIVERSITY) + "\n"
    )
    rows = [(_label(name), result["image_to_text"]) for name, result in results.items()]
    rows.append(("*the data itself (ceiling)*", ceiling["image_to_text"]))
    lines = [
        f"| {label} | " + " | ".join(f"{i2t[key]:.3f}" for key, _ in _DIVERSITY) + " |"
        for label, i2t in rows
    ]
    return head + "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m flowbridge_shapes.demo",
        description="Train LNFMM and two baselines on the shapes testbed; write a report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--out",
        default="out",
        help="output directory; a rerun replaces what an earlier demo wrote there (report.md, "
        "report.html, metrics.json, the PNGs, runs/<variant>/) and leaves other files alone",
    )
    parser.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps per model")
    parser.add_argument(
        "--samples", type=int, default=10, help="K outputs per input (at least 2: diversity)"
    )
    parser.add_argument(
        "--inputs",
        type=int,
        default=200,
        help="test inputs scored (at most the test split's images; the report says how many)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="models trained at once, each in a process of its own with an equal share of "
        "--threads; a model left alone trains here with them all (default: --threads, at most "
        "the number of models: two runs of 1 thread train 30-45%% more steps per second "
        "than one of 2; 1: one model after another)",
    )
    parser.add_argument(
        "--device",
        default="cpu",
        help="where to train: cpu (as the README's timings), cuda, cuda:N or auto",
    )
    parser.add_argument("--seed", type=int, default=0, help="training and sampling seed")
    parser.add_argument(
        "--train-size",
        type=int,
        default=TESTBED["data"]["options"]["train_size"],
        help="training images (3 captions each)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"comma list of models to train, from: {', '.join(SETTINGS)}",
    )
    return parser


def _check(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, found before any training (None if nothing); turns
    ``--variants`` into its list of names."""
    if args.samples < 2:
        return f"--samples must be at least 2 (diversity compares K samples), got {args.samples}"
    if args.inputs < 1:
        return f"--inputs must be at least 1, got {args.inputs}"
    if args.steps < 1 or args.threads < 1:
        return f"--steps and --threads must be at least 1, got {args.steps} and {args.threads}"
    if args.jobs is not None and not 1 <= args.jobs <= args.threads:
        return (
            f"--jobs must be between 1 and --threads ({args.threads}): each model trains with "
            f"a share of the threads, got {args.jobs}"
        )
    try:
        args.variants = names(args.variants, list(SETTINGS))
        args.jobs = min(args.jobs or args.threads, len(args.variants))
        resolve_device(args.device)  # before any training, not after the first model
        check_parent(Path(args.out) / "report.md")  # --out naming a file
    except (ValueError, NotADirectoryError) as exc:
        return str(exc)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    problem = _check(args)
    if problem:
        parser.error(problem)
    replaced: list[str] = []
    try:
        return _run(args, replaced)
    except KeyboardInterrupt:
        print(_interrupted(Path(args.out), args.variants, replaced), file=sys.stderr)
        return 130


def _interrupted(out: Path, variants: list[str], replaced: list[str]) -> str:
    """What an interrupted run leaves in ``out``, for the message that says so."""
    if not replaced:
        return (
            f"interrupted before any model was replaced: {out} keeps what an earlier complete "
            f"demo wrote there"
        )
    runs = ", ".join(f"runs/{name}" for name in replaced)
    left = [f"runs/{name}" for name in variants if name not in replaced]
    left = [run for run in left if (out / run).is_dir()]
    earlier = f"; {', '.join(left)} still the earlier demo's" if left else ""
    return (
        f"interrupted: {out} holds this run's {runs}{earlier}, and no report: the earlier demo's "
        f"report, metrics and pictures were removed when its first model was replaced"
    )


def _retire(out: Path, variants: list[str]) -> None:
    """Remove what an earlier demo wrote in ``out`` that describes models about to be
    replaced: its report files and the runs of variants this run does not train (their
    ``.partial`` leftovers too). The runs this one trains are replaced one by one."""
    for name in REPORT:
        (out / name).unlink(missing_ok=True)
    for name in SETTINGS.keys() - set(variants):
        for run in (out / "runs" / name, out / "runs" / f"{name}.partial"):
            shutil.rmtree(run, ignore_errors=True)


def _train_and_score(
    name: str,
    args: argparse.Namespace,
    dataset: ShapesDataset | None = None,
    on_step: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """One model's work: train variant ``name`` into ``<out>/runs/<name>.partial`` and score
    it on the test split, the held-out split and, for LNFMM and the Gaussian prior, over the
    sampling temperatures; the first of ``args.variants`` scores the data's ceilings too.

    Runs in this process or in one of its own (:mod:`.side_by_side`: then ``dataset`` is
    ``None`` and built here again, the same by its seed, and ``on_step`` reports progress in
    place of the trainer's bar). Returns what the report needs, picklable: ``wall_time``,
    ``log`` (the log's file name), ``test``, ``held_out`` and ``curve`` (``None`` unless swept).
    """
    data = testbed_data(args.train_size)
    dataset = dataset if dataset is not None else ShapesDataset(**data)
    partial = Path(args.out) / "runs" / f"{name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    callbacks = () if on_step is None else (lambda trainer, step, values: on_step(step),)
    config = run_config(
        name,
        str(partial),
        data={"options": data},
        train={
            "steps": args.steps,
            "seed": args.seed,
            "checkpoint_every": 0,
            "device": args.device,
            "progress": on_step is None,
        },
    )
    result = train(config, callbacks=callbacks)
    sampling = (args.samples, args.inputs, args.seed)
    ceilings = name == args.variants[0]
    test = evaluate_split(result.bridge, dataset, "test", *sampling, ceilings=ceilings)
    # Generalisation: captions and images of (shape, colour) pairs training never shows.
    held_out = evaluate_split(result.bridge, dataset, "novel", *sampling, ceilings=ceilings)
    curve = None
    if name in ("lnfmm", "gaussian"):
        curve = text_to_image_tradeoff(
            result.bridge,
            dataset.split("test"),
            TEMPERATURES,
            *sampling,
            known={1.0: test["text_to_image"]},
        )
    return {
        "wall_time": result.wall_time,
        "log": result.log.name,
        "test": test,
        "held_out": held_out,
        "curve": curve,
    }


def _install(out: Path, name: str, variants: list[str], replaced: list[str]) -> Path:
    """Make the trained ``runs/<name>.partial`` the demo's ``runs/<name>``, replacing what an
    earlier demo left there; the first model replaced retires the earlier demo's report
    (:func:`_retire`). Appends ``name`` to ``replaced``; returns the run directory."""
    runs = out / "runs"
    if not replaced:
        _retire(out, variants)
    shutil.rmtree(runs / name, ignore_errors=True)
    (runs / f"{name}.partial").rename(runs / name)
    replaced.append(name)
    return runs / name


def _train_wave(
    wave: list[str], args: argparse.Namespace, dataset: ShapesDataset
) -> list[dict[str, Any]]:
    """Train and score the models of one wave: a model alone here with every thread, two or
    more side by side, each in a process of its own with an equal share of them."""
    if len(wave) == 1:
        print(f"== training {_label(wave[0])} for {args.steps} steps", flush=True)
        return [_train_and_score(wave[0], args, dataset)]
    print(f"== training {_together(wave, args)}, {args.steps} steps", flush=True)
    jobs = [Job(name, _train_and_score, (name, args)) for name in wave]
    return side_by_side.run(jobs, _shared_threads(wave, args), args.steps)


def _run(args: argparse.Namespace, replaced: list[str]) -> int:
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    dataset = ShapesDataset(**testbed_data(args.train_size))
    test, novel = dataset.split("test"), dataset.split("novel")
    scored = inputs_scored(test, args.inputs)

    results, held_out, times, logs, curves = {}, {}, {}, {}, {}
    for wave in side_by_side.waves(args.variants, args.jobs):
        for name, model in zip(wave, _train_wave(wave, args, dataset), strict=True):
            logs[name] = _install(out, name, args.variants, replaced) / model["log"]
            times[name] = model["wall_time"]
            results[name], held_out[name] = model["test"], model["held_out"]
            if model["curve"] is not None:
                curves[name] = model["curve"]
            print(
                f"   {_label(name)}: trained in {times[name]:.0f} s "
                f"({args.steps / times[name]:.1f} steps/s), scored on {scored} test inputs x "
                f"{args.samples} samples",
                flush=True,
            )
    ceiling = next(iter(results.values()))["ceiling"]
    novel_ceiling = next(iter(held_out.values()))["ceiling"]
    held_out_pairs = [f"{color} {shape}" for shape, color in dataset.held_out]
    first_shape, first_color = dataset.held_out[0]
    main_name = "lnfmm" if "lnfmm" in results else next(iter(results))
    outputs = results[main_name]["outputs"]
    image_domain = load_bridge(out / "runs" / main_name).domains["a"]
    shown = outputs["inputs"][:SHOWN]

    # Text -> image: a grid, one row of K images per caption.
    image_domain.write_items(outputs["images"][:SHOWN], out / "text_to_image.png")
    image_domain.write_items([[test.a[i]] for i in shown], out / "image_inputs.png")
    # Reconstructions: originals next to their reconstructions.
    rebuilt = outputs["reconstructed_images"][:SHOWN]
    image_domain.write_items(
        [[test.a[i], r] for i, r in zip(shown, rebuilt, strict=True)], out / "reconstructions.png"
    )
    reconstruction = results[main_name]["reconstruction"]
    _loss_curves(logs, out / "loss_curves.png")
    if curves:
        _tradeoff_plot(curves, out / "tradeoff.png")

    total = time.perf_counter() - started
    # Only as many inputs as the test split has images can be scored: say so when fewer.
    asked = f" (of {args.inputs} asked: all the test split has)" if scored < args.inputs else ""
    lines = [
        f"# flowbridge demo: {'LNFMM' if 'lnfmm' in results else ', '.join(results)} on the "
        "shapes testbed",
        "",
        f"{len(results)} model{'s' * (len(results) > 1)} trained for {args.steps} steps each"
        f"{_side_by_side(args)} on "
        f"{args.train_size} rendered images (3 captions each); scored on {scored} test images"
        f"{asked} and their captions, "
        f"K = {args.samples} samples per input, captions decoded greedily (so their diversity "
        f"comes from the latent samples). Whole run: {total:.0f} s.",
        "",
        _table(results, ceiling, times, args.steps),
        "*Accuracy*: image→text, captions whose every claim holds for the image; text→image, "
        "images whose attributes match everything the caption states. *Distinct & valid*: "
        "distinct correct captions among the K. *Unstated-attribute entropy*: how evenly the "
        "K images vary what the caption leaves open (1 = uniform; n/a where no image of a "
        "caption that leaves something open was readable). A collapsed model (all K alike) "
        "looks accurate but scores low on diversity.",
        "",
        "**Image→text diversity** by the captioning literature's metrics (↑: higher is more "
        "diverse; mBLEU-4 ↓, each caption's BLEU-4 against the image's other captions; novel: "
        "captions not among the training captions; self-CIDEr's document frequencies from "
        "the training captions):",
        "",
        _diversity_table(results, ceiling),
        f"**Generalisation**: the held-out split, {inputs_scored(novel, args.inputs)} images "
        f"of (shape, colour) pairs that training never shows ({', '.join(held_out_pairs)}) "
        "and their captions, against that split's own ceilings (a model may vary more than "
        f"these data do: given “{first_color}”, they only ever show a {first_color} "
        f"{first_shape}):",
        "",
        _table(held_out, novel_ceiling),
        *_equal_diversity_lines(curves),
        f"## Text → image ({_label(main_name)}): {args.samples} samples per caption",
        "",
        "![text to image](text_to_image.png)",
        "",
        *[f"{row + 1}. “{test.b[i]}”" for row, i in enumerate(shown)],
        "",
        f"## Image → text ({_label(main_name)})",
        "",
        "![image inputs](image_inputs.png)",
        "",
    ]
    for row, (i, captions) in enumerate(zip(shown, outputs["captions"], strict=False)):
        lines += [f"**Image {row + 1}** ({', '.join(test.meta[i]['attributes'].values())}):", ""]
        lines += [f"- {c}" for c in captions] + [""]
    lines += [
        "## Reconstructions",
        "",
        "![reconstructions](reconstructions.png) (left: original, right: reconstruction)",
        "",
        f"Images: attributes kept {reconstruction['image']['attributes_kept']:.3f}, "
        f"PSNR {reconstruction['image']['psnr']:.1f} dB. Captions: claims kept "
        f"{reconstruction['text']['claims_kept']:.3f}, "
        f"exact {reconstruction['text']['exact']:.3f}.",
        "",
        "## Training",
        "",
        "![loss curves](loss_curves.png)",
        "",
    ]
    report = "\n".join(lines)
    atomic_write_text(out / "report.md", report)
    atomic_write_text(out / "report.html", _html(report, "flowbridge demo"))
    metrics = {
        # The settings and the code that made these numbers, so that runs can be compared.
        **versions(__file__),
        "seed": args.seed,
        "steps": args.steps,
        "train_size": args.train_size,
        "inputs": scored,
        "inputs_asked": args.inputs,
        "samples": args.samples,
        "variants": args.variants,
        "threads": args.threads,
        "jobs": args.jobs,
        "device": str(resolve_device(args.device)),
        # Not "seconds": at a file's top, compare.py reads that as the budget asked for.
        "total_seconds": total,
        "train_seconds": times,
        "ceiling": ceiling,
        "held_out_ceiling": novel_ceiling,
        "reconstruction": reconstruction,
        "text_to_image_tradeoff": curves,
        "models": {
            name: {k: v for k, v in r.items() if k not in ("outputs", "ceiling")}
            for name, r in results.items()
        },
        "held_out": {
            name: {k: v for k, v in r.items() if k not in ("outputs", "ceiling")}
            for name, r in held_out.items()
        },
    }
    atomic_write_text(out / "metrics.json", strict_json(metrics))
    # The report's arrows are not in cp1252, what Windows writes to a pipe or a file with.
    print(_table(results, ceiling, times, args.steps).replace("→", "->"))
    print(f"report: {out / 'report.md'} ({total:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
