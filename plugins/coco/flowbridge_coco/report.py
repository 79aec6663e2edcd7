"""Results as files a person opens: ``results.json`` and a Markdown table like the paper's."""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import Any

from flowbridge.files import atomic_write_text

__all__ = ["markdown", "write_results", "CAPTION_COLUMNS"]

#: The paper's column order and short names for the caption accuracy tables.
CAPTION_COLUMNS = {
    "BLEU-4": "B4",
    "BLEU-3": "B3",
    "BLEU-2": "B2",
    "BLEU-1": "B1",
    "CIDEr-D": "C",
    "ROUGE-L": "R",
    "METEOR": "M",
    "SPICE": "S",
}
_DIVERSITY = ("unique", "novel", "mBLEU-4", "Div-1", "Div-2", "self-CIDEr")
_PERCENT = ("unique", "novel")
_IMAGE_SCORES = ("FID", "precision", "recall", "real", "generated")
#: The files an evaluation writes into its folder, besides ``grids/grid_NNN.png``.
_OUTPUTS = ("results.json", "results.md", "captions.json", "generated.pt", "grids/grids.md")
_GRID = re.compile(r"grid_\d{3,}\.png")


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{100 * value:.1f}%" if percent else f"{value:.3f}"


def _row(name: str, values: list[str]) -> str:
    return "| " + " | ".join([name, *values]) + " |"


def _table(header: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    return [
        _row("", header),
        _row("---", ["---"] * len(header)),
        *(_row(name, cells) for name, cells in rows),
    ]


def _consensus(settings: dict[str, Any], used: dict[str, Any] | None) -> str:
    """How consensus re-ranking ran: the neighbours and similarities it could use, and what
    was asked where the training split had fewer (results written before ``used`` existed
    state only what was asked)."""
    asked_k, asked_m = settings["neighbours"], settings["consensus_top"]
    used = used or {"neighbours": asked_k, "consensus_top": [asked_m, asked_m]}
    k, (fewest, most) = used["neighbours"], used["consensus_top"]
    m = str(most) if fewest == most else f"{fewest}–{most}"
    text = (
        f"consensus re-ranking over the references of the {k} nearest training images, top "
        f"{m} CIDEr-D similarities summed"
    )
    short = []
    if k < asked_k:
        short.append(f"{asked_k} neighbours asked for, but the training split has {k} images")
    if fewest < asked_m:
        short.append(f"top {asked_m} asked for, but the neighbours have {m} references")
    return text + (f" ({'; '.join(short)})" if short else "")


def _captioning(metrics: dict[str, Any]) -> list[str]:
    s = metrics["settings"]
    k = s["samples"]
    lines = [
        f"# COCO image captioning ({metrics['split']} split, {metrics['images']} "
        f"image{'s' * (metrics['images'] != 1)})",
        "",
        f"{k} samples per image (beam {s['beam_size']}, temperature {s['temperature']}, seed "
        f"{s['seed']}); {_consensus(s, metrics.get('used'))}.",
        "",
    ]
    rows = [
        (f"oracle (best of {k})", metrics["oracle"]),
        ("consensus re-ranking", metrics["consensus"]),
        # Results written before the corpus-level scores were kept have none.
        ("consensus re-ranking, corpus-level (as COCO tables)", metrics.get("consensus_corpus")),
        (f"mean of {k}", metrics["mean_of_k"]),
    ]
    lines += _table(
        list(CAPTION_COLUMNS.values()),
        [
            (name, [_cell(scores.get(m)) for m in CAPTION_COLUMNS])
            for name, scores in rows
            if scores is not None
        ],
    )
    lines += [
        "",
        "Oracle, consensus and mean rows average per-caption scores (sentence BLEU); the "
        "corpus-level row pools n-gram counts over all images, as the COCO evaluation does.",
    ]
    diversity = metrics["diversity"]
    top = diversity["captions_per_image"]
    lines += [
        "",
        f"Diversity of the {top} best re-ranked captions per image (unique: distinct among "
        f"them; novel: neither empty nor a training caption):",
        "",
        *_table(
            list(_DIVERSITY),
            [(f"best {top}", [_cell(diversity.get(m), m in _PERCENT) for m in _DIVERSITY])],
        ),
    ]
    return lines


def _text_to_image(metrics: dict[str, Any]) -> list[str]:
    s = metrics["settings"]
    lines = [
        f"# COCO text-to-image ({metrics['split']} split, {metrics['captions']} "
        f"caption{'s' * (metrics['captions'] != 1)})",
        "",
        f"{s['samples']} images per caption (temperature {s['temperature']}, seed {s['seed']}); "
        f"precision and recall with k = {s['k']}. Feature-based scores depend on the feature "
        f"extractor: compare only numbers measured with the same one.",
        "",
    ]
    scores = metrics.get("scores", {})
    lines += _table(list(_IMAGE_SCORES), [("", [_cell(scores.get(m)) for m in _IMAGE_SCORES])])
    lines += ["", "Samples: grids/grids.md (PNG grids, a row per caption, a column per sample)."]
    return lines


def markdown(metrics: dict[str, Any]) -> str:
    """The Markdown report of :func:`~flowbridge_coco.evaluation.evaluate_captioning` or
    :func:`~flowbridge_coco.evaluation.evaluate_text_to_image` metrics."""
    tasks = {"captioning": _captioning, "text-to-image": _text_to_image}
    if metrics.get("task") not in tasks:
        raise ValueError(
            f"metrics must come from a coco evaluation (task {list(tasks)}), got task "
            f"{metrics.get('task')!r}"
        )
    lines = tasks[metrics["task"]](metrics)
    skipped = metrics.get("skipped") or {}
    if skipped:
        lines += ["", "Not computed:", ""]
        lines += [f"- {name}: {reason}" for name, reason in skipped.items()]
    return "\n".join(lines) + "\n"


def write_results(
    metrics: dict[str, Any], out: str | os.PathLike, extra: dict[str, Any] | None = None
) -> list[Path]:
    """Write ``results.json`` and ``results.md`` (and each ``extra`` name as JSON) into
    ``out``, atomically; return the paths.

    An earlier evaluation's files in ``out`` that this one did not write (the other task's
    ``captions.json``, ``generated.pt`` or ``grids/``, grids beyond this run's count) are
    deleted, so that none is taken for this run's; files of other names are left alone.
    """
    out = Path(out)
    files = {"results.json": metrics, **(extra or {})}
    paths = []
    for name, content in files.items():
        paths.append(atomic_write_text(out / name, json.dumps(content, indent=2)))
    paths.append(atomic_write_text(out / "results.md", markdown(metrics)))
    _remove_stale(out, {*paths, *map(Path, metrics.get("files", []))})
    return paths


def _remove_stale(out: Path, written: set[Path]) -> None:
    """Delete the evaluation outputs in ``out`` (by their names) that are not ``written``."""
    grids = out / "grids"
    outputs = [out / name for name in _OUTPUTS]
    if grids.is_dir():
        outputs += [path for path in grids.iterdir() if _GRID.fullmatch(path.name)]
    keep = {path.resolve() for path in written}
    for path in outputs:
        if path.is_file() and path.resolve() not in keep:
            path.unlink()
    with contextlib.suppress(OSError):  # only if nothing else is left in it
        grids.rmdir()
