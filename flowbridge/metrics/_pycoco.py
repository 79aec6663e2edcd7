"""Lazy access to pycocoevalcap (an optional dependency: ``flowbridge[metrics]``)."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["import_scorer"]


def import_scorer(module: str) -> ModuleType:
    """Import ``pycocoevalcap.<module>``, or explain how to install it."""
    try:
        return importlib.import_module(f"pycocoevalcap.{module}")
    except ImportError as exc:
        raise ImportError(
            "this metric uses pycocoevalcap (BLEU, METEOR, ROUGE-L, CIDEr-D scorers), which "
            "is not installed: pip install 'flowbridge[metrics]' (or pip install pycocoevalcap)"
        ) from exc
