r"""CIDEr-D similarity between many candidates and many single reference captions, fast.

The similarity of candidate :math:`c` to reference :math:`r` is pycocoevalcap's CIDEr-D of
:math:`c` against the one reference :math:`r`, divided by 10 (a 0-1 scale):

.. math::

    S_{cr} = \frac{1}{n}\sum_{m=1}^{n}
        \frac{\sum_g \min(v^m_c(g), v^m_r(g))\, v^m_r(g)}{\|v^m_c\|\,\|v^m_r\|}
        \, e^{-(\ell_c - \ell_r)^2 / 2\sigma^2},

with :math:`v^m(g) = t(g)\, w(g)` the tf-idf vector of a caption's m-grams (term frequency
:math:`t`, idf :math:`w(g) = \log N - \log\max(1, \mathrm{df}(g)) \ge 0` from the document
frequencies of a corpus of :math:`N` documents), :math:`\ell` a caption's length (its bigram
count, as pycocoevalcap counts it), ``n = 4`` and ``sigma = 6``; an order in which either
caption has a zero norm adds 0.

Self-CIDEr (:func:`~flowbridge.metrics.self_cider`) needs it for every pair of an input's
samples; the COCO plugin's consensus re-ranking scores each of K = 100 candidates against the
~300 reference captions of 60 neighbouring training images, for each of 5,000 test images:
150 million pairs, far too many for a pair-by-pair loop. Because :math:`w \ge 0`, the clipped
numerator is

.. math::

    \sum_g \min(t_c w, t_r w)\, t_r w = \sum_g w^2 \min(t_c, t_r)\, t_r
        = \sum_{t \ge 1} \sum_g [t_c \ge t] \cdot [t_r \ge t]\, t_r w^2,

one sparse product per threshold :math:`t` (term frequencies in a caption rarely exceed 2),
so all pairs are computed at once with array operations. The tests check it against
pycocoevalcap and against the formula above computed pair by pair.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from .text import ngrams, tokenize

__all__ = ["CiderD"]


class _Profile:
    """One caption's m-gram term frequencies, tf-idf norms and length (bigram count, as
    pycocoevalcap counts it)."""

    __slots__ = ("counts", "norms", "length")

    def __init__(self, counts: list[Counter], norms: np.ndarray, length: int):
        self.counts, self.norms, self.length = counts, norms, length


class CiderD:
    """CIDEr-D similarities with document frequencies fixed by a corpus.

    Args:
        documents: the corpus, one list of captions per image (an m-gram counts once per
            image), e.g. a dataset's reference captions.
        n: highest m-gram order (4, as CIDEr-D).
        sigma: the length penalty's width (6, as CIDEr-D).

    Example:
        >>> cider = CiderD(training_references)
        >>> cider.similarity(["a dog runs"], ["a dog is running", "a cat"]).shape
        (1, 2)
    """

    def __init__(self, documents: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0):
        if isinstance(documents, str) or len(documents) < 2:
            raise ValueError(
                "CiderD needs a corpus of at least 2 documents (lists of captions) for its "
                "document frequencies; with one, every idf is 0"
            )
        self.n, self.sigma = n, sigma
        self.df: Counter = Counter()
        for document in documents:
            if isinstance(document, str):
                raise TypeError("each CiderD document must be a list of captions, got a str")
            grams = set()
            for caption in document:
                words = tokenize(caption)
                grams.update(g for m in range(1, n + 1) for g in ngrams(words, m))
            self.df.update(grams)
        self.log_docs = math.log(len(documents))
        self._profiles: dict[str, _Profile] = {}
        self._idf: dict[tuple[str, ...], float] = {}

    def idf(self, gram: tuple[str, ...]) -> float:
        r""":math:`\log N - \log \max(1, \mathrm{df}(g))` of an m-gram."""
        value = self._idf.get(gram)
        if value is None:
            value = self._idf[gram] = self.log_docs - math.log(max(1.0, self.df[gram]))
        return value

    def _profile(self, caption: str) -> _Profile:
        # Training references recur across queries: each is counted once.
        profile = self._profiles.get(caption)
        if profile is None:
            words = tokenize(caption)
            counts = [Counter(ngrams(words, m)) for m in range(1, self.n + 1)]
            norms = np.array(
                [math.sqrt(sum((t * self.idf(g)) ** 2 for g, t in c.items())) for c in counts]
            )
            profile = _Profile(counts, norms, max(len(words) - 1, 0))
            self._profiles[caption] = profile
        return profile

    def similarity(self, candidates: Sequence[str], references: Sequence[str]) -> np.ndarray:
        """CIDEr-D of each candidate against each single reference, ``[C, R]``: :math:`S_{cr}`
        of :mod:`flowbridge.metrics.cider` (0-1 scale: pycocoevalcap's value / 10)."""
        cands = [self._profile(c) for c in candidates]
        refs = [self._profile(r) for r in references]
        total = np.zeros((len(cands), len(refs)))
        for m in range(self.n):
            # The candidates' m-grams as sparse entries (row, column, term frequency), rows in
            # order; only m-grams some candidate has can contribute to a numerator.
            index: dict[tuple[str, ...], int] = {}
            rows, columns, frequencies = [], [], []
            for row, p in enumerate(cands):
                for gram, tf in p.counts[m].items():
                    rows.append(row)
                    columns.append(index.setdefault(gram, len(index)))
                    frequencies.append(tf)
            if not index:
                continue
            ref_tf = np.zeros((len(index), len(refs)))  # [G, R]
            for column, p in enumerate(refs):
                for gram, tf in p.counts[m].items():
                    if gram in index:
                        ref_tf[index[gram], column] = tf
            weight = np.array([self.idf(g) for g in index])[:, None] ** 2
            rows_, columns_, frequencies_ = map(np.array, (rows, columns, frequencies))
            numerator = np.zeros_like(total)
            for t in range(1, int(frequencies_.max()) + 1):
                # A candidate's row sums the weighted reference columns of its m-grams seen at
                # least t times: a segment sum, far cheaper than a dense product (a caption
                # has ~10 of the hundreds of m-grams).
                keep = frequencies_ >= t
                kept_rows = rows_[keep]
                terms = ((ref_tf >= t) * ref_tf * weight)[columns_[keep]]  # [entries, R]
                starts = np.flatnonzero(np.r_[True, kept_rows[1:] != kept_rows[:-1]])
                numerator[kept_rows[starts]] += np.add.reduceat(terms, starts, axis=0)
            norms = np.outer([p.norms[m] for p in cands], [p.norms[m] for p in refs])
            total += np.divide(numerator, norms, out=numerator, where=norms > 0)
        lengths_c = np.array([p.length for p in cands], dtype=float)
        lengths_r = np.array([p.length for p in refs], dtype=float)
        penalty = np.exp(-(np.subtract.outer(lengths_c, lengths_r) ** 2) / (2 * self.sigma**2))
        return total * penalty / self.n
