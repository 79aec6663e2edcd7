"""Results as files a person opens: ``results.json`` and a Markdown table like the paper's."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flowbridge.files import atomic_write

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


def _captioning(metrics: dict[str, Any]) -> list[str]:
    s = metrics["settings"]
    k = s["samples"]
    lines = [
        f"# COCO image captioning ({metrics['split']} split, {metrics['images']} images)",
        "",
        f"{k} samples per image (beam {s['beam_size']}, temperature {s['temperature']}, seed "
        f"{s['seed']}); consensus re-ranking over the references of the {s['neighbours']} "
        f"nearest training images, top {s['consensus_top']} CIDEr-D similarities summed.",
        "",
    ]
    rows = [
        (f"oracle (best of {k})", metrics["oracle"]),
        ("consensus re-ranking", metrics["consensus"]),
        (f"mean of {k}", metrics["mean_of_k"]),
    ]
    lines += _table(
        list(CAPTION_COLUMNS.values()),
        [(name, [_cell(scores.get(m)) for m in CAPTION_COLUMNS]) for name, scores in rows],
    )
    diversity = metrics["diversity"]
    top = diversity["captions_per_image"]
    lines += [
        "",
        f"Diversity of the {top} best re-ranked captions per image (unique: distinct among "
        f"them; novel: not a training caption):",
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
        f"# COCO text-to-image ({metrics['split']} split, {metrics['captions']} captions)",
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
    ``out``, atomically; return the paths."""
    out = Path(out)
    files = {"results.json": metrics, **(extra or {})}
    paths = []
    for name, content in files.items():
        text = json.dumps(content, indent=2).encode()
        paths.append(atomic_write(out / name, lambda file, text=text: file.write(text)))
    report = markdown(metrics).encode()
    paths.append(atomic_write(out / "results.md", lambda file: file.write(report)))
    return paths
