"""Writing files so that a reader never sees half of one, and telling a damaged one."""

from __future__ import annotations

import contextlib
import os
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

__all__ = [
    "atomic_write",
    "atomic_write_text",
    "check_parent",
    "damaged_part",
    "nearest_existing",
    "suffixed",
    "temp_files",
]


def nearest_existing(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists (``.`` or ``/`` at the latest): what
    decides whether ``path`` can be created as a directory."""
    return next(p for p in (path, *path.parents) if p.exists())


def suffixed(path: str | os.PathLike[str], suffix: str) -> Path:
    """``path`` plus ``suffix`` (e.g. ``".png"``), unless its name ends with it already: what a
    domain's ``write_items`` writes to. Unlike :meth:`Path.with_suffix`, a dot in the name is
    kept, so ``results.v1`` and ``results.v2`` stay two files (``results.v1.png``,
    ``results.v2.png``) instead of both becoming ``results.png``."""
    path = Path(path)
    return path if path.name.endswith(suffix) else path.with_name(path.name + suffix)


_TEMP_SUFFIX = ".tmp"


def temp_files(path: str | Path) -> list[Path]:
    """The temporary files :func:`atomic_write` has beside ``path``: a write in progress, or
    one a kill cut short (named ``.<name>.<random>.tmp``)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.name}.*{_TEMP_SUFFIX}"))


def check_parent(path: str | Path) -> None:
    """Refuse ``path`` at once if a file stands where one of its folders belongs, naming that
    file (``NotADirectoryError``); ``mkdir`` would only say "File exists"."""
    path = Path(path)
    blocking = nearest_existing(path.parent)
    if not blocking.is_dir():
        raise NotADirectoryError(
            f"cannot write {str(path)!r}: {str(blocking)!r} is a file, not a directory"
        )


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """:func:`atomic_write` of ``text`` in UTF-8 (a report, a JSON file)."""
    data = text.encode("utf-8")
    return atomic_write(path, lambda file: file.write(data))


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file so that readers see either the old content or the new, never a part.

    ``write(file)`` fills a temporary file in the same directory (what it returns is
    ignored: ``lambda file: file.write(data)`` will do), which is flushed, fsynced
    and moved over ``path`` with :func:`os.replace` (atomic on POSIX and Windows). Missing
    folders are created; a file where a folder belongs, or a folder at ``path``, is refused
    before anything is written (``NotADirectoryError``, ``IsADirectoryError``).
    """
    path = Path(path)
    check_parent(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TEMP_SUFFIX)
    try:
        os.chmod(temp, 0o644)  # mkstemp makes the file private; results are meant to be read
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        # A full disk's "[Errno 28] No space left on device" names no file (torch.save
        # writes through a file object): say which.
        if isinstance(exc, OSError) and exc.filename is None:
            from .checks import add_note  # here: this module is read without torch

            add_note(exc, f"(writing {path})")
        raise
    # The rename itself is durable only once the directory entry is on disk.
    if hasattr(os, "O_DIRECTORY"):
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def damaged_part(path: str | Path) -> str | None:
    """The first part of the zip archive at ``path`` (what ``torch.save`` writes) whose bytes
    fail its CRC, ``"the zip directory"`` where the archive's directory is missing or does
    not read, or ``None`` for an intact one.

    ``torch.load`` checks no CRC: bytes changed on the disk (or in a copy) load as other
    numbers without a word. An archive written with torch's
    ``serialization.config.save.compute_crc32 = False`` has every CRC 0: nothing to check.
    """
    try:
        if not zipfile.is_zipfile(path):
            return "the zip directory"
        with zipfile.ZipFile(path) as archive:
            checked = any(info.CRC for info in archive.infolist())
            return archive.testzip() if checked else None
    except Exception:  # noqa: BLE001 - whatever a damaged archive makes zipfile raise
        # One flipped bit in the archive's directory can make zipfile misread it: "zipfiles
        # that span multiple disks are not supported", an unknown compression method, an
        # "encrypted" flag, a zlib error.
        return "the zip directory"
