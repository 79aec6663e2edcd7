"""Plugin discovery and the domain and dataset registries.

Plugins are modules (or objects) with ``@flowbridge.hookimpl`` functions. They are found
through the ``flowbridge`` entry-point group the first time a registry is needed, or
registered in code with :func:`register`. ``FLOWBRIDGE_LOAD_PLUGINS`` picks which entry
points load: unset = all, empty = none, ``"image,text"`` = only those.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from .domain import Domain, PairedDataset

__all__ = [
    "PluginError",
    "get_plugin_manager",
    "register",
    "unregister",
    "domains",
    "datasets",
    "get_domain",
    "get_dataset",
]

ENTRY_POINT_GROUP = "flowbridge"
ENV_VAR = "FLOWBRIDGE_LOAD_PLUGINS"


class PluginError(RuntimeError):
    """A plugin failed to load, or registered something invalid. The message names it."""


_manager: pluggy.PluginManager | None = None


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    wanted = os.environ.get(ENV_VAR)
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} (entry point {ep.value!r}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        pm.register(plugin, name=ep.name)
    pm.check_pending()


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and entry points loaded) on first use."""
    global _manager
    if _manager is None:
        pm = pluggy.PluginManager("flowbridge")
        pm.add_hookspecs(hookspecs)
        _load_entry_points(pm)
        _manager = pm
    return _manager


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin object (a module or any object with hook implementations)."""
    pm = get_plugin_manager()
    registered = pm.register(plugin, name=name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        pm.unregister(plugin)
        raise PluginError(str(exc)) from exc
    return registered


def unregister(name: str) -> None:
    """Remove a plugin registered under ``name`` (no-op if there is none)."""
    pm = get_plugin_manager()
    if pm.get_plugin(name) is not None:
        pm.unregister(name=name)


def _collect(hook_name: str, base: type, what: str) -> dict[str, type]:
    pm = get_plugin_manager()
    found: dict[str, tuple[type, str]] = {}
    for impl in getattr(pm.hook, hook_name).get_hookimpls():
        plugin_name = impl.plugin_name

        def _register(cls: Any, _plugin: str = plugin_name) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(
                    f"plugin {_plugin!r} registered {cls!r} as a {what}, but it is not a "
                    f"subclass of flowbridge.{base.__name__}"
                )
            abstract = sorted(getattr(cls, "__abstractmethods__", ()))
            if abstract:
                raise PluginError(
                    f"plugin {_plugin!r}: {what} {cls.__name__} does not implement {abstract}"
                )
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {_plugin!r}: {what} {cls.__name__} has no name")
            if name in found:
                raise PluginError(
                    f"plugin {_plugin!r} registered {what} {name!r}, which plugin "
                    f"{found[name][1]!r} already registered"
                )
            found[name] = (cls, _plugin)

        try:
            impl.function(_register)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {plugin_name!r} failed in {hook_name}: {type(exc).__name__}: {exc}"
            ) from exc
    return {name: cls for name, (cls, _) in sorted(found.items())}


def domains() -> dict[str, type[Domain]]:
    """All registered domain classes by name."""
    return _collect("flowbridge_register_domains", Domain, "domain")


def datasets() -> dict[str, type[PairedDataset]]:
    """All registered dataset classes by name."""
    return _collect("flowbridge_register_datasets", PairedDataset, "dataset")


def _get(registry: Callable[[], dict[str, type]], what: str, name: str, options: dict):
    known = registry()
    if name not in known:
        hint = ", ".join(known) or "none (is the plugin installed, or FLOWBRIDGE_LOAD_PLUGINS set?)"
        raise KeyError(f"unknown {what} {name!r}; registered {what}s: {hint}")
    return known[name](**options)


def get_domain(name: str, **options: Any) -> Domain:
    """Instantiate the domain registered as ``name`` with its options."""
    return _get(domains, "domain", name, options)


def get_dataset(name: str, **options: Any) -> PairedDataset:
    """Instantiate the dataset registered as ``name`` with its options."""
    return _get(datasets, "dataset", name, options)
