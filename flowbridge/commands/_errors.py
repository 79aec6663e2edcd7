"""How subcommands report a user's mistake: one line on stderr and exit code 2, no traceback.

``FLOWBRIDGE_DEBUG=1`` re-raises instead, for the traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

from ..checkpoint import CheckpointError
from ..config import ConfigError
from ..plugins import PluginError

__all__ = ["USER_ERRORS", "one_line_warnings", "report"]

#: Errors that mean "the input was wrong" (files, configs, names, values), not a crash. The
#: OSErrors are those of a path the user gave (a file where a directory belongs, no write
#: permission), not of the machine (a full disk stays a traceback).
USER_ERRORS = (
    ConfigError,
    CheckpointError,
    PluginError,
    KeyError,
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
    ValueError,
    TypeError,
)


def report(command: str, exc: BaseException, code: int = 2, program: str = "flowbridge") -> int:
    """Print ``PROGRAM COMMAND: error: ...`` for ``exc`` and return the exit code (a plugin's
    own command, e.g. ``flowbridge-coco``, passes its name as ``program``)."""
    if os.environ.get("FLOWBRIDGE_DEBUG"):
        raise exc
    # str(KeyError("x")) is "'x'": the message itself reads better.
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    # Notes say where it happened (which domain, which split): on the same line.
    notes = getattr(exc, "__notes__", ())
    message = " ".join([str(message), *(" ".join(str(note).split()) for note in notes)])
    if isinstance(exc, PluginError) and _raised_in_plugin_code(exc):
        # Its author needs the file and line.
        message += " (FLOWBRIDGE_DEBUG=1 shows the traceback)"
    print(f"{program} {command}: error: {message}", file=sys.stderr)
    return code


def _raised_in_plugin_code(exc: PluginError) -> bool:
    """Whether a plugin error was caused by an exception of the plugin's own code (an import
    or a hook that raised), not only by the registry's own checks."""
    cause = exc.__cause__
    while cause is not None:
        if not isinstance(cause, PluginError):
            return True
        cause = cause.__cause__
    return False


@contextlib.contextmanager
def one_line_warnings(command: str, program: str = "flowbridge") -> Iterator[None]:
    """Show the warnings raised inside as ``PROGRAM COMMAND: warning: ...``, one line each as
    errors are reported, instead of Python's ``file.py:92: UserWarning:`` and a source line
    of flowbridge's own code (which the user did not write)."""
    with warnings.catch_warnings():

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            print(f"{program} {command}: warning: {message}", file=sys.stderr)

        warnings.showwarning = show
        yield
