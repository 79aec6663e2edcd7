"""Where a result came from: the versions and the source commit to write next to numbers, so
that result files can be compared across commits and machines."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_average", "measured", "peak_rss_mib", "source_commit", "versions"]


def source_commit(path: str | Path | None = None) -> str | None:
    """The git commit of the work tree holding ``path`` (default: flowbridge's own source),
    with ``-dirty`` appended when tracked files differ from it; ``None`` outside a git work
    tree (an installed wheel) or without git, and where git tracks nothing in ``path``'s
    folder: an installed wheel in a virtual environment inside the user's own repository
    (``project/.venv``) is not that repository's code.

    It asks the tree the code lives in, not the caller's working directory, so a script run
    from elsewhere still names the commit it ran."""
    # Resolved: an editable install may reach the source through a tree of symbolic links
    # that git does not track (setuptools' strict mode, under build/).
    folder = Path(path if path is not None else __file__).resolve()
    if folder.is_file():
        folder = folder.parent

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=folder, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        if not git("ls-files", "--", "."):
            return None
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if dirty else "")


def versions(path: str | Path | None = None) -> dict[str, Any]:
    """``{"commit", "flowbridge", "torch", "python"}``: :func:`source_commit` of ``path`` and
    the versions in use."""
    from . import __version__

    return {
        "commit": source_commit(path),
        "flowbridge": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def measured() -> dict[str, Any]:
    """``{"date_utc", "platform", "cpu_count", "load_average"}``: when and on what machine a
    result was measured, and how busy it was (``None`` where the system cannot say, as on
    Windows): timings, and the steps a run reaches in a time budget, depend on all three."""
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """The system's load averages over 1, 5 and 15 minutes; ``None`` where it keeps none (Windows).
    A long benchmark takes it again at its end: a neighbour that came meanwhile shows there."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def peak_rss_mib() -> float | None:
    """This process's peak resident memory so far, in MiB; ``None`` where the system cannot say
    (Windows has no :mod:`resource`). ``ru_maxrss`` counts KiB on Linux but bytes on macOS.

    The peak rather than the current size: what a run needs the machine to hold, and the one
    figure every POSIX system gives (tracemalloc does not see torch's allocations)."""
    try:
        import resource
    except ImportError:
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
