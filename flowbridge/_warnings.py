"""Warnings shown at the caller's line, however deep in flowbridge they arise.

A fixed ``stacklevel`` counts frames from one entry point: ``train()`` adds a frame that
``Trainer(...).run()`` does not, so a warning counted for one pointed into flowbridge's own
source for the other (in a notebook, ``loop.py:887: UserWarning: ... return self._run()``).
Here the warning goes to the first frame outside the package: the user's script line or
notebook cell, or the plugin that called the core.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

__all__ = ["warn"]

_PACKAGE = str(Path(__file__).resolve().parent)


def _inside(filename: str) -> bool:
    return filename.startswith(_PACKAGE) and filename[len(_PACKAGE) : len(_PACKAGE) + 1] in "/\\"


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` at the first frame outside flowbridge."""
    frame, level = sys._getframe(1), 2  # level 2: the line that called this function
    while frame is not None and _inside(str(Path(frame.f_code.co_filename).resolve())):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
