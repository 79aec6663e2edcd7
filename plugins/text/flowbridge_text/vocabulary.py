"""Word vocabulary with the four special tokens every text batch uses.

Ids ``0..3`` are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; words follow, most frequent first
(ties in alphabetical order, so the same corpus always gives the same ids). :meth:`Vocabulary.build`
keeps only tokens as :func:`~flowbridge_text.tokenizer.tokenize` writes them, so every id can be
reached.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from flowbridge.checks import check_positive_int

from .tokenizer import tokenize

__all__ = ["SPECIALS", "PAD", "BOS", "EOS", "UNK", "Vocabulary", "check_max_size"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(len(SPECIALS))


def check_max_size(max_size: object) -> int | None:
    """Return ``max_size`` as an int if it is one that leaves room for a word (``None`` as it
    is), else raise."""
    if max_size is None:
        return None
    # The checked int, not max_size itself: any integer type passes (a numpy int64, say).
    size = check_positive_int(max_size, "max_size")
    if size <= len(SPECIALS):
        raise ValueError(
            f"max_size counts the {len(SPECIALS)} special tokens and must leave room for "
            f"words: give max_size > {len(SPECIALS)} (or None for no limit), got {max_size}"
        )
    return size


def _refuse_str(value: object, what: str, hint: str) -> None:
    # A str is a sequence of characters: taken as a list it would silently give characters.
    if isinstance(value, str):
        raise TypeError(f"{what} must be a list of tokens, got the str {value!r:.60}; {hint}")


class Vocabulary:
    """A bijection between tokens and ids, specials first.

    Args:
        words: the non-special tokens in id order (ids ``4, 5, ...``): at least one, no
            duplicates. :meth:`build` makes them from ``tokenize`` output only; a saved
            vocabulary loads as it was, even one whose words an earlier tokenizer wrote
            differently (those ids are then never encoded, and old checkpoints still load).

    Raises:
        TypeError, ValueError: ``words`` is a str, empty, or holds a word that breaks a rule.

    Example:
        >>> vocab = Vocabulary.build([["a", "dog"], ["a", "cat"]])
        >>> vocab.words
        ['<pad>', '<bos>', '<eos>', '<unk>', 'a', 'cat', 'dog']
        >>> vocab.encode(["a", "cow"])
        [4, 3]
    """

    def __init__(self, words: Sequence[str]):
        _refuse_str(words, "words", "wrap a single word in a list")
        words = list(words)
        bad = [w for w in words if not isinstance(w, str) or not w]
        if bad:
            raise TypeError(f"vocabulary words must be non-empty str, got {bad[:5]!r}")
        clash = sorted(set(words) & set(SPECIALS))
        if clash:
            raise ValueError(f"vocabulary words must not include the special tokens {clash}")
        if not words:
            raise ValueError(
                "a vocabulary needs at least one word besides the special tokens, got none"
            )
        self.words: list[str] = [*SPECIALS, *words]
        self._index = {w: i for i, w in enumerate(self.words)}
        if len(self._index) != len(self.words):
            dupes = sorted(w for w, n in Counter(words).items() if n > 1)
            raise ValueError(f"vocabulary words must be unique, got duplicates {dupes[:5]!r}")

    @classmethod
    def build(
        cls,
        token_lists: Iterable[Sequence[str]],
        min_count: int = 1,
        max_size: int | None = None,
    ) -> Vocabulary:
        """Count tokens; keep those seen ``>= min_count`` times, at most ``max_size`` ids in all.

        ``token_lists`` holds one list of tokens per text (``tokenize(text)``). ``max_size``
        counts the four special tokens, so it is the embedding table's size: the
        ``max_size - 4`` most frequent words are kept (``max_size > 4``; ``None``: all).

        Raises:
            TypeError, ValueError: a text given as a str instead of a token list, a bad
                ``min_count`` or ``max_size``, or no token seen ``min_count`` times.
        """
        _refuse_str(token_lists, "token_lists", "give one list of tokens per text")
        check_positive_int(min_count, "min_count")
        check_max_size(max_size)
        counts: Counter[str] = Counter()
        for i, tokens in enumerate(token_lists):
            _refuse_str(tokens, f"token_lists[{i}]", "split texts with tokenize(text)")
            counts.update(tokens)
        # A word tokenize never writes could never be encoded: its id would be dead weight.
        foreign = [(w, tokenize(w)) for w in counts if tokenize(w) != [w]]
        if foreign:
            shown = ", ".join(f"{w!r} (tokenize gives {t!r})" for w, t in foreign[:3])
            raise ValueError(
                f"vocabulary words must be single tokens as tokenize writes them, got {shown}; "
                f"build the vocabulary from tokenize(text) lists"
            )
        kept = [w for w, n in counts.items() if n >= min_count]
        if not kept:
            raise ValueError(
                f"no token occurs at least min_count={min_count} times in the texts; lower "
                f"min_count or give more text"
            )
        kept.sort(key=lambda w: (-counts[w], w))
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(kept)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, token: object) -> bool:
        return token in self._index

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; a token outside the vocabulary becomes ``<unk>``."""
        _refuse_str(tokens, "tokens", "split the text with tokenize(text) first")
        return [self._index.get(token, UNK) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` (specials included as their ``<...>`` names), each id in
        ``[0, len(self))``."""
        tokens = []
        for i in map(operator.index, ids):
            if not 0 <= i < len(self.words):
                raise ValueError(
                    f"token id {i} is outside the vocabulary's ids [0, {len(self.words) - 1}]; "
                    f"were the ids made with another vocabulary?"
                )
            tokens.append(self.words[i])
        return tokens

    def state_dict(self) -> dict[str, Any]:
        """``{"words": [...]}``: every token in id order, specials included."""
        return {"words": list(self.words)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocabulary:
        """Rebuild the vocabulary :meth:`state_dict` described (the rules of
        :class:`Vocabulary` apply)."""
        words = state.get("words") if isinstance(state, dict) else None
        if not isinstance(words, list):
            raise ValueError(
                f"a vocabulary state must be a dict with a 'words' list, got {state!r:.100}"
            )
        if tuple(words[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(
                f"a vocabulary state must start with the special tokens {list(SPECIALS)}, got "
                f"{words[: len(SPECIALS)]!r}; was it written by flowbridge_text?"
            )
        return cls(words[len(SPECIALS) :])

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)})"
