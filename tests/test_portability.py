"""What differs on the machines researchers use (macOS, Windows) and can be checked here."""

from __future__ import annotations

import ast
import errno
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Folders of the repository that hold no source of its own (and hidden ones: .venv, .git).
SKIPPED = {"build", "dist", "node_modules"}


def _sources() -> list[Path]:
    return sorted(
        path
        for path in ROOT.rglob("*.py")
        if not any(
            part in SKIPPED or part.startswith(".") or part.endswith(".egg-info")
            for part in path.relative_to(ROOT).parts
        )
    )


def _text_opens_without_encoding(path: Path) -> list[str]:
    """``open(...)``, ``Path.open(...)``, ``read_text()`` and ``write_text()`` of text with
    no ``encoding=`` in ``path``'s code (binary modes and ``os.open`` are no text)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or any(k.arg == "encoding" for k in node.keywords):
            continue
        func = node.func
        name = getattr(func, "attr", getattr(func, "id", None))
        owner = getattr(getattr(func, "value", None), "id", None)
        if name in ("read_text", "write_text"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}()")
        elif name == "open" and owner not in ("os", "Image", "zipfile", "tarfile", "gzip"):
            # open(file, mode) and io.open(file, mode); a Path's .open(mode)
            method = isinstance(func, ast.Attribute) and owner != "io"
            args = node.args[0 if method else 1 :]
            mode = (
                args[0] if args else next((k.value for k in node.keywords if k.arg == "mode"), None)
            )
            if not (isinstance(mode, ast.Constant) and "b" in mode.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: open()")
    return found


def test_every_text_file_is_opened_with_an_encoding():
    """Without ``encoding=`` Python reads and writes text in the locale's encoding: cp1252 on
    Windows, where the UTF-8 that flowbridge writes (logs, reports, READMEs with →, ⁻¹)
    reads as other characters or fails to decode."""
    sources = _sources()
    assert ROOT / "flowbridge" / "files.py" in sources
    assert [found for path in sources for found in _text_opens_without_encoding(path)] == []


@pytest.mark.skipif(sys.platform == "win32", reason="Windows runs the real msvcrt in every test")
def test_a_run_directory_is_locked_on_windows_too(tmp_path, monkeypatch):
    """Without fcntl the lock is msvcrt's, of one byte far past the holder's line (a locked
    byte cannot be read there), so that a second run learns who holds the directory."""
    import fcntl

    from flowbridge.training import rundir

    class Msvcrt:  # what Windows' msvcrt.locking does, by flock
        LK_UNLCK, LK_NBLCK = 0, 2
        unlocked = 0

        @staticmethod
        def locking(fd, mode, nbytes):
            assert mode in (Msvcrt.LK_NBLCK, Msvcrt.LK_UNLCK) and nbytes == 1
            assert os.lseek(fd, 0, os.SEEK_CUR) > 1000  # past the holder's line
            if mode == Msvcrt.LK_UNLCK:
                Msvcrt.unlocked += 1
                fcntl.flock(fd, fcntl.LOCK_UN)
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PermissionError(errno.EACCES, "Permission denied") from None

    monkeypatch.setattr(rundir, "fcntl", None)
    monkeypatch.setattr(rundir, "msvcrt", Msvcrt, raising=False)
    held = rf"another run \(pid {os.getpid()} "
    with rundir.locked(tmp_path), pytest.raises(rundir.RunDirectoryInUse, match=held):
        rundir.locked(tmp_path).__enter__()
    assert Msvcrt.unlocked == 1  # unlocked before the close, not left to it
    with rundir.locked(tmp_path):  # let go of on the way out
        pass
    assert Msvcrt.unlocked == 2
