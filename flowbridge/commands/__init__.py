"""Subcommands of the ``flowbridge`` command line, one module each (see ``flowbridge.cli``)."""

import argparse
import json
import os
import select
import sys
from collections.abc import Callable

__all__ = [
    "add_command",
    "add_option_argument",
    "key_value",
    "non_negative_float",
    "option_dict",
    "positive_int",
    "run_main",
]


def run_main(main: Callable[[], int]) -> int:
    """Run a command line's ``main`` and return its exit code; the ways out that are no
    crash get no traceback: Ctrl-C (also while torch is still being imported, the first
    seconds) prints ``interrupted`` (130), and a reader that closed the output early
    (``flowbridge plugins | head``) ends the command quietly (141, as a shell's SIGPIPE)."""
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_closed():  # a pipe of the command's own (a plugin's subprocess)
            raise
        # Python would flush stdout again at exit and fail the same way: point it elsewhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _stdout_closed() -> bool:
    """Whether the reader of standard output has gone: a pipe whose other end is closed
    polls as an error on Linux, as a hang-up on macOS and the BSDs (and a socket's, on
    Linux too). Without a real standard output (a notebook's) no; where poll cannot tell
    (Windows), yes."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    if not hasattr(select, "poll"):
        return True
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def add_command(
    subparsers: argparse._SubParsersAction, name: str, *, help: str, description: str, examples: str
) -> argparse.ArgumentParser:
    """Register subcommand ``name``, its ``--help`` ending with ``examples`` as written: the
    examples are command lines laid out in columns, which argparse's default formatter would
    refill into one paragraph."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description,
        epilog=examples,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def add_option_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """``--option KEY=VALUE``, repeatable: the options a command hands on to a domain, each
    parsed by :func:`key_value` into ``args.option``; :func:`option_dict` makes them one dict."""
    parser.add_argument(
        "--option",
        type=key_value,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help,
    )


def option_dict(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``--option`` pairs as keyword arguments; a key given twice is refused (which of the two
    was meant?)."""
    options: dict[str, object] = {}
    for key, value in pairs:
        if key in options:
            raise ValueError(f"--option {key} is given twice")
        options[key] = value
    return options


def key_value(text: str) -> tuple[str, object]:
    """An argparse type: ``KEY=VALUE`` of ``--option``, the value read as JSON (``5``, ``0.7``,
    ``true``, ``"x"``), else kept as the string it is (``method=beam``)."""
    key, equals, value = text.partition("=")
    if not equals or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE with KEY a Python name, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number >= 0."""
    value = float(text)
    if not value >= 0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    if value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value
