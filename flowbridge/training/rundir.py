"""Owning a run directory while a run writes it: one run at a time, and no leftovers.

:func:`check_out` refuses a ``train.out`` that cannot become a run directory before any data
is loaded.

Two runs writing one ``train.out`` at once (a requeued job while the old one still runs, a
second terminal) would interleave their log records, and the checkpoint would be whichever
wrote last. :func:`locked` holds an exclusive ``flock`` on ``OUT/.lock`` for the span of a
run (on Windows, which has no flock, a lock of one byte of it); the kernel releases it when
the process ends, however it ends, so a killed run leaves no stale lock. A kill in the
middle of an atomic write leaves its hidden temporary file behind (as large as a
checkpoint); :func:`remove_stale_temp_files` removes those of the run's own files once the
lock says no other run can be writing them. And a trainer built before another run wrote
the directory must not overwrite that run's newer steps: :func:`stamp` tells a replaced
checkpoint from the one the trainer read.

:func:`hold_out` takes the directory for a (possibly data-parallel) run, and
:func:`prepare_out` readies it once held.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from .._warnings import warn
from ..checkpoint import CHECKPOINT_NAME
from ..distributed import Distributed
from ..files import atomic_write_text, nearest_existing, temp_files
from .runlog import LOG_NAME, RunLog

try:
    import fcntl
except ImportError:  # Windows: no flock, but msvcrt's byte-range locks
    fcntl = None
    import msvcrt

__all__ = [
    "CONFIG_NAME",
    "LOCK_NAME",
    "RunDirectoryInUse",
    "check_out",
    "check_unchanged",
    "hold_out",
    "locked",
    "prepare_out",
    "remove_stale_temp_files",
    "stamp",
]

LOCK_NAME = ".lock"
#: Where the Windows lock's byte lies: far past the holder's line, since a locked byte there
#: cannot be read by others (a lock may lie beyond the end of the file).
_WINDOWS_LOCK_OFFSET = 2**30
#: The run's settings as JSON: what ``flowbridge train OUT/config.json --resume`` reads.
CONFIG_NAME = "config.json"


class RunDirectoryInUse(FileExistsError):
    """Another run holds the run directory, or wrote its checkpoint after this trainer was
    built: this run did not start (nothing of it was trained or written)."""


def check_out(out: Path) -> None:
    """Refuse an ``out`` that cannot become the run's directory now (it is created later,
    when the run starts), not after the data has been loaded and collated."""
    existing = nearest_existing(out)
    if existing == out and not existing.is_dir():
        raise FileExistsError(
            f"train.out {str(out)!r} is a file, not a directory: choose a directory for the "
            f"run's checkpoint, log and config (--out DIR)"
        )
    if not existing.is_dir():
        raise NotADirectoryError(
            f"train.out {str(out)!r} cannot be created: {str(existing)!r} is a file; choose "
            f"another directory (--out DIR)"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(
            f"train.out {str(out)!r} cannot be written: no write permission for "
            f"{str(existing)!r}; choose another directory (--out DIR)"
        )


def stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when a file is replaced (inode, size, modification time); ``None``: none."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out`` (created if missing) for this process; the lock file records who holds it.

    Raises:
        RunDirectoryInUse: another process holds it; the message names its pid and host.
        FileExistsError: the lock file is a symbolic link.
    """
    out.mkdir(parents=True, exist_ok=True)
    _refuse_link(out / LOCK_NAME)
    with open(out / LOCK_NAME, "a+", encoding="utf-8") as file:  # closing it releases the lock
        held = False
        try:
            _lock(file)
            held = True
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "of unknown pid"
            raise RunDirectoryInUse(
                f"another run ({holder}) is using {out}: two runs would mix their log "
                f"records and overwrite each other's checkpoint; wait for it to end, stop "
                f"it, or choose another out directory"
            ) from None
        except OSError as exc:  # a file system without locks (some network mounts)
            warn(
                f"{out} cannot be locked ({exc.strerror or exc}): training without the "
                f"guard against a second run in the same directory",
            )
        file.seek(0)
        file.truncate()
        file.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        try:
            yield
        finally:
            if held and fcntl is None:
                _unlock_windows(file)


def _refuse_link(path: Path) -> None:
    """Refuse a symbolic link at a file the run writes in place (its lock file, truncated
    and rewritten; its log, appended to): a run directory from elsewhere could hold one to
    any file of the user's, which the run would then overwrite or create."""
    if path.is_symlink():
        raise FileExistsError(
            f"{path} is a symbolic link (to {os.readlink(path)}): a run writes this file "
            f"in place, so it would write the file the link points to; remove the link"
        )


def _lock(file) -> None:
    """Lock ``file`` for this process without waiting; ``BlockingIOError``: another process
    holds it."""
    if fcntl is not None:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return
    fd = file.fileno()
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)  # msvcrt locks from the position on
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except PermissionError:  # EACCES: a lock of another process
        raise BlockingIOError(f"{file.name} is locked") from None
    finally:
        os.lseek(fd, 0, os.SEEK_SET)


def _unlock_windows(file) -> None:
    """Let go of :func:`_lock`'s byte before the file closes: Windows may release a lock left
    to the close only later, and a run started right after would find the directory held."""
    fd = file.fileno()
    os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    finally:
        os.lseek(fd, 0, os.SEEK_SET)


def remove_stale_temp_files(out: Path, names: Iterable[str]) -> None:
    """Remove the temporary files that :func:`~flowbridge.files.atomic_write` left in ``out``
    for ``names`` when a kill cut a write short (only while :func:`locked` holds ``out``: a
    running run's write in progress looks the same)."""
    for name in names:
        for path in temp_files(out / name):
            path.unlink(missing_ok=True)


def check_unchanged(checkpoint: Path, seen: tuple[int, int, int] | None) -> None:
    """Refuse to run if another run wrote ``checkpoint`` after a trainer was built from what
    was there (its :func:`stamp` then, ``seen``; a Trainer built while that run still held
    the directory): going on would overwrite that run's newer steps with this one's."""
    if stamp(checkpoint) == seen:
        return
    raise RunDirectoryInUse(
        f"{checkpoint} was written by another run after this trainer was built "
        f"(from {'no checkpoint' if seen is None else 'an older one'}); "
        f"build the trainer again to resume what is there now (--resume, resume=True), "
        f"or choose another out directory"
    )


def hold_out(
    out: Path, dist: Distributed, device: torch.device, check: Callable[[], None]
) -> contextlib.ExitStack:
    """Lock ``out`` on rank 0 and run ``check`` there (closing the returned stack releases
    the lock). Every rank learns whether rank 0 got it, so that a refusal stops all of them,
    not rank 0 alone; on a refusal ``dist`` is closed."""
    held = contextlib.ExitStack()
    refusal = None
    try:
        if dist.is_main:
            try:
                held.enter_context(locked(out))
                _refuse_link(out / LOG_NAME)
                check()
            except Exception as exc:  # every rank must hear of it, whatever it is
                refusal = exc
        if dist.largest(int(refusal is not None), device):
            raise refusal or FileExistsError(
                f"rank 0 could not take the run directory {out} (see its error)"
            )
    except BaseException:
        held.close()
        dist.close()
        raise
    return held


def prepare_out(out: Path, log: RunLog, step: int, config: dict[str, Any]) -> None:
    """With ``out`` locked (rank 0): remove what killed writes left, make ``log`` this run's
    (cut back to ``step``, or a new one), and record the run's ``config`` (a plain dict)."""
    remove_stale_temp_files(out, (CHECKPOINT_NAME, CONFIG_NAME, log.path.name))
    if step:
        log.truncate(step)
    else:
        log.set_aside_abandoned()
    atomic_write_text(out / CONFIG_NAME, json.dumps(config, indent=2))
