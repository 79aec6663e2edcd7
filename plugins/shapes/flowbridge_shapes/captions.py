"""Underspecified captions: the grammar that writes them and the parser that reads them back.

A caption states the values of a non-empty subset of an image's attributes, in one of a few
templates, with synonyms: "a small red circle on the left", "there is something crimson",
"the shape in the upper right corner is big". Captions are lowercase words separated by single
spaces, without punctuation.

The grammar is data: each *slot* is a list of ``(phrase, claims)`` options and each *template*
a format string of slots. The sampler fills a template with options whose claims are exactly
the attributes it chose to state; the parser turns every template into a regular expression
whose alternatives are the same phrases. So every caption the sampler writes parses back to
what it states, and a caption outside the grammar (word salad, a contradiction such as "a red
blue circle", a caption that states nothing) reads as ``None``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

import numpy as np

from flowbridge.metrics import tokenize

from .attributes import ATTRIBUTES, check_attributes

__all__ = [
    "SLOTS",
    "TEMPLATES",
    "claims_hold",
    "normalize_caption",
    "parse_caption",
    "sample_caption",
    "sample_captions",
]

Claims = dict[str, str]
Options = list[tuple[str, Claims]]

SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big", "huge")}
COLOR_WORDS = {
    "red": ("red", "crimson", "scarlet"),
    "orange": ("orange", "amber"),
    "yellow": ("yellow", "golden"),
    "green": ("green", "emerald"),
    "blue": ("blue", "azure"),
    "purple": ("purple", "violet"),
}
SHAPE_WORDS = {
    "circle": ("circle", "disk"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
}
GENERIC_NOUNS = ("shape", "object", "thing", "figure")
_VERTICAL = {"top": ("top", "upper"), "bottom": ("bottom", "lower")}


def _words(table: Mapping[str, Sequence[str]], attribute: str, lead: str = " ") -> Options:
    return [(lead + word, {attribute: value}) for value, words in table.items() for word in words]


def _positions() -> Options:
    options: Options = []
    for h in ATTRIBUTES["horizontal"]:
        for pattern in ("on the {h}", "on the {h} side", "to the {h}"):
            options.append((" " + pattern.format(h=h), {"horizontal": h}))
    for v, (edge, half) in _VERTICAL.items():
        for phrase in (f"at the {edge}", f"near the {edge}", f"in the {half} half"):
            options.append((" " + phrase, {"vertical": v}))
        for h in ATTRIBUTES["horizontal"]:
            both = {"horizontal": h, "vertical": v}
            for phrase in (
                f"at the {edge} {h}",
                f"in the {edge} {h} corner",
                f"in the {half} {h}",
                f"in the {half} {h} corner",
            ):
                options.append((" " + phrase, both))
    return options


def _adjectives() -> Options:
    sizes, colors = _words(SIZE_WORDS, "size"), _words(COLOR_WORDS, "color")
    both = [(s + " and" + c, {**sc, **cc}) for s, sc in sizes for c, cc in colors]
    return sizes + colors + both


_NONE: Options = [("", {})]

#: the grammar's slots: every phrase a slot may take, with what it claims
SLOTS: dict[str, Options] = {
    "prefix": [
        (p, {})
        for p in ("", "there is ", "a picture of ", "an image of ", "this image shows ", "we see ")
    ],
    "article": [("a", {}), ("an", {})],
    "size": _NONE + _words(SIZE_WORDS, "size"),
    "color": _NONE + _words(COLOR_WORDS, "color"),
    "noun": _words(SHAPE_WORDS, "shape", lead="") + [(n, {}) for n in GENERIC_NOUNS],
    "position": _NONE + _positions(),
    "adjectives": _adjectives(),
    "any_adjectives": _NONE + _adjectives(),
}

#: caption templates; ``{slot}`` fields are filled with one phrase of :data:`SLOTS` each
TEMPLATES: tuple[str, ...] = (
    "{prefix}{article}{size}{color} {noun}{position}",
    "{prefix}something{any_adjectives}{position}",
    "the {noun}{position} is{adjectives}",
    "{article} {noun}{position} that is{adjectives}",
)

_FIELD = re.compile(r"\{(\w+)\}")


@functools.cache
def _pattern(template: str) -> re.Pattern:
    """The template as a regular expression: one named group per slot, whose alternatives are
    the slot's phrases (longest first, so "at the top left" is not read as "at the top")."""

    def slot(name: str) -> str:
        phrases = sorted((p for p, _ in SLOTS[name]), key=len, reverse=True)
        return f"(?P<{name}>{'|'.join(map(re.escape, phrases))})"

    # split() on a pattern with one group alternates literal text and field names.
    parts = _FIELD.split(template)
    return re.compile("".join(slot(t) if i % 2 else re.escape(t) for i, t in enumerate(parts)))


@functools.cache
def _lookup(slot: str) -> dict[str, Claims]:
    return {phrase: claims for phrase, claims in SLOTS[slot]}


def normalize_caption(text: str) -> str:
    """Lowercase words separated by single spaces, punctuation dropped (the metrics' words)."""
    return " ".join(tokenize(text))


def parse_caption(text: str) -> Claims | None:
    """What a caption states, as ``{attribute: value}``; ``None`` if the caption is not a
    sentence of the testbed's grammar or states nothing.

    Case, punctuation and extra spaces are ignored ("A red circle." parses).

    >>> parse_caption("a small red circle on the left")
    {'size': 'small', 'color': 'red', 'shape': 'circle', 'horizontal': 'left'}
    >>> parse_caption("a red blue circle") is None
    True
    """
    caption = normalize_caption(text)
    for template in TEMPLATES:
        match = _pattern(template).fullmatch(caption)
        if match is None:
            continue
        claims: Claims = {}
        for slot, phrase in match.groupdict().items():
            claims.update(_lookup(slot)[phrase])
        if claims:
            return claims
    return None


def claims_hold(
    claims: Mapping[str, str] | None, attributes: Mapping[str, str | None] | None
) -> bool:
    """Whether every claim is true of the attributes (``None`` on either side: false)."""
    if claims is None or attributes is None:
        return False
    return all(attributes.get(key) == value for key, value in claims.items())


@functools.cache
def _fields(template: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The slots of ``template``, in order, and every attribute one of them can state."""
    fields = tuple(_FIELD.findall(template))
    return fields, frozenset().union(*map(_slot_keys, fields))


@functools.cache
def _slot_keys(slot: str) -> frozenset[str]:
    """The attributes some phrase of ``slot`` states."""
    return frozenset(key for _, claims in SLOTS[slot] for key in claims)


@functools.cache
def _phrases(slot: str, want: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The phrases of ``slot`` (in :data:`SLOTS`' order) that state exactly ``want``."""
    return tuple(phrase for phrase, claims in SLOTS[slot] if claims == dict(want))


_AN = re.compile(r"\ban? (?=[aeiou])")
_A = re.compile(r"\ban (?=[^aeiou])")


def _fill(template: str, stated: Claims, rng: np.random.Generator) -> str | None:
    """Fill ``template`` so that it states exactly ``stated``; ``None`` if it cannot."""
    # The grammar is fixed: what each template and slot can state is worked out once (the
    # caption ceilings of an evaluation fill ~35,000 templates).
    fields, covered = _fields(template)
    if not covered.issuperset(stated):
        return None
    filled = {}
    for slot in fields:
        keys = _slot_keys(slot)
        options = _phrases(slot, tuple((k, v) for k, v in stated.items() if k in keys))
        if not options:
            return None
        filled[slot] = options[rng.integers(len(options))]
    text = template.format(**filled)
    # "a" before a vowel reads "an"; the parser accepts either article.
    return _AN.sub("an ", _A.sub("a ", text))


def sample_caption(
    attributes: Mapping[str, str],
    rng: np.random.Generator,
    stated: Sequence[str] | None = None,
    template: int | None = None,
) -> tuple[str, Claims]:
    """One true caption of an image and what it states.

    Each attribute is stated with probability 1/2 (drawn again if none is), unless ``stated``
    names them; the template is uniform among those that can state exactly that (or
    ``TEMPLATES[template]``), and every phrase uniform among those that fit.
    """
    attrs = check_attributes(attributes, complete=True)
    if stated is None:
        keys: list[str] = []
        while not keys:
            keys = [key for key in ATTRIBUTES if rng.random() < 0.5]
    else:
        keys = list(stated)
        check_attributes({key: attrs.get(key) for key in keys}, complete=False)
        if not keys:
            raise ValueError("a caption must state at least one attribute; stated is empty")
    claims = {key: attrs[key] for key in keys}
    if template is not None:
        text = _fill(TEMPLATES[template], claims, rng)
        if text is None:
            raise ValueError(f"template {TEMPLATES[template]!r} cannot state exactly {claims}")
        return text, claims
    texts = [t for t in (_fill(t, claims, rng) for t in TEMPLATES) if t]
    # Templates are filled first, so the choice among them does not depend on their order.
    return texts[rng.integers(len(texts))], claims


def sample_captions(attributes: Mapping[str, str], k: int, rng: np.random.Generator) -> list[str]:
    """``k`` captions drawn independently from the data's own caption distribution: the
    ceiling for caption diversity metrics."""
    return [sample_caption(attributes, rng)[0] for _ in range(k)]
