"""Accuracy of sampled captions against reference captions: oracle best-of-N and mean-of-N.

Every candidate of an input is scored against that input's references with pycocoevalcap's
scorer classes, called directly on pre-tokenized strings (no PTBTokenizer: it runs Java).
*Best-of-N* (the "oracle" score of the diverse-captioning literature) keeps each input's best
candidate per metric; *mean-of-N* averages all candidates. Both are then averaged over inputs.

* BLEU-1..4: sentence-level BLEU of each candidate (pycocoevalcap's smoothing);
* METEOR 1.5: pycocoevalcap ships the jar and its paraphrase table, but it runs on Java; with no
  ``java`` on ``PATH`` it is skipped and the result says why;
* ROUGE-L; CIDEr-D (pycocoevalcap's ``Cider``: clipped tf-idf with a length penalty, document
  frequencies from the references of all inputs scored together: score many inputs at once,
  with a single input every idf, and so CIDEr-D, is 0);
* SPICE is never computed: pycocoevalcap downloads Stanford CoreNLP models on first use, which
  cannot happen offline.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np

from ._pycoco import import_scorer
from .text import check_caption_sets

__all__ = ["caption_scores", "METRICS"]

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")

SPICE_UNAVAILABLE = (
    "SPICE needs Stanford CoreNLP models that pycocoevalcap downloads on first use; "
    "flowbridge runs offline, so SPICE is not computed"
)

Scorer = Callable[[dict, dict], dict[str, list[float]]]


def _bleu(gts: dict, res: dict) -> dict[str, list[float]]:
    _, per_input = import_scorer("bleu.bleu").Bleu(4).compute_score(gts, res, verbose=0)
    return {f"BLEU-{n + 1}": list(per_input[n]) for n in range(4)}


def _rouge(gts: dict, res: dict) -> dict[str, list[float]]:
    _, per_input = import_scorer("rouge.rouge").Rouge().compute_score(gts, res)
    return {"ROUGE-L": list(per_input)}


def _cider(gts: dict, res: dict) -> dict[str, list[float]]:
    _, per_input = import_scorer("cider.cider").Cider().compute_score(gts, res)
    return {"CIDEr-D": list(per_input)}


def meteor_unavailable() -> str | None:
    """Why METEOR cannot run here, or ``None`` if it can."""
    meteor = import_scorer("meteor.meteor")
    jar = Path(meteor.__file__).with_name(meteor.METEOR_JAR)
    if not jar.is_file():
        return f"METEOR skipped: pycocoevalcap's {jar.name} is missing from {jar.parent}"
    if shutil.which("java") is None:
        return (
            "METEOR skipped: it runs pycocoevalcap's meteor-1.5.jar on Java and no `java` is on "
            "PATH; install a Java runtime (e.g. apt-get install default-jre-headless) to score it"
        )
    return None


@contextmanager
def _meteor():
    """pycocoevalcap's METEOR scorer, whose Java process is shut down on exit (its own
    ``__del__`` leaves the pipes open)."""
    scorer = import_scorer("meteor.meteor").Meteor()
    try:

        def score(gts: dict, res: dict) -> dict[str, list[float]]:
            # METEOR's protocol is line based: an empty hypothesis would desynchronise it.
            res = {key: [text or "."] for key, (text,) in res.items()}
            _, per_input = scorer.compute_score(gts, res)
            return {"METEOR": list(per_input)}

        yield score
    finally:
        with scorer.lock:
            process = scorer.meteor_p
            process.stdin.close()
            process.kill()
            process.wait()
            process.stdout.close()
            process.stderr.close()


def caption_scores(
    candidates: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    meteor: bool = True,
) -> dict:
    """Score each input's candidate captions against its references.

    Args:
        candidates: ``candidates[i][k]``, sample ``k`` generated for input ``i``.
        references: ``references[i]``, the true captions of input ``i`` (at least one).
        meteor: set ``False`` to skip METEOR (it starts a Java process, a few seconds).

    Returns:
        ``{"best": {metric: value}, "mean": {metric: value}, "skipped": {metric: reason}}``
        with the metrics of :data:`METRICS` that ran (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D);
        ``skipped`` always names SPICE, and METEOR when it did not run.
    """
    cands = check_caption_sets(candidates, name="candidates")
    refs = check_caption_sets(references, name="references")
    if len(cands) != len(refs):
        raise ValueError(
            f"candidates has {len(cands)} inputs but references has {len(refs)}; give one "
            f"list of references per input"
        )
    skipped = {"SPICE": SPICE_UNAVAILABLE}
    if meteor:
        reason = meteor_unavailable()
        if reason:
            skipped["METEOR"] = reason
    else:
        skipped["METEOR"] = "METEOR skipped: caption_scores(..., meteor=False)"

    with nullcontext() if "METEOR" in skipped else _meteor() as meteor_scorer:
        scorers: list[Scorer] = [_bleu, _rouge, _cider]
        if meteor_scorer is not None:
            scorers.append(meteor_scorer)
        # scores[metric][i, k]: candidate k of input i (NaN where input i has fewer samples).
        width = max(map(len, cands))
        scores: dict[str, np.ndarray] = {}
        for k in range(width):
            rows = [i for i, samples in enumerate(cands) if len(samples) > k]
            gts = {i: refs[i] for i in rows}
            res = {i: [cands[i][k]] for i in rows}
            for scorer in scorers:
                for metric, values in scorer(gts, res).items():
                    table = scores.setdefault(metric, np.full((len(cands), width), np.nan))
                    table[rows, k] = values
    order = [m for m in METRICS if m in scores]
    return {
        "best": {m: float(np.nanmax(scores[m], axis=1).mean()) for m in order},
        "mean": {m: float(np.nanmean(scores[m], axis=1).mean()) for m in order},
        "skipped": skipped,
    }
