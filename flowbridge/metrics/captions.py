"""Accuracy of sampled captions against reference captions: oracle best-of-N and mean-of-N.

Every candidate of an input is scored against that input's references with pycocoevalcap's
scorer classes, called directly on captions split into words by
:func:`~flowbridge.metrics.tokenize` (no PTBTokenizer: it runs Java; the two split words
differently, see :mod:`flowbridge.metrics.text`, so scores can differ slightly from the COCO
evaluation's on captions with hyphens, decimals or contractions). *Best-of-N* (the "oracle"
score of the diverse-captioning literature) keeps each input's best candidate per metric;
*mean-of-N* averages all candidates. Both are then averaged over inputs.

* BLEU-1..4: sentence-level BLEU of each candidate (pycocoevalcap's smoothing);
* METEOR 1.5: each candidate's segment score. pycocoevalcap ships the jar and its paraphrase
  table, but it runs on Java; with no ``java`` on ``PATH``, or a Java that fails (e.g. cannot
  reserve the 2 GB heap pycocoevalcap asks for), it is skipped and the result says why;
* ROUGE-L; CIDEr-D (pycocoevalcap's ``Cider``: clipped tf-idf with a length penalty, document
  frequencies from the references of all inputs, whatever their number of samples; with a
  single input every idf is 0, so CIDEr-D is skipped);
* SPICE is never computed: pycocoevalcap downloads Stanford CoreNLP models on first use, which
  cannot happen offline.

Sentence-level BLEU and segment METEOR averaged over inputs are not the numbers of COCO caption
tables, even with one caption per input: COCOEvalCap reports *corpus* BLEU (n-gram matches
summed over all inputs before the precisions are taken) and METEOR's aggregate over all
segments. With one candidate per input, :func:`caption_scores` returns those as well.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from ._pycoco import import_scorer
from .text import check_caption_sets

__all__ = ["caption_scores", "meteor_unavailable", "METRICS", "METEOR_START_TIMEOUT_S"]

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr-D")

_SPICE_UNAVAILABLE = (
    "SPICE needs Stanford CoreNLP models that pycocoevalcap downloads on first use; "
    "flowbridge runs offline, so SPICE is not computed"
)
_CIDER_NEEDS_INPUTS = (
    "CIDEr-D skipped: its document frequencies come from the references of all inputs scored "
    "together, and with a single input every idf is 0 (CIDEr-D would be 0 for any caption); "
    "score several inputs in one call"
)
#: How long METEOR's Java process may take to answer its first line: it loads the jar and a
#: paraphrase table (~5 s), so a longer silence means it is stuck.
METEOR_START_TIMEOUT_S = 120.0

#: ``(corpus-level scores, per-input scores)`` of one metric family, by metric name.
Scores = tuple[dict[str, float], dict[str, list[float]]]
Scorer = Callable[[dict, dict], Scores]


class _MeteorFailed(RuntimeError):
    """METEOR's Java process failed; the message says how and what Java printed."""


def _bleu(gts: dict, res: dict) -> Scores:
    corpus, per_input = import_scorer("bleu.bleu").Bleu(4).compute_score(gts, res, verbose=0)
    names = [f"BLEU-{n + 1}" for n in range(4)]
    return (
        {name: float(corpus[n]) for n, name in enumerate(names)},
        {name: list(per_input[n]) for n, name in enumerate(names)},
    )


def _rouge(gts: dict, res: dict) -> Scores:
    corpus, per_input = import_scorer("rouge.rouge").Rouge().compute_score(gts, res)
    return {"ROUGE-L": float(corpus)}, {"ROUGE-L": list(per_input)}


def _cider(gts: dict, res: dict) -> Scores:
    corpus, per_input = import_scorer("cider.cider").Cider().compute_score(gts, res)
    return {"CIDEr-D": float(corpus)}, {"CIDEr-D": list(per_input)}


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
    """pycocoevalcap's METEOR scorer, checked to answer, whose Java process is shut down on exit.

    pycocoevalcap's ``compute_score`` takes the scorer's lock before talking to Java and
    releases it only on success: when Java dies (a broken pipe, or an empty line read as a
    score) the lock stays held, and anything that waits on it, its own ``__del__`` included,
    waits forever. So nothing here takes that lock, and a held one is released at shut-down.

    Raises:
        _MeteorFailed: Java would not start, failed, or did not answer in time.
    """
    try:
        scorer = import_scorer("meteor.meteor").Meteor()
    except OSError as exc:  # `java` found on PATH but not executable
        raise _MeteorFailed(f"METEOR skipped: could not start Java: {exc}") from exc
    try:
        _check_answers(scorer)
        yield functools.partial(_meteor_score, scorer)
    finally:
        _shut_down(scorer)


def _check_answers(scorer) -> None:
    """Score one pair under a watchdog: a Java that dies at start (e.g. it cannot reserve the
    ``-Xmx2G`` heap pycocoevalcap asks for) fails here, and one that never answers is killed
    after :data:`METEOR_START_TIMEOUT_S` rather than hanging the caller."""
    timed_out = threading.Event()

    def expire() -> None:
        timed_out.set()
        scorer.meteor_p.kill()  # the blocked read then ends with an empty line

    watchdog = threading.Timer(METEOR_START_TIMEOUT_S, expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        _meteor_score(scorer, {0: ["a"]}, {0: ["a"]})
    except _MeteorFailed as exc:
        if not timed_out.is_set():
            raise
        raise _MeteorFailed(_timeout_reason()) from exc
    finally:
        watchdog.cancel()
    if timed_out.is_set():  # it answered just as the watchdog killed it
        raise _MeteorFailed(_timeout_reason())


def _timeout_reason() -> str:
    return (
        f"METEOR skipped: its Java process did not answer within {METEOR_START_TIMEOUT_S:g} s "
        f"(it usually starts in ~5 s); check that `java -Xmx2G -version` runs here, or pass "
        f"meteor=False"
    )


def _meteor_score(scorer, gts: dict, res: dict) -> Scores:
    """METEOR of each candidate and the aggregate, or :class:`_MeteorFailed` saying why not."""
    # METEOR's protocol is line based: an empty hypothesis would desynchronise it.
    res = {key: [text or "."] for key, (text,) in res.items()}
    try:
        corpus, per_input = scorer.compute_score(gts, res)
    except (OSError, ValueError) as exc:  # a broken pipe; a dead process's "" read as a score
        raise _MeteorFailed(_failure(scorer, exc)) from exc
    return {"METEOR": float(corpus)}, {"METEOR": list(per_input)}


def _failure(scorer, exc: Exception) -> str:
    """Why METEOR failed: the Python error, the exit status and the end of Java's stderr
    (the only place a JVM says what went wrong)."""
    process = scorer.meteor_p
    process.kill()
    process.wait()
    said = _stderr_tail(process)
    return (
        f"METEOR skipped: its Java process ({' '.join(process.args)}) failed: "
        f"{type(exc).__name__}: {exc}; exit status {process.returncode}; Java said: "
        f"{said or '(nothing)'}. Check that `java -Xmx2G -version` runs here (a JVM that "
        f"cannot reserve its 2 GB heap exits at once), or pass meteor=False"
    )


def _stderr_tail(process, limit: int = 600) -> str:
    """The end of what the (dead) process wrote to stderr, read without blocking: a process
    that it started could still hold the pipe open."""
    try:
        os.set_blocking(process.stderr.fileno(), False)
        data = process.stderr.read() or b""
    except (OSError, ValueError):  # no non-blocking pipes (Windows before 3.12), or closed
        return ""
    return " ".join(data.decode(errors="replace").split())[-limit:]


def _shut_down(scorer) -> None:
    """End METEOR's Java process and close its pipes (pycocoevalcap's ``__del__`` leaves the
    pipes open), without waiting on the scorer's lock."""
    process = scorer.meteor_p
    with suppress(OSError):  # flushing into a dead process: a broken pipe
        process.stdin.close()
    process.kill()
    process.wait()
    process.stdout.close()
    process.stderr.close()
    if scorer.lock.locked():  # left held by a failed compute_score; Meteor.__del__ takes it
        scorer.lock.release()


def _score(scorer: Scorer, cands: list[list[str]], refs: list[list[str]]):
    """``scores[metric][i, k]`` of candidate ``k`` of input ``i`` (NaN where input ``i`` has
    fewer samples), and the corpus-level scores when every input has one candidate.

    Every call scores every input, so that what a scorer computes over the corpus (CIDEr-D's
    document frequencies) always comes from all inputs' references, whatever their number of
    samples and their order: an input with fewer than ``k + 1`` samples fills slot ``k`` with
    its first sample, whose score is then dropped.
    """
    width = max(map(len, cands))
    gts = dict(enumerate(refs))
    tables: dict[str, np.ndarray] = {}
    corpus: dict[str, float] = {}
    for k in range(width):
        res = {i: [row[k] if k < len(row) else row[0]] for i, row in enumerate(cands)}
        totals, per_input = scorer(gts, res)
        for metric, values in per_input.items():
            tables.setdefault(metric, np.empty((len(cands), width)))[:, k] = values
        if width == 1:
            corpus = totals
    for table in tables.values():
        for i, row in enumerate(cands):
            table[i, len(row) :] = np.nan
    return tables, corpus


def caption_scores(
    candidates: Sequence[Sequence[str]],
    references: Sequence[Sequence[str]],
    meteor: bool = True,
) -> dict:
    r"""Score each input's candidate captions against its references.

    With :math:`s_m(c, R_i)` the score of candidate :math:`c` against input :math:`i`'s
    references under metric :math:`m` (sentence-level BLEU, segment METEOR, ROUGE-L, CIDEr-D)
    and :math:`C_i` its :math:`K_i` candidates:

    .. math::

        \text{best}_m = \frac{1}{N}\sum_i \max_{c \in C_i} s_m(c, R_i), \qquad
        \text{mean}_m = \frac{1}{N}\sum_i \frac{1}{K_i}\sum_{c \in C_i} s_m(c, R_i)

    For BLEU and METEOR these averages of per-caption scores are not what COCO caption tables
    report, even for one candidate per input: those use corpus BLEU and METEOR's aggregate,
    which ``corpus`` gives (sentence BLEU of short captions is low: pycocoevalcap's smoothing
    gives an exact 2-word match BLEU-4 0.001).

    Args:
        candidates: ``candidates[i][k]``, sample ``k`` generated for input ``i`` (inputs may
            have different numbers of samples).
        references: ``references[i]``, the true captions of input ``i`` (at least one, each
            with at least one word).
        meteor: set ``False`` to skip METEOR (it starts a Java process, a few seconds).

    Returns:
        ``{"best": {metric: value}, "mean": {metric: value}, "corpus": {metric: value},
        "skipped": {metric: reason}}`` with the metrics of :data:`METRICS` that ran
        (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D), as Python floats. ``corpus``: when every
        input has exactly one candidate, pycocoevalcap's corpus-level scores (corpus BLEU,
        METEOR's aggregate; ROUGE-L and CIDEr-D are the mean, as in ``mean``); empty
        otherwise. ``skipped`` always names SPICE; METEOR when it did not run (no Java, or a
        Java that failed: the reason quotes its error, and a RuntimeWarning says it too);
        CIDEr-D for a single input.
    """
    cands = check_caption_sets(candidates, name="candidates")
    refs = check_caption_sets(references, name="references", words=True)
    if len(cands) != len(refs):
        raise ValueError(
            f"candidates has {len(cands)} inputs but references has {len(refs)}; give one "
            f"list of references per input"
        )
    skipped = {"SPICE": _SPICE_UNAVAILABLE}
    scorers: list[Scorer] = [_bleu, _rouge]
    if len(cands) > 1:
        scorers.append(_cider)
    else:
        skipped["CIDEr-D"] = _CIDER_NEEDS_INPUTS
    scores: dict[str, np.ndarray] = {}
    corpus: dict[str, float] = {}
    for scorer in scorers:
        tables, totals = _score(scorer, cands, refs)
        scores.update(tables)
        corpus.update(totals)

    unasked = "METEOR skipped: not asked for (meteor=False; on the command line, --no-meteor)"
    reason = meteor_unavailable() if meteor else unasked
    if reason is None:
        try:
            with _meteor() as meteor_scorer:
                tables, totals = _score(meteor_scorer, cands, refs)
            scores.update(tables)
            corpus.update(totals)
        except _MeteorFailed as exc:
            # Keep the other metrics; a researcher who has Java expects METEOR, so say it loudly.
            reason = str(exc)
            warnings.warn(reason, RuntimeWarning, stacklevel=2)
    if reason is not None:
        skipped["METEOR"] = reason

    order = [m for m in METRICS if m in scores]
    return {
        "best": {m: float(np.nanmax(scores[m], axis=1).mean()) for m in order},
        "mean": {m: float(np.nanmean(scores[m], axis=1).mean()) for m in order},
        "corpus": {m: float(corpus[m]) for m in order if m in corpus},
        "skipped": skipped,
    }
