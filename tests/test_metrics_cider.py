"""CiderD, the one CIDEr-D similarity of flowbridge (self-CIDEr, COCO consensus re-ranking),
against pycocoevalcap, against the formula computed pair by pair, and on hand-made captions."""

from __future__ import annotations

import math
import random
from collections import Counter

import numpy as np
import pytest
from pycocoevalcap.cider.cider import Cider

from flowbridge.metrics import CiderD, tokenize
from flowbridge.metrics.text import ngrams

WORDS = ["a", "the", "dog", "cat", "red", "blue", "runs", "sits", "on", "mat", "grass", "big"]


def _captions(rng: random.Random, n: int) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 10))) for _ in range(n)]


@pytest.fixture
def corpus() -> list[list[str]]:
    rng = random.Random(0)
    return [_captions(rng, 5) for _ in range(40)]


def reference_cider(
    candidates: list[str], references: list[str], documents: list[list[str]], n: int = 4
) -> np.ndarray:
    r"""The oracle: :math:`S_{cr}` of :mod:`flowbridge.metrics.cider` written as it reads, one
    pair and one m-gram at a time (no threshold sums, no arrays)."""
    df: Counter = Counter()
    for document in documents:
        df.update({g for c in document for m in range(1, n + 1) for g in ngrams(tokenize(c), m)})

    def tfidf(caption: str) -> tuple[list[dict], list[float], int]:
        words = tokenize(caption)
        vectors = [
            {
                g: tf * (math.log(len(documents)) - math.log(max(1.0, df[g])))
                for g, tf in Counter(ngrams(words, m)).items()
            }
            for m in range(1, n + 1)
        ]
        norms = [math.sqrt(sum(v * v for v in vector.values())) for vector in vectors]
        return vectors, norms, max(len(words) - 1, 0)  # length: bigrams, as pycocoevalcap

    out = np.zeros((len(candidates), len(references)))
    for i, (vc, nc, lc) in enumerate(map(tfidf, candidates)):
        for j, (vr, nr, lr) in enumerate(map(tfidf, references)):
            total = 0.0
            for m in range(n):
                if nc[m] and nr[m]:
                    clipped = sum(
                        min(w, vr[m].get(g, 0.0)) * vr[m].get(g, 0.0) for g, w in vc[m].items()
                    )
                    total += clipped / (nc[m] * nr[m])
            out[i, j] = total / n * math.exp(-((lc - lr) ** 2) / (2 * 6.0**2))
    return out


def test_the_reference_matches_pycocoevalcap():
    hyps = ["a red circle on the left", "a big blue box", "something small", "a red circle"]
    refs = ["a small red circle on the left", "a large blue square", "a small shape", "red"]
    _, expected = Cider().compute_score(
        {i: [r] for i, r in enumerate(refs)}, {i: [h] for i, h in enumerate(hyps)}
    )
    documents = [[r] for r in refs]
    got = [10 * reference_cider([h], [r], documents)[0, 0] for h, r in zip(hyps, refs, strict=True)]
    assert got == pytest.approx(list(expected), rel=1e-9)


def test_cider_matches_pycocoevalcap(corpus):
    # pycocoevalcap's document frequencies come from the references it scores against: give
    # it the corpus itself, one candidate per document, and average ours over the references.
    rng = random.Random(1)
    candidates = {i: _captions(rng, 1) for i in range(len(corpus))}
    candidates[0] = [corpus[0][2]]  # an exact match, the largest score
    _, expected = Cider().compute_score(dict(enumerate(corpus)), candidates)
    cider = CiderD(corpus)
    ours = [10 * cider.similarity(candidates[i], corpus[i]).mean() for i in range(len(corpus))]
    np.testing.assert_allclose(ours, expected, rtol=1e-10, atol=1e-12)
    assert max(expected) > 1


def test_cider_matches_the_reference_with_repeated_words(corpus):
    rng = random.Random(2)
    candidates = _captions(rng, 6) + ["a a a dog dog", "RED. Dog!", ""]
    references = _captions(rng, 9) + ["a a dog a dog", "red dog"]
    ours = CiderD(corpus).similarity(candidates, references)
    expected = reference_cider(candidates, references, corpus)
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)
    # Case and punctuation do not count: "red dog" twice, equal in its 1- and 2-grams, and it
    # has no 3- or 4-grams, so 2 of the 4 orders score 1.
    assert ours[-2, -1] == pytest.approx(0.5)


def test_cider_by_hand():
    # Two documents, no n-gram in both: every idf is log 2. A caption of 4 words against
    # itself scores 1 in each order; against a caption with no shared n-gram, 0.
    cider = CiderD([["a b c d"], ["e f g h"]])
    np.testing.assert_allclose(cider.similarity(["a b c d"], ["A b c d.", "e f g h"]), [[1, 0]])
    # "a b" shares "a" and "b" of "a b c d" (and nothing of higher order): unigram cosine
    # 2 / (sqrt 2 * 2), bigram 1 / (1 * sqrt 3), lengths 1 and 3 penalised by exp(-4 / 72).
    unigram, bigram = 2 / (math.sqrt(2) * 2), 1 / math.sqrt(3)
    expected = (unigram + bigram) / 4 * math.exp(-4 / 72)
    assert cider.similarity(["a b"], ["a b c d"])[0, 0] == pytest.approx(expected, rel=1e-12)
    # Words in every document weigh nothing (idf 0): nothing left to compare.
    assert CiderD([["a dog"], ["a cat"]]).similarity(["a"], ["a"]).tolist() == [[0.0]]


def test_cider_rejects_a_corpus_of_one():
    with pytest.raises(ValueError, match="at least 2 documents"):
        CiderD([["a dog"]])
    with pytest.raises(TypeError, match="list of captions, got a str"):
        CiderD(["a dog", "a cat"])
