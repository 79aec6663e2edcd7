"""The run's log, ``log.jsonl``: one JSON record per line, ``{"step", "split", "time", ...}``
with the mean loss terms of a window of training steps (``split = "train"``) or of a
validation (``"val"``); ``time`` is the seconds the run has trained, counted across resumes
(up to the checkpoint a resume continues from, then on).

A resumed run must leave the log a straight run would have written, so the log is cut back to
the checkpoint's step (records of steps a crash undid are redone), the open window of means
travels in the checkpoint (:class:`Means` has a state dict), and a new run first sets aside a
log left by a run that never wrote a checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._warnings import warn
from ..files import atomic_write_text

__all__ = ["LOG_NAME", "ABANDONED_LOG_NAME", "Means", "RunLog"]

LOG_NAME = "log.jsonl"
#: Where a new run moves the log that a run killed before its first checkpoint left.
ABANDONED_LOG_NAME = "log.abandoned.jsonl"


class Means:
    """Running (weighted) means of named values; a name may be missing from some additions
    (e.g. the unpaired terms, on steps without unpaired batches)."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.counts: dict[str, float] = {}

    def add(self, values: dict[str, float], weight: float = 1.0) -> None:
        for key, value in values.items():
            self.sums[key] = self.sums.get(key, 0.0) + weight * value
            self.counts[key] = self.counts.get(key, 0.0) + weight

    def pop(self) -> dict[str, float]:
        """The means so far, sorted by name; starts a new window."""
        means = {key: self.sums[key] / self.counts[key] for key in sorted(self.sums)}
        self.sums, self.counts = {}, {}
        return means

    def state_dict(self) -> dict[str, dict[str, float]]:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict[str, dict[str, float]]) -> None:
        self.sums, self.counts = dict(state["sums"]), dict(state["counts"])


class RunLog:
    """``out/log.jsonl``, written by one process (``writes``: rank 0 under DDP; on the other
    ranks every method does nothing)."""

    def __init__(self, out: Path, writes: bool = True):
        self.path = out / LOG_NAME
        self.writes = writes

    def write(self, record: dict[str, Any]) -> None:
        if not self.writes:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as file:
            file.write(json.dumps(record) + "\n")

    def truncate(self, step: int) -> None:
        """Drop the records of steps after ``step`` (written before a crash, redone now), blank
        lines, and a last line cut short while it was written (by a kill or a full disk: no
        record, no newline). Any other line that is not a record stops the resume, naming it."""
        if not (self.writes and self.path.exists()):
            return
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines(keepends=True)
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{self.path} is not a text log (byte {exc.start} is not UTF-8): the file was "
                f"damaged or replaced; repair or remove it, then resume"
            ) from None
        kept = []
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                redone = json.loads(line)["step"] > step
            except (ValueError, TypeError, KeyError):
                if number == len(lines) and not line.endswith("\n"):
                    break
                raise ValueError(
                    f"{self.path}, line {number}, is not a log record (a JSON object with a "
                    f"step): {line.strip()[:80]!r}; delete or repair that line, then resume"
                ) from None
            if not redone:
                kept.append(line.strip() + "\n")
        atomic_write_text(self.path, "".join(kept))

    def set_aside_abandoned(self) -> None:
        """Make way for a new run's log: one already there is that of a run killed (or
        stopped by a NaN) before its first checkpoint, which no resume can continue. It is
        moved to ``log.abandoned.jsonl`` (``log.abandoned-2.jsonl`` and on where that is
        taken: no log is replaced), and said."""
        if not (self.writes and self.path.exists()):
            return
        first = self.path.with_name(ABANDONED_LOG_NAME)
        stem, suffix = first.name.removesuffix(".jsonl"), ".jsonl"
        abandoned = next(
            path
            for path in (first, *(first.with_name(f"{stem}-{n}{suffix}") for n in range(2, 10**6)))
            if not path.exists()
        )
        os.replace(self.path, abandoned)
        warn(
            f"{self.path} held the records of an earlier run that wrote no checkpoint; moved "
            f"them to {abandoned}, so that this run's log holds its own",
        )
