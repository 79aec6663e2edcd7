r"""Word tokenizer: lowercase, words and punctuation marks as separate tokens.

The text is lowercased and put in Unicode NFC form first, so a decomposed ``"café"``
(``e`` + U+0301) gives the same token as the composed one; the typographic apostrophes ``’``
(U+2019) and ``ʼ`` (U+02BC) become ``'``, so ``"don’t"`` and ``"don't"`` are one token too.

A **word** is a run of letters, digits and ``_`` (``\w`` in Python's Unicode regex) and of the
combining marks (Unicode categories Mn, Mc, Me) and zero-width (non-)joiners after its first
character, so scripts that write vowels as marks stay whole (``"हिन्दी"``, ``"كَتَبَ"``), with
apostrophes allowed *inside* it so contractions stay whole (``"don't"``, ``"dog's"``). Every
other non-space character is a token of its own (``"."``, ``","``, ``"'"``, ``"-"``...):
punctuation is kept, as in the original LNFMM vocabulary (NLTK ``word_tokenize``), because a
caption's full stop is part of what the decoder learns to produce. Such a character (except
an opening bracket) keeps the marks, emoji skin-tone modifiers, variation selectors and tag
characters that follow it, a zero-width joiner ties it to the next one, and two regional
indicators make one flag: ``"👍🏽"``, ``"👨‍👩‍👧"`` and ``"🇫🇷"`` are one token each. Marks with no
character to attach to form a token of their own.

Whitespace only separates, and so does a zero-width space (U+200B). The invisible format
characters that belong to no word (byte-order mark, soft hyphen, word joiner, direction marks
and embeddings) are dropped, and so is a zero-width joiner outside a word or emoji sequence.
On ASCII text all this reduces to the regular expression ``\w+(?:'\w+)*|[^\w\s]`` on the
lowercased text. Nothing is downloaded.

Not to be confused with :func:`flowbridge.metrics.tokenize`, the caption metrics' word
splitter, which drops punctuation (and splits words at hyphens): its ``"A dog's café."`` is
``["a", "dog's", "café"]``, this one's ``["a", "dog's", "café", "."]``.

Example:
    >>> tokenize("A dog's ball, (red)!")
    ['a', "dog's", 'ball', ',', '(', 'red', ')', '!']
    >>> detokenize(["a", "dog's", "ball", ",", "(", "red", ")", "!"])
    "a dog's ball, (red)!"
    >>> tokenize("Don’t 👍🏽")
    ["don't", '👍🏽']
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence
from itertools import chain

from flowbridge.metrics.text import combining_mark_ranges

__all__ = ["tokenize", "detokenize"]

_JOINERS = "\u200c\u200d"  # zero-width non-joiner and joiner: parts of words in many scripts


@functools.cache
def _token_pattern() -> re.Pattern:
    """The token pattern, built on first use: its class of combining marks
    (:func:`flowbridge.metrics.text.combining_mark_ranges`, which the caption metrics share)
    takes ~50 ms to build, which importing the plugin need not pay."""
    marks = combining_mark_ranges()
    # Emoji sequences approximated with `re` (exact grapheme clusters, UAX #29, would need the
    # third-party `regex` module's \X; for a caption vocabulary this covers the sequences in
    # use): a base, then marks (variation selectors U+FE0F are marks; so is the keycap U+20E3),
    # skin-tone modifiers U+1F3FB-1F3FF and tags U+E0020-E007F (subdivision flags), ZWJ to the
    # next base.
    extend = f"[{marks}\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]"
    # An opening bracket takes nothing: detokenize writes the next token right after it, so a
    # bracket that took a following mark would turn "( ́" into one token on the way back.
    base = rf"(?:[\U0001f1e6-\U0001f1ff]{{2}}|[^\w\s{marks}{_JOINERS}([{{])"
    word = rf"\w[\w{marks}{_JOINERS}]*"
    return re.compile(
        rf"{word}(?:'{word})*"  # a word, apostrophes inside
        rf"|{base}{extend}*(?:\u200d{base}{extend}*)*"  # punctuation, symbol, emoji sequence
        rf"|[([{{]"  # an opening bracket
        rf"|[{marks}]+"  # marks with no base before them
    )


# Typographic apostrophes become "'" (so vocabularies match); a zero-width space separates
# words; other invisible format characters carry no text.
_NORMALISE = str.maketrans(
    {"\u2019": "'", "\u02bc": "'", "\u200b": " "}
    | dict.fromkeys(
        ["\u00ad", "\u061c", "\u200e", "\u200f", "\u2060", "\ufeff"]
        + [chr(c) for c in chain(range(0x202A, 0x202F), range(0x2066, 0x206A))]
    )
)
# Spacing for readable output only; the tokenizer splits these marks off either way, so
# detokenize followed by tokenize gives the same tokens back.
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
_NO_SPACE_AFTER = frozenset("([{")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase NFC word and punctuation tokens (``[]`` for blank text);
    unlike :func:`flowbridge.metrics.tokenize`, which drops punctuation, it keeps it."""
    if not isinstance(text, str):
        raise TypeError(f"a text item must be a str, got {type(text).__name__} ({text!r:.80})")
    text = unicodedata.normalize("NFC", text.translate(_NORMALISE).lower())
    return _token_pattern().findall(text)


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens with single spaces, leaving none before closing and after opening marks."""
    pieces: list[str] = []
    for i, token in enumerate(tokens):
        if i and token not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            pieces.append(" ")
        pieces.append(token)
    return "".join(pieces)
