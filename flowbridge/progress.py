"""Progress bars drawn where a person watches: a terminal, or a Jupyter notebook's cell.

tqdm's own choice (``tqdm.auto``) warns "IProgress not found" as it is imported in a Jupyter
kernel without ipywidgets, before any bar is drawn, and a run whose stderr is no terminal
drew no bar at all, so a notebook trained in silence. Here the bar is a widget in a notebook
with ipywidgets, tqdm's text bar in one without (Jupyter redraws it in place on each ``\\r``)
and on a terminal, and left out where stderr is a file or a pipe (a log would fill with one
line per update).
"""

from __future__ import annotations

import sys
from typing import Any

from tqdm import tqdm

__all__ = ["in_notebook", "progress_bar", "watched"]


def in_notebook() -> bool:
    """Whether stderr is a Jupyter kernel's (ipykernel's), which a notebook cell shows."""
    return type(sys.stderr).__module__.startswith("ipykernel.")


def watched() -> bool:
    """Whether a person sees stderr as it is written: a terminal or a notebook cell."""
    return in_notebook() or sys.stderr.isatty()


def progress_bar(**kwargs: Any) -> tqdm:
    """A ``tqdm`` bar (its arguments) as a widget in a notebook with ipywidgets (installed
    when the bar is made, not when this module was imported), else tqdm's text bar."""
    if in_notebook():
        # Imported here: tqdm.notebook imports ipywidgets and IPython, slow for a command.
        from tqdm import notebook

        if notebook.IProgress is not None:
            return notebook.tqdm(**kwargs)
    return tqdm(**kwargs)
