"""Owning a run directory while a run writes it: one run at a time, and no leftovers.

Two runs writing one ``train.out`` at once (a requeued job while the old one still runs, a
second terminal) would interleave their log records, and the checkpoint would be whichever
wrote last. :func:`locked` holds an exclusive ``flock`` on ``OUT/.lock`` for the span of a
run; the kernel releases it when the process ends, however it ends, so a killed run leaves no
stale lock. A kill in the middle of an atomic write leaves its hidden temporary file behind
(as large as a checkpoint); :func:`remove_stale_temp_files` removes those of the run's own
files once the lock says no other run can be writing them.
"""

from __future__ import annotations

import contextlib
import os
import socket
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..files import temp_files

try:
    import fcntl
except ImportError:  # Windows: no flock, and no lock
    fcntl = None

__all__ = ["LOCK_NAME", "locked", "remove_stale_temp_files"]

LOCK_NAME = ".lock"


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out`` (created if missing) for this process; the lock file records who holds it.

    Raises:
        FileExistsError: another process holds it; the message names its pid and host.
    """
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK_NAME, "a+", encoding="utf-8") as file:  # closing it releases the lock
        if fcntl is not None:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                file.seek(0)
                holder = file.read().strip() or "of unknown pid"
                raise FileExistsError(
                    f"another run ({holder}) is using {out}: two runs would mix their log "
                    f"records and overwrite each other's checkpoint; wait for it to end, stop "
                    f"it, or choose another out directory"
                ) from None
            except OSError as exc:  # a file system without locks (some network mounts)
                warnings.warn(
                    f"{out} cannot be locked ({exc.strerror or exc}): training without the "
                    f"guard against a second run in the same directory",
                    stacklevel=4,
                )
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        yield


def remove_stale_temp_files(out: Path, names: Iterable[str]) -> None:
    """Remove the temporary files that :func:`~flowbridge.files.atomic_write` left in ``out``
    for ``names`` when a kill cut a write short (only while :func:`locked` holds ``out``: a
    running run's write in progress looks the same)."""
    for name in names:
        for path in temp_files(out / name):
            path.unlink(missing_ok=True)
