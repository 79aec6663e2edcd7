"""``flowbridge plugins``: list installed plugins as JSON."""

from __future__ import annotations

import json
from importlib import metadata


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed plugins, their hooks and what they register (JSON)",
        description="Print the installed flowbridge plugins as JSON.",
    )
    parser.set_defaults(func=run)


def _version(plugin_name: str, plugin: object) -> str | None:
    module = getattr(plugin, "__name__", type(plugin).__module__)
    try:
        dist = metadata.packages_distributions().get(module.split(".")[0], [None])[0]
        return metadata.version(dist) if dist else None
    except metadata.PackageNotFoundError:
        return None


def run(args) -> int:
    from ..plugins import datasets, domains, get_plugin_manager

    pm = get_plugin_manager()
    domain_names = {name: cls.__module__ for name, cls in domains().items()}
    dataset_names = {name: cls.__module__ for name, cls in datasets().items()}
    rows = []
    for name, plugin in sorted(pm.list_name_plugin()):
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        module = getattr(plugin, "__name__", "")
        rows.append(
            {
                "name": name,
                "version": _version(name, plugin),
                "hooks": hooks,
                "domains": sorted(n for n, m in domain_names.items() if m.startswith(module)),
                "datasets": sorted(n for n, m in dataset_names.items() if m.startswith(module)),
            }
        )
    print(json.dumps(rows, indent=2))
    return 0
