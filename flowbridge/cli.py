"""The ``flowbridge`` command: one subcommand per module in :mod:`flowbridge.commands`."""

from __future__ import annotations

import argparse
import importlib

from .commands import run_main

__all__ = ["main", "build_parser"]

# Each module defines ``add_parser(subparsers)`` that registers its subcommand and sets
# ``func`` (taking the parsed args, returning an exit code).
COMMANDS = (
    "flowbridge.commands.check_domain",
    "flowbridge.commands.plugins",
    "flowbridge.commands.train",
    "flowbridge.commands.translate",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowbridge",
        description="Latent normalizing flows for many-to-many cross-domain mappings.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        importlib.import_module(module).add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_args(argv)
        return int(args.func(args) or 0)

    return run_main(run)
