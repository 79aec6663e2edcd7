"""Best-of-N and mean-of-N caption scores on a case worked out by hand."""

from __future__ import annotations

import shutil
import sys

import pytest

from flowbridge.metrics import caption_scores

# Input 0: one exact candidate, one sharing only "a"; input 1: two exact candidates. The two
# inputs share no word, so every n-gram has CIDEr document frequency 1 of 2 documents.
CANDIDATES = [["a red circle", "a blue square"], ["the big dog", "The big dog."]]
REFERENCES = [["a red circle"], ["the big dog"]]


def test_scores_by_hand():
    result = caption_scores(CANDIDATES, REFERENCES, meteor=False)
    best, mean = result["best"], result["mean"]
    # BLEU-1 of "a blue square" against "a red circle": 1 of 3 words, same length.
    assert best["BLEU-1"] == pytest.approx(1.0, rel=1e-6)
    assert mean["BLEU-1"] == pytest.approx(((1 + 1 / 3) / 2 + 1) / 2, rel=1e-6)
    # ROUGE-L: LCS 1 of 3 words both ways -> F = 1/3.
    assert mean["ROUGE-L"] == pytest.approx(((1 + 1 / 3) / 2 + 1) / 2)
    # CIDEr-D: an exact 3-word match has cosine 1 for 1-, 2- and 3-grams and 0 for 4-grams:
    # 10 * 3/4 = 7.5. "a blue square": unigram cosine 1/3, nothing else: 10 * (1/3)/4.
    assert best["CIDEr-D"] == pytest.approx(7.5)
    assert mean["CIDEr-D"] == pytest.approx(((7.5 + 10 / 12) / 2 + 7.5) / 2)
    assert set(best) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"}
    assert "offline" in result["skipped"]["SPICE"]
    assert "meteor=False" in result["skipped"]["METEOR"]


def test_best_is_at_least_mean_and_order_free():
    result = caption_scores(CANDIDATES, REFERENCES, meteor=False)
    flipped = caption_scores([row[::-1] for row in CANDIDATES], REFERENCES, meteor=False)
    for metric, value in result["best"].items():
        assert value >= result["mean"][metric] - 1e-12
        assert flipped["best"][metric] == pytest.approx(value)
        assert flipped["mean"][metric] == pytest.approx(result["mean"][metric])


def test_uneven_sample_counts():
    result = caption_scores([["a red circle"], ["the big dog", "a cat"]], REFERENCES, meteor=False)
    assert result["best"]["ROUGE-L"] == pytest.approx(1.0)
    assert result["mean"]["ROUGE-L"] == pytest.approx((1 + 1 / 2) / 2)


def _meteor_jar(monkeypatch, name):
    """Point pycocoevalcap's METEOR at a jar of this name beside its module, so a test holds
    whether or not the real jar was installed (trimmed environments leave its 66 MB behind)."""
    from pycocoevalcap.meteor import meteor

    monkeypatch.setattr(meteor, "METEOR_JAR", name)


def test_meteor_without_java_is_skipped_with_a_reason(monkeypatch):
    _meteor_jar(monkeypatch, "meteor.py")  # a file that is there
    monkeypatch.setattr("flowbridge.metrics.captions.shutil.which", lambda name: None)
    result = caption_scores(CANDIDATES, REFERENCES)
    assert "METEOR" not in result["best"]
    assert "no `java` is on PATH" in result["skipped"]["METEOR"]


def test_meteor_without_its_jar_is_skipped_with_a_reason(monkeypatch):
    _meteor_jar(monkeypatch, "no-such-meteor.jar")
    result = caption_scores(CANDIDATES, REFERENCES)
    assert "METEOR" not in result["best"]
    assert "no-such-meteor.jar is missing from" in result["skipped"]["METEOR"]


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs a Java runtime")
def test_meteor_runs_when_java_is_there():
    result = caption_scores(
        [["a red circle on the left", "a blue square", ""], ["the big dog runs"]],
        [["a red circle on the left"], ["the big dog runs"]],
    )
    assert "METEOR" not in result["skipped"]
    # An exact match is penalised only for fragmentation: 1 - 0.5 * (1 chunk / 6 words)^3.
    assert result["best"]["METEOR"] == pytest.approx(1 - 0.5 / 216 / 2 - 0.5 / 64 / 2, abs=0.02)
    assert result["mean"]["METEOR"] < result["best"]["METEOR"]


def test_bad_input_is_explained(monkeypatch):
    with pytest.raises(ValueError, match="one list of references per input"):
        caption_scores(CANDIDATES, REFERENCES[:1])
    with pytest.raises(ValueError, match=r"references\[1\] has 0 captions"):
        caption_scores(CANDIDATES, [["a"], []])
    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)
    with pytest.raises(ImportError, match="pycocoevalcap"):
        caption_scores(CANDIDATES, REFERENCES, meteor=False)
