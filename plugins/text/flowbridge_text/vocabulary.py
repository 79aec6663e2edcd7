"""Word vocabulary with the four special tokens every text batch uses.

Ids ``0..3`` are ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>``; words follow, most frequent first
(ties in alphabetical order, so the same corpus always gives the same ids).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["SPECIALS", "PAD", "BOS", "EOS", "UNK", "Vocabulary"]

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = range(len(SPECIALS))


class Vocabulary:
    """A bijection between tokens and ids, specials first.

    Args:
        words: the non-special tokens in id order (ids ``4, 5, ...``); no duplicates.

    Example:
        >>> vocab = Vocabulary.build([["a", "dog"], ["a", "cat"]])
        >>> vocab.words
        ['<pad>', '<bos>', '<eos>', '<unk>', 'a', 'cat', 'dog']
        >>> vocab.encode(["a", "cow"])
        [4, 3]
    """

    def __init__(self, words: Sequence[str]):
        words = list(words)
        bad = [w for w in words if not isinstance(w, str) or not w]
        if bad:
            raise TypeError(f"vocabulary words must be non-empty str, got {bad[:5]!r}")
        clash = sorted(set(words) & set(SPECIALS))
        if clash:
            raise ValueError(f"vocabulary words must not include the special tokens {clash}")
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

        ``max_size`` counts the four special tokens, so it is the embedding table's size.
        """
        counts = Counter(token for tokens in token_lists for token in tokens)
        kept = [w for w, n in counts.items() if n >= min_count]
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
        return [self._index.get(token, UNK) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` (specials included as their ``<...>`` names)."""
        return [self.words[i] for i in ids]

    def state_dict(self) -> dict[str, Any]:
        """``{"words": [...]}``: every token in id order, specials included."""
        return {"words": list(self.words)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> Vocabulary:
        """Rebuild the vocabulary :meth:`state_dict` described."""
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
