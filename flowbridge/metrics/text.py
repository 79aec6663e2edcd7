"""Words and n-grams of captions, and the input check every caption metric shares."""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["tokenize", "ngrams", "check_caption_sets"]

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lowercase words of ``text``; punctuation is dropped (``"A dog's ball."`` ->
    ``["a", "dog's", "ball"]``)."""
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__} ({text!r})")
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The ``n``-grams of a token list, in order (``len(tokens) - n + 1`` of them, or none)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def check_caption_sets(
    captions: object, name: str = "captions", min_size: int = 1
) -> list[list[str]]:
    """Check ``captions[i][k]`` (input ``i``, sample ``k``) and return each caption as its
    words joined by single spaces (the pre-tokenized form pycocoevalcap's scorers expect)."""
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise TypeError(
            f"{name} must be a list with one list of caption strings per input, "
            f"got {type(captions).__name__}"
        )
    if not captions:
        raise ValueError(f"{name} is empty: give at least one input's captions")
    out = []
    for i, samples in enumerate(captions):
        if isinstance(samples, str) or not isinstance(samples, Sequence):
            raise TypeError(
                f"{name}[{i}] must be a list of caption strings (the samples of input {i}), "
                f"got {type(samples).__name__}; wrap a single caption as [caption]"
            )
        if len(samples) < min_size:
            raise ValueError(
                f"{name}[{i}] has {len(samples)} captions; this metric needs at least "
                f"{min_size} per input"
            )
        out.append([" ".join(tokenize(caption)) for caption in samples])
    return out
