"""Diversity metrics on hand-made caption sets whose values are worked out by hand."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from flowbridge.metrics import (
    CiderD,
    caption_diversity,
    div_n,
    mbleu,
    novel_fraction,
    self_cider,
    tokenize,
    unique_fraction,
)

SAME = [["a red circle"] * 4]
APART = [["one two three four", "five six seven eight", "nine ten eleven twelve"]]


def test_tokenize_lowercases_and_drops_punctuation():
    assert tokenize("A dog's  ball, RED.") == ["a", "dog's", "ball", "red"]
    with pytest.raises(TypeError, match="must be a str"):
        tokenize(3)


def test_div_n_identical_captions_is_minimal():
    # 3 distinct words, 2 distinct bigrams, among 4 x 3 = 12 words
    assert div_n(SAME, 1) == pytest.approx(3 / 12)
    assert div_n(SAME, 2) == pytest.approx(2 / 12)


def test_div_n_by_hand():
    assert div_n([["a b", "c d"]], 1) == pytest.approx(1.0)
    assert div_n([["a b", "c d"]], 2) == pytest.approx(2 / 4)
    # {a, b, c, d} and {ab, bc, bd} among 6 words; bigrams do not cross captions
    assert div_n([["a b c", "a b d"]], 1) == pytest.approx(4 / 6)
    assert div_n([["a b c", "a b d"]], 2) == pytest.approx(3 / 6)
    # the mean over inputs
    assert div_n([["a b", "c d"], ["a b c", "a b d"]], 1) == pytest.approx((1 + 4 / 6) / 2)


def test_unique_and_novel_fractions():
    assert unique_fraction(SAME) == pytest.approx(1 / 4)
    assert unique_fraction(APART) == 1.0
    # case and punctuation do not make a caption new
    assert unique_fraction([["x", "x", "y"], ["A red circle.", "a RED circle"]]) == pytest.approx(
        (2 / 3 + 1 / 2) / 2
    )
    assert novel_fraction([["A red circle.", "a blue box"]], ["a red circle"]) == 0.5
    assert novel_fraction(SAME, []) == 1.0


def test_mbleu_identical_is_one_and_by_hand():
    # (three-word captions have no 4-gram: pycocoevalcap's BLEU-4 of them is ~0)
    assert mbleu([["a small red circle on the left"] * 3]) == pytest.approx(1.0, abs=1e-6)
    # Each caption against the other: unigram 5/6, bigram 3/5, trigram 2/4, 4-gram 1/3 matches,
    # equal lengths (no brevity penalty), in both directions.
    pair = [["the cat sat on the mat", "the cat sat on a mat"]]
    assert mbleu(pair) == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** (1 / 4), rel=1e-6)
    assert mbleu(pair, n=1) == pytest.approx(5 / 6, rel=1e-6)
    assert mbleu(APART) == pytest.approx(0.0, abs=1e-6)


def test_self_cider_extremes():
    other = [["b c d e"] * 3]
    assert self_cider(SAME + other) == pytest.approx(0.0, abs=1e-9)
    # No shared n-gram and 4 words each: the kernel is the identity, all singular values equal.
    assert self_cider(APART + other) == pytest.approx((1.0 + 0.0) / 2, abs=1e-9)


def test_self_cider_two_captions_closed_form():
    sets = [["a red circle on the left", "a red square on the left"], ["x y z w"] * 2]
    kernel = CiderD(sets).similarity(sets[0], sets[0])
    c = (kernel[0, 1] + kernel[1, 0]) / 2
    assert kernel[0, 0] == pytest.approx(1.0) and 0 < c < 1
    # singular values of [[1, c], [c, 1]] are 1 + c and 1 - c
    roots = math.sqrt(1 + c), math.sqrt(1 - c)
    expected = -math.log(roots[0] / sum(roots)) / math.log(2)
    assert self_cider(sets) == pytest.approx(expected / 2, rel=1e-9)


def test_self_cider_grows_with_diversity():
    base = ["a red circle on the left", "a blue square at the top", "a small green triangle"]
    low = [[base[0], base[0], base[1]]]
    high = [base]
    refs = [[b] for b in base] + [["something else entirely"]]
    assert self_cider(low, references=refs) < self_cider(high, references=refs)


def test_caption_diversity_by_hand():
    captions = [
        ["a red circle", "a big disk", "a red circle", "a large circle on the left"],
        ["a red circle"] * 4,
    ]
    # Two training images' captions: "a big disk" and "a red circle" are not novel.
    training = [["a big disk", "a small square"], ["a red circle"]]
    got = caption_diversity(captions, training)
    assert list(got) == ["div_1", "div_2", "mbleu_4", "unique", "novel", "self_cider"]
    # 9 distinct words and 9 distinct bigrams among 15 words; 3 and 2 among 12
    assert got["div_1"] == pytest.approx((9 / 15 + 3 / 12) / 2)
    assert got["div_2"] == pytest.approx((9 / 15 + 2 / 12) / 2)
    assert got["unique"] == (3 / 4 + 1 / 4) / 2
    # 6 of the 8 captions are "a red circle" and one "a big disk": one is novel.
    assert got["novel"] == 1 / 8
    # mBLEU-4 and self-CIDEr as tested above, self-CIDEr's idf from the training captions.
    assert got["mbleu_4"] == mbleu(captions, 4)
    assert got["self_cider"] == self_cider(captions, training) != self_cider(captions)


def test_caption_diversity_of_empty_captions_and_of_one_caption_per_input():
    training = [["a red circle"], ["a blue box"]]
    # Nothing decoded, punctuation only, and a new caption: only the last is novel, where
    # novel_fraction alone (no training caption is empty) counts all three.
    empty = [["", " . ", "a green star"]]
    assert caption_diversity(empty, training)["novel"] == pytest.approx(1 / 3)
    assert novel_fraction(empty, ["a red circle", "a blue box"]) == 1.0
    # One caption per input: nothing to compare it with, so no mBLEU-4 or self-CIDEr.
    one = caption_diversity([["a red circle"], ["a green star"]], training)
    assert one == {"div_1": 1.0, "div_2": pytest.approx(2 / 3), "unique": 1.0, "novel": 0.5}
    with pytest.raises(ValueError, match=r"captions\[0\] has 1 captions"):
        caption_diversity([["a red circle"], ["a green star", "a dog"]], training)
    with pytest.raises(TypeError, match=r"training\[0\] must be a list of caption strings"):
        caption_diversity([["a dog", "a cat"]], ["a dog", "a cat"])


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: div_n("a red circle"), TypeError, "one list of caption strings per input"),
        (lambda: div_n(["a red circle"]), TypeError, r"wrap a single caption as \[caption\]"),
        (lambda: div_n([]), ValueError, "is empty"),
        (lambda: div_n(SAME, 0), ValueError, "positive int"),
        (lambda: div_n([["a", 3]]), TypeError, "must be a str"),
        (lambda: mbleu([["only one"]]), ValueError, "at least 2 per input"),
        (lambda: mbleu(SAME, n=5), ValueError, "BLEU-1..4"),
        (lambda: self_cider(SAME), ValueError, "at least 2 documents"),
    ],
)
def test_bad_input_is_explained(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_missing_pycocoevalcap_is_explained(monkeypatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)
    with pytest.raises(ImportError, match=r"pip install 'flowbridge\[metrics\]'"):
        mbleu(SAME)


def test_identical_samples_score_the_documented_extremes():
    # 5 identical captions of w = 6 words per input: the value each docstring gives
    same = [["a red circle on the left"] * 5, ["two blue squares at the top"] * 5]
    assert div_n(same, 1) == pytest.approx((6 - 1 + 1) / (5 * 6))
    assert div_n(same, 2) == pytest.approx((6 - 2 + 1) / (5 * 6))
    assert unique_fraction(same) == pytest.approx(1 / 5)
    assert self_cider(same) == pytest.approx(0.0, abs=1e-9)
    assert mbleu(same) == pytest.approx(1.0, abs=1e-6)
    # fewer words than the n-gram order: no n-gram at all, 0 (not the negative (w-n+1)/(Kw))
    assert div_n([["dog"] * 5], 3) == 0.0


def test_mbleu_of_identical_captions_shorter_than_n():
    # No n-gram of order n > w: pycocoevalcap's smoothing makes that precision 1e-15 / 1e-9,
    # so identical captions of w < n words score (1e-6) ** ((n - w) / n), as documented.
    assert mbleu([["a red circle"] * 5]) == pytest.approx(1e-6 ** (1 / 4), rel=1e-6)
    assert mbleu([["red circle"] * 5]) == pytest.approx(1e-6 ** (2 / 4), rel=1e-6)
    assert mbleu([["a red circle"] * 5], n=3) == pytest.approx(1.0, abs=1e-6)
    # captions with no words at all (punctuation only) score 0
    assert mbleu([["...", "!!"]]) == 0.0


def test_self_cider_of_disjoint_captions_of_different_lengths():
    other = [["zz yy xx ww"] * 2]  # a second document, so that idf is not 0
    # No shared n-gram: the kernel is diagonal, each caption's similarity with itself being
    # (its n-gram orders, at most 4) / 4: 1/4, 2/4 and 4/4 for 1, 2 and 6 words.
    roots = np.sqrt([1 / 4, 2 / 4, 1.0])
    expected = -math.log(roots.max() / roots.sum()) / math.log(3)
    got = self_cider([["dog", "red car", "one two three four five six"], *other])
    assert got == pytest.approx(expected / 2, rel=1e-9)
    assert expected < 1
    # equal self-similarities (2 words each, or at least 4): 1
    assert self_cider([["red car", "blue bike"], *other]) == pytest.approx(0.5, abs=1e-9)


def test_self_cider_without_references_ignores_words_every_input_uses():
    # The same two words in both inputs' samples: every n-gram has idf 0, the kernels are 0,
    # and the documented reading is 0; the dataset's references give those words weight.
    sets = [["red car", "blue bike"], ["blue bike", "red car"]]
    assert self_cider(sets) == 0.0
    references = [["a red car"], ["a blue bike"], ["a green tree"]]
    assert self_cider(sets, references=references) == pytest.approx(1.0, abs=1e-9)


def test_div_n_takes_any_integer_n():
    assert div_n(APART, np.int64(2)) == div_n(APART, 2)
    for bad in (2.0, True, "2"):
        with pytest.raises(ValueError, match="positive int"):
            div_n(APART, bad)


@pytest.mark.parametrize(
    "training",
    [
        {"a red circle", "a dog"},
        ("a red circle", "a dog"),
        (caption for caption in ["a red circle", "a dog"]),
        {"a red circle": 1, "a dog": 2}.keys(),
        np.array(["a red circle", "a dog"]),
    ],
)
def test_novel_fraction_takes_any_collection_of_training_captions(training):
    assert novel_fraction([["A red circle.", "a blue box"]], training) == 0.5


def test_novel_fraction_explains_training_of_the_wrong_shape():
    with pytest.raises(TypeError, match=r"training is one str; give a collection of captions"):
        novel_fraction([["a dog"]], "a red circle")
    with pytest.raises(TypeError, match=r"item 0 of training is a list .* flat collection"):
        novel_fraction([["a dog"]], [["a red circle"], ["a dog"]])
    with pytest.raises(
        TypeError, match=r"item 1 of training must be a str \(a caption\), got float"
    ):
        novel_fraction([["a dog"]], ["a dog", float("nan")])


def test_an_input_without_words_scores_div_n_zero_and_counts_in_the_mean():
    # The docstring's "an input with no words at all 0", not left out of the mean either.
    assert div_n([["", " . "]], 1) == 0.0
    assert div_n([["a b", "c d"], ["", ""]], 1) == pytest.approx((1.0 + 0.0) / 2)


def test_mbleu_of_inputs_with_different_numbers_of_samples():
    # Slot k scores only the inputs that have a sample k: each slot here scores identical
    # captions, 1, and slot 2 has input 0 alone.
    long = "a small red circle on the left"
    assert mbleu([[long] * 3, [long] * 2]) == pytest.approx(1.0, abs=1e-6)
    assert mbleu([[long] * 2, [long] * 4]) == pytest.approx(1.0, abs=1e-6)
