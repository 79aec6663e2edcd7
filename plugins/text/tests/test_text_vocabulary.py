"""Tokenizer and vocabulary: splitting rules, min_count/max_size, specials, save and load."""

from __future__ import annotations

import doctest
import io

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flowbridge_text.tokenizer
import flowbridge_text.vocabulary
from flowbridge_text import SPECIALS, UNK, Vocabulary, detokenize, tokenize

PROPERTY = settings(derandomize=True, deadline=None, max_examples=200)


def test_tokenize_lowercases_and_splits_punctuation():
    assert tokenize("A Dog's ball, (RED)!  ok") == [
        "a", "dog's", "ball", ",", "(", "red", ")", "!", "ok",
    ]  # fmt: skip
    assert tokenize("x-ray 3.5") == ["x", "-", "ray", "3", ".", "5"]
    assert tokenize("") == tokenize(" \t\n") == []


@pytest.mark.parametrize("module", [flowbridge_text.tokenizer, flowbridge_text.vocabulary])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_tokenize_rejects_non_str():
    with pytest.raises(TypeError, match="must be a str, got bytes"):
        tokenize(b"a dog")


def test_detokenize_spacing():
    assert detokenize(["a", "dog", ",", "(", "red", ")", "."]) == "a dog, (red)."
    assert detokenize([]) == ""


@PROPERTY
@given(st.text())
def test_tokens_are_clean_and_survive_detokenize(text):
    tokens = tokenize(text)
    assert all(t and not any(c.isspace() for c in t) and t == t.lower() for t in tokens)
    assert tokenize(detokenize(tokens)) == tokens


def test_build_counts_orders_and_filters():
    texts = [["b", "a", "c"], ["a", "b"], ["a", "d"]]
    vocab = Vocabulary.build(texts, min_count=1)
    # Specials first at fixed ids, then by count (a: 3, b: 2) and alphabetically among ties.
    assert vocab.words == [*SPECIALS, "a", "b", "c", "d"]
    assert vocab.words[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert Vocabulary.build(texts, min_count=2).words == [*SPECIALS, "a", "b"]
    assert Vocabulary.build(texts, max_size=5).words == [*SPECIALS, "a"]
    assert len(Vocabulary.build(texts, max_size=100)) == 8


def test_encode_maps_unknown_words_to_unk():
    vocab = Vocabulary(["dog", "cat"])
    assert vocab.encode(["cat", "cow", "dog"]) == [5, UNK, 4]
    assert vocab.decode([4, UNK, 5]) == ["dog", "<unk>", "cat"]
    assert "dog" in vocab and "cow" not in vocab


def test_vocabulary_rejects_bad_words():
    with pytest.raises(ValueError, match="special tokens"):
        Vocabulary(["dog", "<unk>"])
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["dog", "cat", "dog"])
    with pytest.raises(TypeError, match="non-empty str"):
        Vocabulary(["dog", 3])


def test_state_dict_round_trips_through_torch_save_with_weights_only():
    vocab = Vocabulary.build([["a", "man", "riding", "a", "horse", "."]])
    buffer = io.BytesIO()
    torch.save(vocab.state_dict(), buffer)
    buffer.seek(0)
    restored = Vocabulary.from_state_dict(torch.load(buffer, weights_only=True))
    assert restored.words == vocab.words
    assert restored.encode(["horse", "zebra"]) == vocab.encode(["horse", "zebra"])


@pytest.mark.parametrize(
    "state, match",
    [
        ([], "dict with a 'words' list"),
        ({"tokens": []}, "dict with a 'words' list"),
        ({"words": ["a", "b", "c", "d", "e"]}, "start with the special tokens"),
    ],
)
def test_from_state_dict_rejects_foreign_state(state, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_state_dict(state)
