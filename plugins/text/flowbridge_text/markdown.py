"""Generated texts as a Markdown file a person reads: one section per input, texts numbered."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from flowbridge.files import atomic_write_text, suffixed

__all__ = ["write_markdown"]

# Characters Markdown would read as markup (<unk> would vanish as an HTML tag).
_MARKUP = re.compile(r"([\\`*_\[\]<>#|])")


def _render(items: Sequence[Sequence[str]]) -> str:
    lines = ["# Generated text", ""]
    for i, row in enumerate(items, 1):
        if isinstance(row, str) or not isinstance(row, Sequence):
            raise TypeError(
                f"items must be a list (one per input) of lists of str, got "
                f"{type(row).__name__} at index {i - 1}"
            )
        lines += [f"## Input {i}", ""]
        for k, text in enumerate(row, 1):
            if not isinstance(text, str):
                raise TypeError(f"items[{i - 1}][{k - 1}] must be a str, got {type(text).__name__}")
            text = _MARKUP.sub(r"\\\1", " ".join(text.split()))
            lines.append(f"{k}. {text or '*(empty)*'}")
        lines.append("")
    return "\n".join(lines)


def write_markdown(items: Sequence[Sequence[str]], path: Path) -> Path:
    """Write ``items[i][k]`` (text k of input i) to ``path`` plus ``.md``; return that path.

    Whitespace runs become single spaces, Markdown markup characters are escaped and an empty
    text shows as *(empty)*. The file appears atomically (temp file + rename): a reader never
    sees half of it, and a failure leaves no file behind.
    """
    text = _render(items)  # check everything before touching the disk
    path = suffixed(path, ".md")
    return atomic_write_text(path, text)
