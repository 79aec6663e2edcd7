"""Words of captions in any script, and the caption check every metric shares."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pytest

from flowbridge.metrics import div_n, tokenize, unique_fraction
from flowbridge.metrics.text import check_caption_sets, combining_mark_ranges


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Un café crème à la plage", ["un", "café", "crème", "à", "la", "plage"]),
        ("naïve señor", ["naïve", "señor"]),
        ("Straße, ÉLAN!", ["straße", "élan"]),
        ("Собака бежит по траве.", ["собака", "бежит", "по", "траве"]),
        # combining vowel signs and virama belong to the word
        ("हिन्दी में", ["हिन्दी", "में"]),
        # no spaces in Chinese: a run of characters is one word
        ("一只狗在草地上跑。", ["一只狗在草地上跑"]),
        ("一只狗 在 草地上", ["一只狗", "在", "草地上"]),
        # straight and curly apostrophes inside a word are one and the same
        ("The dog’s ball", ["the", "dog's", "ball"]),
        ("rock'n'roll 'quoted'", ["rock'n'roll", "quoted"]),
        # what differs from PTBTokenizer, as documented: hyphens, decimals and underscores split
        ("A T-shirt, 3.5 inch, snake_case", ["a", "t", "shirt", "3", "5", "inch", "snake", "case"]),
        ("...  !! ", []),
    ],
)
def test_tokenize_keeps_letters_and_digits_of_any_script(text, words):
    assert tokenize(text) == words


def test_tokenize_composes_accents_first():
    # "é" typed as one code point or as "e" + a combining acute accent is one word
    assert tokenize("cafe\u0301") == tokenize("caf\u00e9") == ["caf\u00e9"]


def test_non_english_captions_count_as_words():
    assert unique_fraction([["собака бежит", "кошка спит"]]) == 1.0
    assert div_n([["собака бежит", "кошка спит"]], 1) == 1.0
    assert unique_fraction([["le café", "le caf"]]) == 1.0


def test_a_token_list_in_place_of_a_caption_names_the_index():
    with pytest.raises(TypeError, match=r"captions\[0\]\[1\] is a list .*' '\.join\(tokens\)"):
        check_caption_sets([["a red circle", ["a", "blue", "square"]]])
    with pytest.raises(TypeError, match=r"candidates\[1\]\[0\] is a tuple"):
        check_caption_sets([["a"], [("a", "b")]], name="candidates")


def test_a_missing_caption_names_where_it_is():
    captions = [["a dog", "a cat"]] * 500 + [["a dog", float("nan")]] + [["a dog", "a cat"]] * 9
    with pytest.raises(
        TypeError, match=r"captions\[500\]\[1\] must be a str \(a caption\), got float"
    ):
        div_n(captions)


def test_token_lists_unwrapped_one_level_are_warned_about():
    # one caption per input given as its tokens: shaped like K one-word captions
    with pytest.warns(UserWarning, match=r"every caption in captions is a single word"):
        check_caption_sets([["a", "red", "circle"], ["a", "dog"]])
    # one-word captions among longer ones are ordinary: no warning
    check_caption_sets([["x", "x", "y"], ["a red circle", "a RED circle"]])


def test_numpy_rows_and_arrays_of_captions_are_read():
    array = np.array([["a red circle", "a blue square"], ["a dog", "a cat"]])
    expected = [["a red circle", "a blue square"], ["a dog", "a cat"]]
    assert check_caption_sets(array) == expected
    assert check_caption_sets(list(array)) == expected


def test_shapes_that_are_not_caption_sets_say_what_to_do():
    with pytest.raises(TypeError, match=r"got generator; make it a list"):
        check_caption_sets(row for row in [["a dog"]])
    with pytest.raises(TypeError, match=r"captions\[0\] must be a list .* got set"):
        check_caption_sets([{"a dog", "a cat"}])
    with pytest.raises(TypeError, match=r"wrap a single caption as \[caption\]"):
        check_caption_sets(["a dog", "a cat"])
    with pytest.raises(ValueError, match=r"references\[1\]\[0\] has no words \('\.\.\.'\)"):
        check_caption_sets([["a dog"], ["..."]], name="references", words=True)


def test_the_combining_mark_class_holds_every_mark_and_is_built_once():
    # Shared with the text plugin's tokenizer: one scan of the code points per process.
    assert combining_mark_ranges() is combining_mark_ranges()
    marks = re.compile(f"[{combining_mark_ranges()}]")
    for code in (*range(0x300, 0x400), *range(0x900, 0x980), 0x20E3, 0xFE0F, 0xE0100):
        char = chr(code)
        is_mark = unicodedata.category(char).startswith("M")
        assert bool(marks.fullmatch(char)) == is_mark, hex(code)
