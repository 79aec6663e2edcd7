r"""Word tokenizer: lowercase, words and punctuation marks as separate tokens.

A **word** is a run of letters, digits and ``_`` (``\w`` in Python's Unicode regex), with
apostrophes allowed *inside* it so contractions stay whole (``"don't"``, ``"dog's"``). Every
other non-space character is a token of its own (``"."``, ``","``, ``"'"``, ``"-"``...):
punctuation is kept, as in the original LNFMM vocabulary (NLTK ``word_tokenize``), because a
caption's full stop is part of what the decoder learns to produce. Whitespace only separates.

Nothing is downloaded: the rules are one regular expression.

Example:
    >>> tokenize("A dog's ball, (red)!")
    ['a', "dog's", 'ball', ',', '(', 'red', ')', '!']
    >>> detokenize(["a", "dog's", "ball", ",", "(", "red", ")", "!"])
    "a dog's ball, (red)!"
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["tokenize", "detokenize"]

_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
# Spacing for readable output only; the tokenizer splits these marks off either way, so
# detokenize followed by tokenize gives the same tokens back.
_NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
_NO_SPACE_AFTER = frozenset("([{")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into lowercase word and punctuation tokens (``[]`` for blank text)."""
    if not isinstance(text, str):
        raise TypeError(f"a text item must be a str, got {type(text).__name__} ({text!r:.80})")
    return _TOKEN.findall(text.lower())


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens with single spaces, leaving none before closing and after opening marks."""
    pieces: list[str] = []
    for i, token in enumerate(tokens):
        if i and token not in _NO_SPACE_BEFORE and tokens[i - 1] not in _NO_SPACE_AFTER:
            pieces.append(" ")
        pieces.append(token)
    return "".join(pieces)
