"""Words and n-grams of captions, and the input check every caption metric shares.

A word is a run of letters, digits and combining marks of any script (Unicode categories L, N
and M), with an apostrophe allowed inside (``dog's``, ``rock'n'roll``). This is simpler than
pycocoevalcap's PTBTokenizer (Stanford's Penn Treebank tokenizer, run on Java), and differs
from it: hyphens, decimal points and underscores split a word (``t-shirt`` -> ``t shirt``,
``3.5`` -> ``3 5``) where PTB keeps it whole, and contractions stay whole (``doesn't``) where
PTB splits them (``does n't``). Scripts written without spaces (Chinese, Japanese, Thai) are
not segmented: each run of characters between spaces or punctuation counts as one word.
"""

from __future__ import annotations

import functools
import re
import unicodedata
import warnings
from collections.abc import Iterable, Mapping, Sequence, Set

import numpy as np

__all__ = ["tokenize", "ngrams", "check_caption_sets", "check_captions", "combining_mark_ranges"]

# Every mark Unicode assigns lies in planes 0, 1 and 14 (the variation selectors).
_MARK_PLANES = (range(0x20000), range(0xE0000, 0xE1000))
# English captions, the common case, need no Unicode tables: 4 times faster.
_ASCII_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


@functools.cache
def combining_mark_ranges() -> str:
    r"""Every combining mark (Unicode category M: Mn, Mc, Me) as the inside of a regex
    character class, e.g. ``"\u0300-\u036f..."``: put it in brackets, ``f"[{marks}]"``.

    ``re`` has no ``\p{M}``, so the class is built from :mod:`unicodedata` (the Unicode version
    of this Python), on first use and once per process: the scan of the code points takes
    ~30-50 ms. Python's ``\w`` has letters and digits of every script but not these marks
    (accents typed separately, Indic vowel signs), which would split a word apart; both
    :func:`tokenize` and the text plugin's tokenizer add them to their words.
    """
    ranges: list[tuple[int, int]] = []
    for plane in _MARK_PLANES:
        for code in plane:
            if unicodedata.category(chr(code)).startswith("M"):
                if ranges and ranges[-1][1] == code - 1:
                    ranges[-1] = (ranges[-1][0], code)
                else:
                    ranges.append((code, code))
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


@functools.cache
def _word() -> re.Pattern:
    """The word pattern for any script, built on first use. It matches "_", as ``\\w`` does:
    :func:`tokenize` removes those first."""
    char = f"[\\w{combining_mark_ranges()}]"
    return re.compile(rf"{char}+(?:'{char}+)*")


def tokenize(text: str) -> list[str]:
    """Lowercase words of ``text`` in any script; punctuation is dropped (``"A dog's café."``
    -> ``["a", "dog's", "café"]``). Accents are composed first (NFC), so ``"café"`` typed
    either way is one word, and a curly apostrophe reads as a straight one. How this differs
    from the COCO evaluation's PTBTokenizer: see :mod:`flowbridge.metrics.text`.

    Not to be confused with ``flowbridge_text.tokenize``, the text domain's tokenizer, which
    keeps punctuation marks as tokens (``["a", "dog's", "café", "."]``): a decoder learns to
    write them, while caption metrics compare words only."""
    if not isinstance(text, str):
        raise TypeError(f"a caption must be a str, got {type(text).__name__} ({text!r:.60})")
    text = text.lower()
    if text.isascii():
        return _ASCII_WORD.findall(text)
    text = unicodedata.normalize("NFC", text).replace("\u2019", "'").replace("_", " ")
    return _word().findall(text)


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    """The ``n``-grams of a token list, in order (``len(tokens) - n + 1`` of them, or none)."""
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _is_list(value: object) -> bool:
    """A list-like of captions: a sequence or a numpy array, but not a str, a dict or a set
    (a set would merge a model's repeated samples)."""
    if isinstance(value, (str, bytes, Mapping, Set)):
        return False
    return isinstance(value, (Sequence, np.ndarray))


def _words(caption: object, where: str, need_words: bool = False) -> str:
    """``caption``'s words joined by single spaces, or an error that says which caption."""
    if isinstance(caption, str):
        words = " ".join(tokenize(caption))
        if need_words and not words:
            raise ValueError(
                f"{where} has no words ({caption!r:.60}); every reference needs at least one "
                f"word: drop it or fix the data"
            )
        return words
    if _is_list(caption):
        raise TypeError(
            f"{where} is a {type(caption).__name__} ({caption!r:.60}), not a caption string; "
            f"captions are str: join a token list into one string with ' '.join(tokens)"
        )
    raise TypeError(
        f"{where} must be a str (a caption), got {type(caption).__name__} ({caption!r:.60}); "
        f"fill in or drop missing captions first"
    )


def check_caption_sets(
    captions: object, name: str = "captions", min_size: int = 1, words: bool = False
) -> list[list[str]]:
    """Check ``captions[i][k]`` (input ``i``, sample ``k``) and return each caption as its
    words joined by single spaces (the pre-tokenized form pycocoevalcap's scorers expect).

    Args:
        captions: a list (or tuple, or numpy array) per input of caption strings.
        name: what the caller calls ``captions``, for the error messages.
        min_size: the fewest captions an input may have.
        words: refuse a caption with no words (references: nothing to match).
    """
    if not _is_list(captions):
        got = type(captions).__name__
        hint = "; make it a list first: list(...)" if isinstance(captions, Iterable) else ""
        raise TypeError(
            f"{name} must be a list with one list of caption strings per input, got {got}{hint}"
        )
    if not len(captions):
        raise ValueError(f"{name} is empty: give at least one input's captions")
    out = []
    for i, samples in enumerate(captions):
        if not _is_list(samples):
            raise TypeError(
                f"{name}[{i}] must be a list of caption strings (the samples of input {i}), "
                f"got {type(samples).__name__}; wrap a single caption as [caption] (one caption "
                f"per input: [[c] for c in {name}])"
            )
        if len(samples) < min_size:
            raise ValueError(
                f"{name}[{i}] has {len(samples)} captions; this metric needs at least "
                f"{min_size} per input"
            )
        out.append([_words(c, f"{name}[{i}][{k}]", words) for k, c in enumerate(samples)])
    _warn_if_token_lists(captions, out, name)
    return out


def _warn_if_token_lists(captions: object, sets: list[list[str]], name: str) -> None:
    """Token lists one level too shallow (one caption per input given as its tokens) are
    shaped exactly like inputs with several one-word captions: no error can tell them apart,
    but a set where every caption is one word and some input has different ones is worth a
    warning (K identical one-word captions are more likely a collapsed model)."""
    if any(" " in c or not c for row in sets for c in row):
        return
    if not any(len(set(row)) > 1 for row in sets):
        return
    warnings.warn(
        f"every caption in {name} is a single word (e.g. {name}[0] = {captions[0]!r:.80}); if "
        f"these are token lists, give each caption as one string (' '.join(tokens)) and each "
        f"input's captions as a list: [[caption] for caption in ...] for one caption per input",
        UserWarning,
        stacklevel=4,  # the line that called the metric
    )


def check_captions(captions: object, name: str = "captions") -> list[str]:
    """Check a flat collection of caption strings (any iterable but a str: a list, a set, a
    generator) and return each as its words joined by single spaces."""
    if isinstance(captions, str):
        raise TypeError(
            f"{name} is one str; give a collection of captions (a list or set of str), e.g. "
            f"[{captions!r:.40}]"
        )
    if not isinstance(captions, Iterable):
        raise TypeError(
            f"{name} must be a collection of caption strings, got {type(captions).__name__}"
        )
    out = []
    for j, caption in enumerate(captions):
        if _is_list(caption):
            raise TypeError(
                f"item {j} of {name} is a {type(caption).__name__} ({caption!r:.60}): {name} "
                f"must be a flat collection of caption strings; flatten per-image lists with "
                f"[c for captions in {name} for c in captions]"
            )
        out.append(_words(caption, f"item {j} of {name}"))
    return out
