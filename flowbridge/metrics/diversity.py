r"""Diversity of the captions generated for one input, averaged over inputs.

For ``captions[i][k]`` (sample ``k`` of input ``i``):

* :func:`div_n` (Div-1, Div-2): distinct n-grams among an input's captions / their total
  number of words;
* :func:`unique_fraction`: distinct captions / captions, per input;
* :func:`novel_fraction`: captions not among the training captions, over all samples;
* :func:`mbleu` (mBLEU-4): BLEU of each caption against the input's other captions (lower is
  more diverse);
* :func:`self_cider`: self-CIDEr diversity (Wang & Chan 2019).

All but :func:`novel_fraction` return the mean over inputs; 0 means the K samples of every
input are the same, higher values mean more diverse samples (except mBLEU: higher = more alike).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ._pycoco import import_scorer
from .text import check_caption_sets, ngrams

__all__ = ["div_n", "unique_fraction", "novel_fraction", "mbleu", "self_cider", "cider_kernel"]


def div_n(captions: Sequence[Sequence[str]], n: int = 1) -> float:
    r"""Div-n: :math:`\frac{1}{N}\sum_i |\text{distinct } n\text{-grams of } C_i| /
    |\text{words of } C_i|`, where n-grams do not cross caption boundaries.

    K identical captions of ``w`` words score :math:`(w - n + 1) / (K w)`.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
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


def novel_fraction(captions: Sequence[Sequence[str]], training: Sequence[str]) -> float:
    """Fraction of all generated captions that are not among the ``training`` captions
    (compared after :func:`~flowbridge.metrics.tokenize`)."""
    seen = set(check_caption_sets([training], name="training", min_size=0)[0])
    samples = [c for row in check_caption_sets(captions) for c in row]
    return sum(c not in seen for c in samples) / len(samples)


def mbleu(captions: Sequence[Sequence[str]], n: int = 4) -> float:
    """mBLEU-n: BLEU-n of each caption against the other captions of its input.

    For each sample index ``k``, pycocoevalcap's corpus BLEU scores caption ``k`` of every
    input against that input's other captions; the result is the mean over ``k`` (as in
    the diverse-captioning literature). K identical captions score 1.
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


def _document_frequency(documents: Sequence[Sequence[str]], n: int) -> Counter:
    df: Counter = Counter()
    for doc in documents:
        df.update(
            {g for caption in doc for k in range(1, n + 1) for g in ngrams(caption.split(), k)}
        )
    return df


def _tfidf(
    caption: str, df: Counter, log_docs: float, n: int
) -> tuple[list[dict], np.ndarray, int]:
    """CIDEr's tf-idf vectors per n-gram order, their norms and the caption's length (as
    pycocoevalcap's ``counts2vec`` computes it, which counts bigrams)."""
    words = caption.split()
    vec: list[dict] = [{} for _ in range(n)]
    for k in range(1, n + 1):
        for gram, tf in Counter(ngrams(words, k)).items():
            vec[k - 1][gram] = tf * (log_docs - math.log(max(1.0, df[gram])))
    norm = np.array([math.sqrt(sum(v * v for v in order.values())) for order in vec])
    return vec, norm, max(len(words) - 1, 0)


def cider_kernel(
    samples: Sequence[str], df: Counter, num_docs: int, n: int = 4, sigma: float = 6.0
) -> np.ndarray:
    r"""CIDEr-D similarity of every pair of captions, ``[K, K]`` (row: candidate, column:
    reference), on the 0-1 scale (pycocoevalcap's CIDEr-D with one reference, divided by 10).

    .. math::

        K_{ij} = \frac{1}{n}\sum_{m=1}^{n}
            \frac{\sum_g \min(v^m_i(g), v^m_j(g))\, v^m_j(g)}{\|v^m_i\|\,\|v^m_j\|}
            \, e^{-(\ell_i - \ell_j)^2 / 2\sigma^2}

    with :math:`v^m` the tf-idf vectors of m-grams (idf from ``df`` over ``num_docs``
    documents) and :math:`\ell` the lengths.
    """
    log_docs = math.log(float(num_docs))
    vectors = [_tfidf(caption, df, log_docs, n) for caption in samples]
    kernel = np.zeros((len(samples), len(samples)))
    for i, (vi, ni, li) in enumerate(vectors):
        for j, (vj, nj, lj) in enumerate(vectors):
            penalty = math.exp(-((li - lj) ** 2) / (2 * sigma**2))
            total = 0.0
            for m in range(n):
                dot = sum(min(w, vj[m].get(g, 0.0)) * vj[m].get(g, 0.0) for g, w in vi[m].items())
                if ni[m] and nj[m]:
                    dot /= ni[m] * nj[m]
                total += dot * penalty
            kernel[i, j] = total / n
    return kernel


def self_cider(
    captions: Sequence[Sequence[str]], references: Sequence[Sequence[str]] | None = None
) -> float:
    r"""Self-CIDEr diversity (Wang & Chan, "Describing like humans", CVPR 2019), mean over
    inputs.

    For an input's K captions, :math:`K` = the symmetrised CIDEr-D kernel
    (:func:`cider_kernel`) with singular values :math:`\sigma_1 \ge \dots \ge \sigma_K`:

    .. math::

        \text{div} = -\log_K \frac{\sqrt{\sigma_1}}{\sum_k \sqrt{\sigma_k}} \in [0, 1]

    0 when all captions are the same (rank 1), 1 when no two share an n-gram.

    Args:
        captions: ``captions[i][k]``, at least 2 samples per input.
        references: the documents giving CIDEr's n-gram document frequencies, one list of
            captions per image (the paper uses the dataset's reference captions). Default:
            the generated caption sets themselves. Needs at least 2 documents.

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
    df = _document_frequency(docs, 4)
    scores = []
    for samples in sets:
        kernel = cider_kernel(samples, df, len(docs))
        sigma = np.linalg.svd((kernel + kernel.T) / 2, compute_uv=False)
        # Round-off leaves singular values of ~1e-17 where the kernel is rank-deficient; their
        # square roots (~1e-9) would read as a trace of diversity.
        roots = np.sqrt(np.where(sigma > 1e-12 * sigma.max(), sigma, 0.0))
        # An all-zero kernel (every n-gram in every document) carries no similarity at all.
        ratio = roots.max() / roots.sum() if roots.sum() > 0 else 1.0
        scores.append(-math.log(ratio) / math.log(len(samples)))
    return float(np.mean(scores))
