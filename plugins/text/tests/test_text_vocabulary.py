"""Tokenizer and vocabulary: splitting rules, min_count/max_size, specials, save and load."""

from __future__ import annotations

import doctest
import io
import re
import unicodedata

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import flowbridge_text.tokenizer
import flowbridge_text.vocabulary
from flowbridge_text import SPECIALS, UNK, Vocabulary, detokenize, tokenize
from flowbridge_text.vocabulary import check_max_size

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


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # vowel signs and virama are marks inside the word
        ("كَتَبَ", ["كَتَبَ"]),
        (unicodedata.normalize("NFD", "Café!"), ["café", "!"]),  # NFC: one composed é
        ("İstanbul", ["i\u0307stanbul"]),
        ("don’t, donʼt", ["don't", ",", "don't"]),
        ("می\u200cخواهم", ["می\u200cخواهم"]),  # a zero-width non-joiner inside a word
        (
            "👍🏽 👨\u200d👩\u200d👧 🇫🇷🇩🇪 1\ufe0f\u20e3",
            ["👍🏽", "👨\u200d👩\u200d👧", "🇫🇷", "🇩🇪", "1\ufe0f\u20e3"],
        ),
        ("a\u200bdog \ufeffco\u00adoperate \u200d!", ["a", "dog", "cooperate", "!"]),
        ("\u200b \u200e", []),
        ("( \u0301x", ["(", "\u0301", "x"]),  # a mark with no base is a token of its own
    ],
)
def test_tokenize_keeps_marks_apostrophes_and_emoji_sequences_together(text, tokens):
    assert tokenize(text) == tokens
    assert tokenize(detokenize(tokens)) == tokens


@PROPERTY
@given(st.text(st.characters(max_codepoint=127)))
def test_ascii_tokenization_is_the_plain_regex(text):
    # The rules for other scripts must not move an ASCII token: trained vocabularies (the
    # shapes testbed's included) depend on it.
    assert tokenize(text) == re.findall(r"\w+(?:'\w+)*|[^\w\s]", text.lower())


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
    # max_size counts the specials: the max_size - 4 most frequent words stay.
    assert Vocabulary.build(texts, max_size=5).words == [*SPECIALS, "a"]
    assert Vocabulary.build(texts, max_size=6).words == [*SPECIALS, "a", "b"]
    assert len(Vocabulary.build(texts, max_size=100)) == 8


@pytest.mark.parametrize(
    "token_lists, options, error, match",
    [
        (["a dog", "a cat"], {}, TypeError, r"token_lists\[0\] must be a list of tokens"),
        ("a dog", {}, TypeError, "token_lists must be a list of tokens, got the str"),
        ([["a"]], {"min_count": "2"}, TypeError, "min_count must be an int"),
        ([["a"]], {"min_count": 0}, ValueError, "min_count must be >= 1"),
        ([["a"]], {"max_size": 4}, ValueError, "max_size > 4"),
        ([["a"]], {"max_size": -1}, ValueError, "max_size must be >= 1"),
        ([["a"], ["b"]], {"min_count": 2}, ValueError, "lower min_count"),
    ],
)
def test_build_rejects_bad_arguments(token_lists, options, error, match):
    with pytest.raises(error, match=match):
        Vocabulary.build(token_lists, **options)


def test_check_max_size_returns_an_int_as_it_says():
    # Any integer type passes the check; what comes back is the int its annotation promises.
    checked = check_max_size(np.int64(6))
    assert checked == 6 and type(checked) is int
    assert check_max_size(None) is None


def test_encode_maps_unknown_words_to_unk():
    vocab = Vocabulary(["dog", "cat"])
    assert vocab.encode(["cat", "cow", "dog"]) == [5, UNK, 4]
    assert vocab.decode([4, UNK, 5]) == ["dog", "<unk>", "cat"]
    assert "dog" in vocab and "cow" not in vocab
    assert vocab.decode(torch.tensor([4, 5])) == ["dog", "cat"]


def test_encode_and_decode_reject_bad_input():
    vocab = Vocabulary(["dog", "cat"])
    with pytest.raises(TypeError, match="got the str 'dog'; split the text with tokenize"):
        vocab.encode("dog")
    for bad in (-1, 6):
        with pytest.raises(ValueError, match=rf"token id {bad} is outside .* \[0, 5\]"):
            vocab.decode([4, bad])


def test_vocabulary_rejects_bad_words():
    with pytest.raises(ValueError, match="special tokens"):
        Vocabulary(["dog", "<unk>"])
    with pytest.raises(ValueError, match="unique"):
        Vocabulary(["dog", "cat", "dog"])
    with pytest.raises(TypeError, match="non-empty str"):
        Vocabulary(["dog", 3])
    with pytest.raises(TypeError, match="wrap a single word in a list"):
        Vocabulary("dog")
    with pytest.raises(ValueError, match="at least one word"):
        Vocabulary([])
    # build makes words from tokenize output only: a word it never writes is refused there.
    for word in ("Dog", "a b", "don’t"):
        with pytest.raises(
            ValueError, match=f"single tokens as tokenize writes them, got '{word}'"
        ):
            Vocabulary.build([["cat", word]])


def test_a_saved_vocabulary_loads_even_with_words_the_tokenizer_now_writes_otherwise():
    # An earlier tokenizer split "don’t" into "don", "’", "t": a checkpoint of then still loads.
    old = Vocabulary.from_state_dict({"words": [*SPECIALS, "don", "’", "t", "a"]})
    assert old.encode(tokenize("a don’t")) == [old.encode(["a"])[0], UNK]


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
        ({"words": list(SPECIALS)}, "at least one word"),
    ],
)
def test_from_state_dict_rejects_foreign_state(state, match):
    with pytest.raises(ValueError, match=match):
        Vocabulary.from_state_dict(state)
