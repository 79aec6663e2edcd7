r"""CIDEr-D similarity between many candidates and many single reference captions, fast.

Consensus re-ranking scores each of K = 100 candidates against the ~300 reference captions
of 60 neighbouring training images, for each of 5,000 test images: 150 million pairs, far too
many for a pair-by-pair loop (:func:`flowbridge.metrics.diversity.cider_kernel`). This module
computes the same similarity with matrix products.

For m-gram order :math:`m`, candidate :math:`c` and reference :math:`r` with term frequencies
:math:`t_c(g), t_r(g)` and idf :math:`w(g) = \log N - \log\max(1, \mathrm{df}(g)) \ge 0`, the
clipped CIDEr-D numerator is

.. math::

    \sum_g \min(t_c w, t_r w)\, t_r w = \sum_g w^2 \min(t_c, t_r)\, t_r
        = \sum_{t \ge 1} \sum_g [t_c \ge t] \cdot [t_r \ge t]\, t_r w^2,

one matrix product per threshold :math:`t` (term frequencies in a caption rarely exceed 2).
Dividing by the tf-idf norms, multiplying by the length penalty
:math:`e^{-(\ell_c - \ell_r)^2 / 2\sigma^2}` and averaging over :math:`m = 1..4` gives
pycocoevalcap's CIDEr-D of one candidate against one reference, divided by 10 (the scale of
``cider_kernel``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import numpy as np

from flowbridge.metrics import ngrams, tokenize

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
            image); consensus re-ranking uses the training references.
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

    def idf(self, gram: tuple[str, ...]) -> float:
        return self.log_docs - math.log(max(1.0, self.df[gram]))

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
        """CIDEr-D of each candidate against each single reference, ``[C, R]`` (0-1 scale:
        pycocoevalcap's value / 10)."""
        cands = [self._profile(c) for c in candidates]
        refs = [self._profile(r) for r in references]
        total = np.zeros((len(cands), len(refs)))
        for m in range(self.n):
            # Only m-grams some candidate has can contribute to a numerator.
            index: dict[tuple[str, ...], int] = {}
            for p in cands:
                for gram in p.counts[m]:
                    index.setdefault(gram, len(index))
            if not index:
                continue
            weight = np.array([self.idf(g) ** 2 for g in index])
            cand_tf = np.zeros((len(cands), len(index)))
            ref_tf = np.zeros((len(refs), len(index)))
            for row, p in zip(cand_tf, cands, strict=True):
                for gram, tf in p.counts[m].items():
                    row[index[gram]] = tf
            for row, p in zip(ref_tf, refs, strict=True):
                for gram, tf in p.counts[m].items():
                    if gram in index:
                        row[index[gram]] = tf
            numerator = np.zeros_like(total)
            for t in range(1, int(cand_tf.max()) + 1):
                numerator += (cand_tf >= t) @ ((ref_tf >= t) * ref_tf * weight).T
            norms = np.outer([p.norms[m] for p in cands], [p.norms[m] for p in refs])
            total += np.divide(numerator, norms, out=numerator, where=norms > 0)
        lengths_c = np.array([p.length for p in cands], dtype=float)
        lengths_r = np.array([p.length for p in refs], dtype=float)
        penalty = np.exp(-(np.subtract.outer(lengths_c, lengths_r) ** 2) / (2 * self.sigma**2))
        return total * penalty / self.n
