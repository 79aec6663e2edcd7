"""``flowbridge plugins [--all]``: the loaded plugins as JSON.

One object per plugin, sorted by name::

    {"name": "signals", "version": "0.1.0", "hooks": [...], "domains": ["signal"],
     "datasets": ["chords"]}

``--all`` adds where each plugin comes from (``distribution``, ``module``) and a ``classes``
list describing every class it registered: ``kind`` (domain or dataset), ``name``, ``class``
(``module:QualName``), the first line of its docstring, its constructor options with their
defaults, and ``default_residual_features`` (domains) or ``domains`` and ``splits`` (datasets).
The plugins listed are those ``FLOWBRIDGE_LOAD_PLUGINS`` lets load. An installed plugin that
fails to load is listed too, with an ``error`` saying why and which distribution installed it
(also printed on stderr, and the exit status is 1): the command that diagnoses a broken
install must not be stopped by it.

Like every command module, this one imports torch (through the plugins) only when it runs, so
that ``flowbridge --help`` does not wait for it.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..plugins import PluginInfo

__all__ = ["add_parser", "run", "describe_plugin"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins, their hooks and what they register (JSON)",
        description="Print the loaded flowbridge plugins as JSON.",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also describe every registered class: module path, docstring, options, sizes",
    )
    parser.set_defaults(func=run)


def _options(cls: type) -> dict[str, Any]:
    """Constructor keyword options and their defaults (``None`` where there is none)."""
    from ..plugins import constructor_options

    named, _ = constructor_options(cls)
    return {
        name: None if default is inspect.Parameter.empty else default
        for name, default in named.items()
    }


def _describe_class(kind: str, cls: type) -> dict[str, Any]:
    from ..domain import Domain

    doc = inspect.getdoc(cls) or ""
    row: dict[str, Any] = {
        "kind": kind,
        "name": cls.name,
        "class": f"{cls.__module__}:{cls.__qualname__}",
        "doc": doc.splitlines()[0] if doc else None,
        "options": _options(cls),
    }
    if issubclass(cls, Domain):
        row["default_residual_features"] = cls.default_residual_features
    else:
        row["domains"] = list(cls.domains)
        row["splits"] = list(cls.splits)
    return row


def describe_plugin(info: PluginInfo, details: bool = False) -> dict[str, Any]:
    """The JSON object ``flowbridge plugins`` prints for one plugin."""
    row: dict[str, Any] = {
        "name": info.name,
        "version": info.version,
        "hooks": list(info.hooks),
        "domains": list(info.domains),
        "datasets": list(info.datasets),
    }
    if details:
        row["distribution"] = info.distribution
        row["module"] = _module(info.plugin)
        row["classes"] = [_describe_class("domain", c) for c in info.domains.values()] + [
            _describe_class("dataset", c) for c in info.datasets.values()
        ]
    if info.error is not None:
        row["error"] = info.error
    return row


def _module(plugin: object) -> str | None:
    """The module of a plugin object; ``None`` for a plugin that failed to load (no object)."""
    if plugin is None:
        return None
    return getattr(plugin, "__name__", None) or type(plugin).__module__


def run(args: argparse.Namespace) -> int:
    from ..plugins import PluginError, current
    from ._errors import report

    try:
        infos = current().plugins(include_broken=True)
    except PluginError as exc:  # FLOWBRIDGE_LOAD_PLUGINS names a plugin that is not installed
        return report("plugins", exc, 1)
    # default=repr: an option default that JSON cannot hold is shown rather than crashing.
    print(json.dumps([describe_plugin(i, args.all) for i in infos], indent=2, default=repr))
    broken = [info for info in infos if info.error is not None]
    for info in broken:
        print(f"flowbridge plugins: {info.error}", file=sys.stderr)
    return 1 if broken else 0
