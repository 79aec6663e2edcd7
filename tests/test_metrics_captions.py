"""Best-of-N and mean-of-N caption scores on a case worked out by hand."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import threading

import numpy as np
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


# Three inputs with different numbers of samples. Input 1's exact match comes last, where only
# input 1 has a sample: scoring only the inputs that have a sample k would take CIDEr-D's
# document frequencies from input 1 alone, every idf then being 0.
RAGGED_REFERENCES = [["a red circle on the left"], ["a big dog runs"], ["two cats sleep on a sofa"]]
RAGGED = [["a red circle", "a blue square"], ["x", "y", "a big dog runs"], ["two cats", "a cat"]]


def test_ragged_sample_counts_do_not_depend_on_sample_order():
    result = caption_scores(RAGGED, RAGGED_REFERENCES, meteor=False)
    for permutation in itertools.permutations(range(3)):
        reordered = [RAGGED[0][::-1], [RAGGED[1][j] for j in permutation], RAGGED[2][::-1]]
        again = caption_scores(reordered, RAGGED_REFERENCES, meteor=False)
        for kind in ("best", "mean"):
            assert again[kind] == pytest.approx(result[kind]), (kind, permutation)


def test_ragged_sample_counts_score_as_the_same_samples_repeated_to_equal_counts():
    # Repeating each input's samples to 6 (2 x 3 and 3 x 2) changes neither the best nor the
    # mean of any input, and gives every input the same count: the input-consistent computation.
    even = [row * (6 // len(row)) for row in RAGGED]
    ragged = caption_scores(RAGGED, RAGGED_REFERENCES, meteor=False)
    expected = caption_scores(even, RAGGED_REFERENCES, meteor=False)
    for kind in ("best", "mean"):
        assert ragged[kind] == pytest.approx(expected[kind])
    # input 1's exact 4-word match: CIDEr-D 10 with document frequencies over all 3 inputs
    from pycocoevalcap.cider.cider import Cider

    _, per_input = Cider().compute_score(
        dict(enumerate(RAGGED_REFERENCES)), {i: [row[-1]] for i, row in enumerate(RAGGED)}
    )
    assert per_input[1] == pytest.approx(10.0)
    best = caption_scores([[row[-1]] for row in RAGGED], RAGGED_REFERENCES, meteor=False)["best"]
    assert best["CIDEr-D"] == pytest.approx(per_input.mean())


def test_one_caption_per_input_also_gives_the_corpus_scores_coco_tables_report():
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    candidates = ["a man riding a horse on a beach", "a dog", "two people on a bench"]
    references = [
        ["a man rides a horse along the beach", "a person on a horse by the sea"],
        ["a brown dog running through the grass", "a dog plays outside"],
        ["two people sit on a park bench", "a couple sitting on a bench"],
    ]
    result = caption_scores([[c] for c in candidates], references, meteor=False)
    gts, res = dict(enumerate(references)), {i: [c] for i, c in enumerate(candidates)}
    bleu, sentence_bleu = Bleu(4).compute_score(gts, res, verbose=0)
    corpus = result["corpus"]
    for n in range(4):
        assert corpus[f"BLEU-{n + 1}"] == pytest.approx(bleu[n])
        # best and mean are sentence-level BLEU averaged over the inputs: not the same number
        assert result["mean"][f"BLEU-{n + 1}"] == pytest.approx(np.mean(sentence_bleu[n]))
    assert corpus["BLEU-4"] != pytest.approx(result["mean"]["BLEU-4"])
    assert corpus["ROUGE-L"] == pytest.approx(Rouge().compute_score(gts, res)[0])
    assert corpus["CIDEr-D"] == pytest.approx(Cider().compute_score(gts, res)[0])
    # several samples per input: no corpus-level numbers
    assert caption_scores(CANDIDATES, REFERENCES, meteor=False)["corpus"] == {}


def test_scores_are_python_floats():
    result = caption_scores(CANDIDATES, REFERENCES, meteor=False)
    assert all(type(v) is float for kind in ("best", "mean") for v in result[kind].values())


def test_a_single_input_skips_cider_d_and_says_why():
    result = caption_scores([["a red circle on the left"]], [["a red circle on the left"]], False)
    assert "CIDEr-D" not in result["best"] and "CIDEr-D" not in result["mean"]
    assert "every idf is 0" in result["skipped"]["CIDEr-D"]
    assert result["best"]["ROUGE-L"] == pytest.approx(1.0)


def test_captions_of_the_wrong_shape_are_refused_with_their_index():
    with pytest.raises(TypeError, match=r"candidates\[1\]\[0\] is a list"):
        caption_scores([["a red circle"], [["the", "big", "dog"]]], REFERENCES, meteor=False)
    with pytest.raises(ValueError, match=r"references\[1\]\[0\] has no words \(''\)"):
        caption_scores(CANDIDATES, [["a red circle"], [""]], meteor=False)
    with pytest.warns(UserWarning, match="single word"):
        caption_scores(CANDIDATES, [["a", "red", "circle"], ["the", "big", "dog"]], meteor=False)


def _within(seconds: float, call):
    """``call()`` in a daemon thread: the test fails, rather than hangs, if it does not end."""
    outcome = {}

    def run():
        try:
            outcome["result"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: it hangs"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _fake_java(tmp_path, monkeypatch, script: str) -> None:
    """Put a ``java`` that runs ``script`` (sh) first on PATH, beside a METEOR jar that exists."""
    folder = tmp_path / "bin"
    folder.mkdir()
    java = folder / "java"
    java.write_text("#!/bin/sh\n" + script, encoding="utf-8")
    java.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    _meteor_jar(monkeypatch, "meteor.py")


def test_meteor_whose_java_fails_to_start_is_skipped_with_its_error(tmp_path, monkeypatch):
    # as a JVM does when it cannot reserve the -Xmx2G heap pycocoevalcap asks for
    _fake_java(
        tmp_path,
        monkeypatch,
        'echo "Error: Could not reserve enough space for 2097152KB object heap" >&2\nexit 1\n',
    )
    with pytest.warns(RuntimeWarning, match="METEOR skipped"):
        result = _within(60, lambda: caption_scores(CANDIDATES, REFERENCES))
    reason = result["skipped"]["METEOR"]
    assert "Could not reserve enough space" in reason and "exit status 1" in reason
    assert "METEOR" not in result["best"]
    assert result["best"]["CIDEr-D"] == pytest.approx(7.5)  # the other metrics are kept


def test_meteor_whose_java_fails_while_scoring_is_skipped_with_its_error(tmp_path, monkeypatch):
    # answers the start-up check (one SCORE line, one EVAL line), then dies
    script = "read line\necho 1 1\nread line\necho 1.0\necho 1.0\necho 'OutOfMemoryError' >&2\n"
    _fake_java(tmp_path, monkeypatch, script + "exit 3\n")
    with pytest.warns(RuntimeWarning, match="METEOR skipped"):
        result = _within(60, lambda: caption_scores(CANDIDATES, REFERENCES))
    assert "OutOfMemoryError" in result["skipped"]["METEOR"]
    assert "METEOR" not in result["best"] and "METEOR" not in result["mean"]


def test_meteor_whose_java_does_not_answer_is_skipped(tmp_path, monkeypatch):
    _fake_java(tmp_path, monkeypatch, "exec sleep 30\n")
    monkeypatch.setattr("flowbridge.metrics.captions.METEOR_START_TIMEOUT_S", 1.0)
    with pytest.warns(RuntimeWarning, match="METEOR skipped"):
        result = _within(20, lambda: caption_scores(CANDIDATES, REFERENCES))
    assert "did not answer within 1 s" in result["skipped"]["METEOR"]
