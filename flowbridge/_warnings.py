"""Warnings shown at the caller's line, however deep in flowbridge they arise.

A fixed ``stacklevel`` counts frames from one entry point: ``train()`` adds a frame that
``Trainer(...).run()`` does not, so a warning counted for one pointed into flowbridge's own
source for the other (in a notebook, ``loop.py:887: UserWarning: ... return self._run()``).
Here the warning goes to the first frame outside flowbridge and the plugins shipped with it:
the user's script line or notebook cell, or a third-party plugin that called the core.
"""

from __future__ import annotations

import sys
import warnings

__all__ = ["warn"]


def _inside(frame) -> bool:
    """Whether ``frame`` runs flowbridge's code or a shipped plugin's (``flowbridge_image``,
    ``flowbridge_coco``, ...), by its module's name: unlike a file path, that holds for a
    wheel, an editable install and a link tree alike."""
    name = frame.f_globals.get("__name__") or ""
    return name == "flowbridge" or name.startswith(("flowbridge.", "flowbridge_"))


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn(message, category)`` at the first frame outside flowbridge and its
    plugins; at the caller's line where there is none (an ``atexit`` hook, a thread)."""
    frame, level = sys._getframe(1), 2  # level 2: the line that called this function
    while frame is not None and _inside(frame):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level if frame is not None else 2)
