r"""Diversity of the captions generated for one input, averaged over inputs.

For ``captions[i][k]`` (sample ``k`` of input ``i``):

* :func:`div_n` (Div-1, Div-2): distinct n-grams among an input's captions / their total
  number of words;
* :func:`unique_fraction`: distinct captions / captions, per input;
* :func:`novel_fraction`: captions not among the training captions, over all samples;
* :func:`mbleu` (mBLEU-4): BLEU of each caption against the input's other captions (lower is
  more diverse);
* :func:`self_cider`: self-CIDEr diversity (Wang & Chan 2019);
* :func:`caption_diversity`: all of them at once, with the training captions.

Each metric but :func:`novel_fraction` is the mean over inputs; higher values mean more diverse
samples, except mBLEU (higher = more alike). What K identical samples of ``w`` words score
differs per metric: self-CIDEr 0; unique 1/K; Div-n :math:`\max(w - n + 1, 0) / (K w)`;
mBLEU-4 1 if ``w`` >= 4, but nearly 0 for shorter captions (see :func:`mbleu`). Only
self-CIDEr reads 0 for "all the same".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import numpy as np

from ._pycoco import import_scorer
from .cider import CiderD
from .text import check_caption_sets, check_captions, ngrams

__all__ = [
    "div_n",
    "unique_fraction",
    "novel_fraction",
    "mbleu",
    "self_cider",
    "caption_diversity",
]


def div_n(captions: Sequence[Sequence[str]], n: int = 1) -> float:
    r"""Div-n: :math:`\frac{1}{N}\sum_i |\text{distinct } n\text{-grams of } C_i| /
    |\text{words of } C_i|`, where n-grams do not cross caption boundaries.

    K identical captions of ``w`` words score :math:`\max(w - n + 1, 0) / (K w)`, all
    different n-grams 1, and an input with no words at all 0.
    """
    # numbers.Integral takes numpy's integers too; bool is an Integral but never meant here.
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    n = int(n)
    scores = []
    for samples in check_caption_sets(captions):
        words = [caption.split() for caption in samples]
        total = sum(map(len, words))
        distinct = {gram for tokens in words for gram in ngrams(tokens, n)}
        scores.append(len(distinct) / total if total else 0.0)
    return float(np.mean(scores))


def unique_fraction(captions: Sequence[Sequence[str]]) -> float:
    """Distinct captions among an input's samples / number of samples, averaged over inputs
    (K identical captions: 1/K; all different: 1)."""
    sets = check_caption_sets(captions)
    return float(np.mean([len(set(samples)) / len(samples) for samples in sets]))


def novel_fraction(captions: Sequence[Sequence[str]], training: Iterable[str]) -> float:
    """Fraction of all generated captions that are not among the ``training`` captions
    (compared after :func:`~flowbridge.metrics.tokenize`).

    Args:
        captions: ``captions[i][k]``, sample ``k`` of input ``i``.
        training: the training captions, a flat collection of str (a list, a set, a
            generator); per-image lists are refused (flatten them first).
    """
    seen = set(check_captions(training, name="training"))
    samples = [c for row in check_caption_sets(captions) for c in row]
    return sum(c not in seen for c in samples) / len(samples)


def mbleu(captions: Sequence[Sequence[str]], n: int = 4) -> float:
    """mBLEU-n: BLEU-n of each caption against the other captions of its input.

    For each sample index ``k``, pycocoevalcap's corpus BLEU scores caption ``k`` of every
    input against that input's other captions; the result is the mean over ``k`` (Shetty et
    al. 2017, "Speaking the same language", and the diverse-captioning literature since).

    K identical captions of ``w >= n`` words score 1. Shorter ones have no n-grams of order
    ``n``, and pycocoevalcap's smoothing (precision :math:`10^{-15} / 10^{-9}` for an order
    with no n-gram) then gives :math:`10^{-6 (n - w) / n}`: 0.03 for 3-word and 0.001 for
    2-word identical captions with ``n = 4``, which reads as very diverse. This is the
    literature's definition, kept as is: for short captions, read mBLEU-4 beside Div-n and
    the unique fraction, or use a smaller ``n``. Captions with no words score 0.
    """
    if n not in (1, 2, 3, 4):
        raise ValueError(f"n must be 1, 2, 3 or 4 (BLEU-1..4), got {n!r}")
    sets = check_caption_sets(captions, min_size=2)
    bleu = import_scorer("bleu.bleu").Bleu(4)
    scores = []
    for k in range(max(map(len, sets))):
        rows = [i for i, samples in enumerate(sets) if len(samples) > k]
        res = {i: [sets[i][k]] for i in rows}
        gts = {i: sets[i][:k] + sets[i][k + 1 :] for i in rows}
        corpus, _ = bleu.compute_score(gts, res, verbose=0)
        scores.append(corpus[n - 1])
    return float(np.mean(scores))


def self_cider(
    captions: Sequence[Sequence[str]], references: Sequence[Sequence[str]] | None = None
) -> float:
    r"""Self-CIDEr diversity (Wang & Chan, "Describing like humans", CVPR 2019), mean over
    inputs.

    For an input's K captions, :math:`K` = the symmetrised matrix of their CIDEr-D
    similarities to each other (:class:`~flowbridge.metrics.CiderD`, document frequencies
    from ``references``), with singular values :math:`\sigma_1 \ge \dots \ge \sigma_K`:

    .. math::

        \text{div} = -\log_K \frac{\sqrt{\sigma_1}}{\sum_k \sqrt{\sigma_k}} \in [0, 1]

    Extremes, for an input's captions:

    * 0 when all are the same (the kernel has rank 1);
    * 1 when no two share an n-gram (of non-zero idf) and all are equally similar to
      themselves (the kernel is then a multiple of the identity). A caption's similarity
      with itself is the number of n-gram orders, of 4, in which it has an n-gram of
      non-zero idf, over 4: 1 for a caption of at least 4 words of rare enough n-grams, 1/4
      for a single word. Captions with no shared n-gram but of different lengths, some
      below 4 words, therefore score less than 1 (1, 2 and 6 words: 0.72);
    * 0 as well when the kernel is all zero: every n-gram of the captions is in every
      document, so every idf is 0 and nothing is measured.

    Args:
        captions: ``captions[i][k]``, at least 2 samples per input.
        references: the documents giving CIDEr's n-gram document frequencies, one list of
            captions per image (the paper uses the dataset's reference captions). Default:
            the generated caption sets themselves, one document per input; then an n-gram
            that the samples of every input use has idf 0 and counts for nothing, and inputs
            sampled with the same words score 0 (``[["red car", "blue bike"], ["blue bike",
            "red car"]]`` -> 0). Needs at least 2 documents.

    References:
        Q. Wang, A. B. Chan. Describing like humans: on diversity in image captioning. CVPR 2019.
    """
    sets = check_caption_sets(captions, min_size=2)
    docs = sets if references is None else check_caption_sets(references, name="references")
    if len(docs) < 2:
        raise ValueError(
            "self-CIDEr needs at least 2 documents for its n-gram document frequencies "
            "(with one, every idf is 0); give captions of several inputs or pass references"
        )
    # CiderD takes the captions as given: it splits them into words (tokenize) as the checks did.
    cider = CiderD(captions if references is None else references)
    scores = []
    for samples in captions:
        kernel = cider.similarity(samples, samples)
        sigma = np.linalg.svd((kernel + kernel.T) / 2, compute_uv=False)
        # Round-off leaves singular values of ~1e-17 where the kernel is rank-deficient; their
        # square roots (~1e-9) would read as a trace of diversity.
        roots = np.sqrt(np.where(sigma > 1e-12 * sigma.max(), sigma, 0.0))
        # An all-zero kernel (every n-gram in every document) carries no similarity at all.
        ratio = roots.max() / roots.sum() if roots.sum() > 0 else 1.0
        scores.append(-math.log(ratio) / math.log(len(samples)))
    return float(np.mean(scores))


def caption_diversity(
    captions: Sequence[Sequence[str]], training: Sequence[Sequence[str]]
) -> dict[str, float]:
    r"""The captioning literature's diversity metrics of the captions ``C_i`` sampled for
    each input ``i`` (``K_i`` of them, ``N`` inputs), against the training captions ``T``:

    * ``div_1``, ``div_2`` (:func:`div_n`): :math:`\frac{1}{N}\sum_i |\text{distinct }
      n\text{-grams of } C_i| / |\text{words of } C_i|`;
    * ``mbleu_4`` (:func:`mbleu`): :math:`\frac{1}{K}\sum_k \text{BLEU-4}` of every input's
      caption ``k`` against its other captions (corpus BLEU over inputs; lower is more
      diverse);
    * ``unique`` (:func:`unique_fraction`): :math:`\frac{1}{N}\sum_i |\text{set}(C_i)| / K_i`;
    * ``novel`` (:func:`novel_fraction`): :math:`|\{c \in C_i : c \notin T \cup \{""\}\}| /
      \sum_i K_i`, the captions that are neither a training caption nor empty;
    * ``self_cider`` (:func:`self_cider`): :math:`\frac{1}{N}\sum_i -\log_{K_i}
      (\sqrt{\sigma_1} / \sum_k \sqrt{\sigma_k})` of the CIDEr-D similarities among
      :math:`C_i`, document frequencies from ``training``, one document per image (Wang &
      Chan take them from the dataset's references).

    A caption with no words (a decoder that stopped at once) is no new sentence, so it counts
    as not novel. mBLEU-4 and self-CIDEr compare an input's captions with each other: with
    one caption per input (K = 1) there is nothing to compare, and they are left out (a mix
    of one and several captions per input is refused, as by those metrics).

    Args:
        captions: ``captions[i][k]``, sample ``k`` of input ``i``.
        training: the training captions, one list per image (at least 2 images).
    """
    # Checked first: flattening a flat list of str below would give its letters.
    check_caption_sets(training, name="training")
    scores = {"div_1": div_n(captions, 1), "div_2": div_n(captions, 2)}
    several = any(len(samples) > 1 for samples in captions)  # div_n checked captions
    # The keys in one order whether or not the pairwise metrics are there.
    if several:
        scores["mbleu_4"] = mbleu(captions, 4)
    scores["unique"] = unique_fraction(captions)
    scores["novel"] = novel_fraction(captions, [*(c for row in training for c in row), ""])
    if several:
        scores["self_cider"] = self_cider(captions, training)
    return scores
