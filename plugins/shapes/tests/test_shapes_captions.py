"""The caption grammar: every template round-trips, hand-made captions parse as expected."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from flowbridge_shapes import ATTRIBUTES, all_combinations, claims_hold, parse_caption
from flowbridge_shapes.captions import TEMPLATES, sample_caption, sample_captions

IMAGE = {
    "shape": "circle",
    "color": "orange",
    "size": "small",
    "horizontal": "left",
    "vertical": "top",
}
SUBSETS = [
    list(keys)
    for r in range(1, len(ATTRIBUTES) + 1)
    for keys in itertools.combinations(ATTRIBUTES, r)
]


@pytest.mark.parametrize("template", range(len(TEMPLATES)))
def test_every_template_round_trips(template):
    """Every subset a template can state, many random fillings: parse gives back the claims."""
    rng = np.random.default_rng(template)
    combos = all_combinations()
    checked = 0
    for stated in SUBSETS:
        for _ in range(8):
            attrs = combos[rng.integers(len(combos))]
            try:
                text, claims = sample_caption(attrs, rng, stated=stated, template=template)
            except ValueError:
                break  # this template cannot state exactly this subset
            assert claims == {key: attrs[key] for key in stated}
            assert parse_caption(text) == claims, text
            assert text == text.lower() and "  " not in text and text.strip() == text
            checked += 1
    assert checked >= 40


def test_sampled_captions_round_trip_and_are_true():
    rng = np.random.default_rng(7)
    combos = all_combinations()
    stated_counts: Counter = Counter()
    for _ in range(500):
        attrs = combos[rng.integers(len(combos))]
        text, claims = sample_caption(attrs, rng)
        assert parse_caption(text) == claims and claims_hold(claims, attrs)
        stated_counts.update(claims.keys())
    # each attribute is stated about half the time (a little more: no caption states nothing)
    for key in ATTRIBUTES:
        assert 0.4 < stated_counts[key] / 500 < 0.7, (key, stated_counts)


def test_sample_captions_is_many_and_deterministic():
    captions = sample_captions(IMAGE, 10, np.random.default_rng(0))
    assert captions == sample_captions(IMAGE, 10, np.random.default_rng(0))
    assert len(set(captions)) >= 8
    assert all(claims_hold(parse_caption(c), IMAGE) for c in captions)


@pytest.mark.parametrize(
    ("text", "claims"),
    [
        (
            "a small red circle on the left",
            {"size": "small", "color": "red", "shape": "circle", "horizontal": "left"},
        ),
        ("there is something crimson", {"color": "red"}),
        (
            "a large shape at the top right",
            {"size": "large", "horizontal": "right", "vertical": "top"},
        ),
        (
            "the figure in the lower half is tiny and violet",
            {"vertical": "bottom", "size": "small", "color": "purple"},
        ),
        ("an amber rhombus", {"color": "orange", "shape": "diamond"}),
        (
            "a box in the upper left corner that is big",
            {"shape": "square", "horizontal": "left", "vertical": "top", "size": "large"},
        ),
        ("  A Red   Circle. ", {"color": "red", "shape": "circle"}),
        ("we see something on the right side", {"horizontal": "right"}),
    ],
)
def test_hand_made_captions(text, claims):
    assert parse_caption(text) == claims


@pytest.mark.parametrize(
    "text",
    [
        "",
        "a shape",  # states nothing
        "something",
        "a red blue circle",  # contradiction
        "red circle a",  # word salad
        "a red circle on the left on the right",
        "a purple elephant",
        "the circle is",
    ],
)
def test_outside_the_grammar_is_none(text):
    assert parse_caption(text) is None


def test_claims_hold():
    assert claims_hold({"color": "orange"}, IMAGE)
    assert not claims_hold({"color": "orange", "size": "large"}, IMAGE)
    assert not claims_hold(None, IMAGE) and not claims_hold({"color": "red"}, None)


def test_bad_input_is_explained():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match="must be a str"):
        parse_caption(None)
    with pytest.raises(ValueError, match="lack"):
        sample_caption({"shape": "circle"}, rng)
    with pytest.raises(ValueError, match="unknown value 'pink'"):
        sample_caption({**IMAGE, "color": "pink"}, rng)
    with pytest.raises(ValueError, match="at least one attribute"):
        sample_caption(IMAGE, rng, stated=[])
    with pytest.raises(ValueError, match="cannot state exactly"):
        sample_caption(IMAGE, rng, stated=["shape"], template=1)  # "something ..."


def test_docstring_examples():
    import doctest

    import flowbridge_shapes.captions

    assert doctest.testmod(flowbridge_shapes.captions).failed == 0
