"""Loading the repository's scripts (benchmarks/, examples/) in tests, which are no package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_script(relative: str):
    """The script at ``ROOT/relative`` imported as a module, so tests call its functions."""
    name = f"_script_{Path(relative).stem}"
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module
