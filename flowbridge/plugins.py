"""Plugin discovery and the domain and dataset registries.

Plugins are modules (or objects) with ``@flowbridge.hookimpl`` functions (see
:mod:`flowbridge.hookspecs`). They come from the ``flowbridge`` entry-point group, loaded the
first time a registry is used, or are registered in code with :func:`register`.
``FLOWBRIDGE_LOAD_PLUGINS`` picks which entry points load: unset = all, empty = none,
``"image,text"`` = only those.

A plugin is validated as it registers: it must implement at least one hook, its hooks must be
known and marked and must return nothing, and each class it passes to ``register`` must be a
complete, well-named subclass of the right base (the checks: :mod:`flowbridge._plugin_checks`).
Any failure raises :class:`PluginError` naming the plugin and leaves no trace of it in the
registry. An installed plugin that fails to load does not stop the others from loading, but the
registry then refuses to be used: one :class:`PluginError` names every broken plugin and the
distribution that installed it (:meth:`Registry.plugins` can list them instead, with their
errors).

Tests and notebooks that register plugins in code use :func:`isolated`, which swaps in a fresh
:class:`Registry` so that registrations do not leak::

    with flowbridge.plugins.isolated(my_plugin) as registry:
        domain = registry.get_domain("signal")
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import pluggy

from . import hookspecs
from ._plugin_checks import (
    DATASET,
    DOMAIN,
    KINDS,
    NAME_PATTERN,
    Kind,
    MissingOptionError,
    PluginError,
    UnknownNameError,
    UnknownOptionError,
    check_class,
    check_options,
    check_unmarked,
    constructor_options,
    describe,
    did_you_mean,
    options_signature,
    refuse_unknown_options,
)
from .domain import Domain, PairedDataset

__all__ = [
    "ENTRY_POINT_GROUP",
    "ENV_VAR",
    "NAME_PATTERN",
    "MissingOptionError",
    "PluginError",
    "UnknownNameError",
    "UnknownOptionError",
    "PluginInfo",
    "Registry",
    "current",
    "isolated",
    "get_plugin_manager",
    "register",
    "unregister",
    "domains",
    "datasets",
    "get_domain",
    "get_dataset",
    "constructor_options",
    "options_signature",
    "refuse_unknown_options",
    "distribution_of",
]

ENTRY_POINT_GROUP = "flowbridge"
ENV_VAR = "FLOWBRIDGE_LOAD_PLUGINS"


@dataclass(frozen=True)
class PluginInfo:
    """What :meth:`Registry.plugins` reports about one registered plugin.

    Attributes:
        name: the plugin's registered name (its entry-point name when installed).
        plugin: the plugin object (usually a module).
        hooks: names of the hooks it implements.
        domains, datasets: the classes it registered, by name.
        distribution: the installed distribution that provides it, if any.
        version: that distribution's version, if any.
        error: for an installed plugin that failed to load (listed only on request, see
            :meth:`Registry.plugins`): why, and which distribution installed it; ``None`` for
            a loaded one, which is the only kind to have a ``plugin`` object.
    """

    name: str
    plugin: object
    hooks: tuple[str, ...]
    domains: dict[str, type[Domain]]
    datasets: dict[str, type[PairedDataset]]
    distribution: str | None
    version: str | None
    error: str | None = None


def _entry_points() -> Iterable[metadata.EntryPoint]:
    """The installed entry points of the ``flowbridge`` group (tests replace this)."""
    return metadata.entry_points(group=ENTRY_POINT_GROUP)


@functools.lru_cache(maxsize=1)
def _packages_distributions() -> dict[str, list[str]]:
    # Reads every installed distribution's file list: once per process.
    return metadata.packages_distributions()


def distribution_of(module: str) -> metadata.Distribution | None:
    """The installed distribution whose top-level package holds ``module`` (a dotted module
    name), if any: what shipped a plugin or a domain class."""
    for name in _packages_distributions().get(module.split(".")[0], []):
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.distribution(name)
    return None


def _name_of(dist: metadata.Distribution | None) -> str | None:
    return dist.metadata["Name"] if dist else None


def _distribution_name(entry_point: metadata.EntryPoint) -> str | None:
    """The name of the distribution that installed ``entry_point`` (what to uninstall)."""
    return _name_of(getattr(entry_point, "dist", None))


def _shipped_by(dist: metadata.Distribution | None) -> dict[str, str | None]:
    """``PluginInfo``'s ``distribution`` and ``version`` fields for ``dist`` (or none)."""
    return {"distribution": _name_of(dist), "version": dist.version if dist else None}


@dataclass(frozen=True)
class _Failure:
    """An installed plugin that failed to load: its entry point(s), more than one when
    several claim its name, and the error."""

    entry_points: tuple[metadata.EntryPoint, ...]
    error: PluginError

    @property
    def distributions(self) -> list[str]:
        return sorted({name for name in map(_distribution_name, self.entry_points) if name})

    def __str__(self) -> str:
        by = f" (installed by {', '.join(self.distributions)})" if self.distributions else ""
        return f"{self.error}{by}"


class _NameClash(PluginError):
    """A plugin registered ``what`` ``name`` (e.g. domain 'text'), which plugin ``other`` had
    registered first."""

    def __init__(self, message: str, what: str, name: str, other: str):
        super().__init__(message)
        self.what, self.name, self.other = what, name, other


def _wanted_entry_points() -> set[str] | None:
    """Names listed in ``FLOWBRIDGE_LOAD_PLUGINS``; ``None`` when it is unset (load all)."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class Registry:
    """A pluggy plugin manager plus the validated domain and dataset registries.

    Args:
        entry_points: load the installed ``flowbridge`` entry points (filtered by
            ``FLOWBRIDGE_LOAD_PLUGINS``) the first time the registry is used.
    """

    def __init__(self, entry_points: bool = True):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT)
        self._pm.add_hookspecs(hookspecs)
        self._entry_points_pending = entry_points
        # name -> (class, plugin name) per kind; plugin name -> the entry point that loaded it
        # (for plugins registered in code: none).
        self._tables: dict[str, dict[str, tuple[type, str]]] = {k.what: {} for k in KINDS}
        self._loaded_from: dict[str, metadata.EntryPoint] = {}
        # Installed plugins that failed to load, by name (kept for the next try).
        self._broken: dict[str, _Failure] = {}

    # -- loading ---------------------------------------------------------------------------
    def _load_entry_points(self, *, strict: bool = True) -> None:
        """Load the entry points not loaded yet. A broken plugin does not stop the others
        from loading; then, if ``strict``, one error names every broken plugin: a registry
        missing a plugin would answer an unknown name, or another plugin's class, with no word
        of why."""
        if self._entry_points_pending:
            self._broken = self._try_entry_points()
            # Only a complete pass counts: a broken plugin keeps failing until it is fixed.
            self._entry_points_pending = bool(self._broken)
        if strict and self._broken:
            # A clash between two plugins is one failure, under both their names.
            named = [self._broken[name] for name in sorted(self._broken)]
            failures = list({id(failure): failure for failure in named}.values())
            raise self._broken_error(failures) from failures[0].error

    def _try_entry_points(self) -> dict[str, _Failure]:
        """Load every wanted entry point that is not loaded yet; return the failures by name."""
        wanted = _wanted_entry_points()
        found = list(_entry_points())
        names = [ep.name for ep in found]
        if wanted is not None and wanted - set(names):
            raise PluginError(
                f"{ENV_VAR} names plugins that are not installed: "
                f"{', '.join(sorted(wanted - set(names)))}; installed: "
                f"{', '.join(sorted(names)) or 'none'}. Fix the list or install them."
            )
        broken: dict[str, _Failure] = {}
        for ep in found:
            if (wanted is not None and ep.name not in wanted) or ep.name in broken:
                continue
            if self._pm.has_plugin(ep.name):
                continue  # loaded by an earlier pass that found a broken plugin
            same_name = tuple(e for e in found if e.name == ep.name)
            try:
                self._load_entry_point(same_name)
            except _NameClash as exc:
                broken[ep.name] = _Failure(same_name, exc)
                if exc.other in self._loaded_from:
                    self._claimed_by_several(exc, same_name, broken)
            except PluginError as exc:
                broken[ep.name] = _Failure(same_name, exc)
        # The first of several claimants stayed registered for the pass (so that a third
        # claimant clashed too); none of them owns the name.
        for name in broken:
            if self._pm.has_plugin(name):
                self._remove(name)
        return broken

    def _claimed_by_several(
        self,
        clash: _NameClash,
        same_name: tuple[metadata.EntryPoint, ...],
        broken: dict[str, _Failure],
    ) -> None:
        """Installed plugins that claim one name: none of them owns it, whichever happened
        to load first, so all are out until one is left; one failure, under every name."""
        earlier = broken.get(clash.other)
        if earlier is None or not isinstance(earlier.error, _NameClash):
            earlier = _Failure((self._loaded_from[clash.other],), clash)
        entry_points = (*earlier.entry_points, *same_name)
        claimants = [ep.name for ep in entry_points]
        error = _NameClash(
            f"plugins {', '.join(map(repr, claimants))} "
            f"{'both' if len(claimants) == 2 else 'all'} register {clash.what} {clash.name!r}; "
            f"{clash.what} names must be unique: rename all but one (the name attribute of "
            f"the registered class)",
            clash.what,
            clash.name,
            clash.other,
        )
        failure = _Failure(entry_points, error)
        for name in claimants:
            broken[name] = failure

    def _load_entry_point(self, same_name: tuple[metadata.EntryPoint, ...]) -> None:
        """Load and register the plugin of the entry points named alike (one, unless broken)."""
        ep = same_name[0]
        if len(same_name) > 1:
            raise PluginError(
                f"plugin {ep.name!r} is provided by several entry points "
                f"({', '.join(sorted(e.value for e in same_name))}); uninstall all but one"
            )
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} (module {ep.value!r}) failed to import: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        self._add(plugin, ep.name, ep)

    def _broken_error(self, failures: list[_Failure]) -> PluginError:
        """One error for every broken plugin, with what to uninstall and how to do without."""
        them = "it" if len(failures) == 1 else "them"
        # Where several distributions claim one name, removing one of them is the fix.
        alone = sorted({f.distributions[0] for f in failures if len(f.distributions) == 1})
        remedies = [f"pip uninstall {' '.join(alone)}"] if alone else []
        loaded = list(self._loaded_from)
        remedies += [
            # Loading one claimant with the plugins that loaded keeps the name's owner.
            f"keep one of {', '.join(f.distributions[:-1])} and {f.distributions[-1]}, or "
            f"load one: {ENV_VAR}={','.join(sorted([*loaded, first]))!r}"
            for f in failures
            if len(f.distributions) > 1
            for first in [min(ep.name for ep in f.entry_points)]
        ]
        fix = (
            f"Fix or uninstall {them}"
            + (f" ({'; '.join(remedies)})" if remedies else "")
            + f", or leave {them} out: {ENV_VAR}={','.join(sorted(self._loaded_from))!r}"
        )
        if len(failures) == 1:
            return PluginError(f"{failures[0]}. {fix}.")
        listed = "".join(f"\n  {failure}" for failure in failures)
        return PluginError(f"{len(failures)} installed plugins failed to load:{listed}\n{fix}.")

    def _add(self, plugin: object, name: str, entry_point: metadata.EntryPoint | None) -> None:
        check_unmarked(plugin, name)
        try:
            self._pm.register(plugin, name=name)
        except (ValueError, pluggy.PluginValidationError) as exc:
            detail = str(exc).replace("\n", "; ")  # pluggy's messages span lines
            raise PluginError(f"plugin {name!r} cannot be registered: {detail}") from exc
        try:
            try:
                self._pm.check_pending()
            except pluggy.PluginValidationError as exc:
                known = ", ".join(sorted(self.hook_names))
                raise PluginError(
                    f"plugin {name!r}: {exc}; the hooks are: {known} (a typo in a hook name?)"
                ) from exc
            if not self._pm.get_hookcallers(plugin):
                # Often the wrong module of the package: say so now, not "unknown domain" later.
                fix = (
                    f"make the entry point {entry_point.name} = {entry_point.value!r} name"
                    if entry_point is not None
                    else "register"
                )
                raise PluginError(
                    f"plugin {name!r} ({describe(plugin)}) implements none of the hooks "
                    f"({', '.join(self.hook_names)}), so it would register nothing; {fix} the "
                    f"module that defines the @flowbridge.hookimpl functions"
                )
            for kind in KINDS:
                self._collect(kind, plugin, name)
        except BaseException:
            self._remove(name)
            raise
        if entry_point is not None:
            self._loaded_from[name] = entry_point

    def _collect(self, kind: Kind, plugin: object, plugin_name: str) -> None:
        """Run ``plugin``'s hook for ``kind`` alone and add what it registers."""
        table = self._tables[kind.what]

        def register(cls: Any) -> None:
            name = check_class(cls, kind, plugin_name)
            if name in table:
                other_cls, other = table[name]
                by = "itself" if other == plugin_name else f"plugin {other!r}"
                message = (
                    f"plugin {plugin_name!r} registered {kind.what} {name!r} "
                    f"({cls.__qualname__}), but {by} already registered that name "
                    f"({other_cls.__qualname__}); {kind.what} names must be unique"
                )
                if other == plugin_name:
                    raise PluginError(message)
                raise _NameClash(message, kind.what, name, other)
            table[name] = (cls, plugin_name)

        others = [p for p in self._pm.get_plugins() if p is not plugin]
        caller = self._pm.subset_hook_caller(kind.hook, remove_plugins=others)
        try:
            # pluggy collects the hook's return value unless it is None.
            returned = caller(register=register)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {plugin_name!r} failed in {kind.hook}: {type(exc).__name__}: {exc}"
            ) from exc
        if returned:
            raise PluginError(
                f"plugin {plugin_name!r}: {kind.hook} returned {returned[0]!r}, but hooks "
                f"return nothing; call register(cls) once per class instead"
            )

    def _remove(self, name: str) -> None:
        self._pm.unregister(name=name)
        self._loaded_from.pop(name, None)
        for table in self._tables.values():
            for key in [k for k, (_, owner) in table.items() if owner == name]:
                del table[key]

    # -- public API ------------------------------------------------------------------------
    @property
    def manager(self) -> pluggy.PluginManager:
        """The pluggy manager (entry points loaded)."""
        self._load_entry_points()
        return self._pm

    @property
    def hook_names(self) -> list[str]:
        """Names of every hook a plugin may implement."""
        # pluggy also keeps a caller, without a spec, for each unknown hook a plugin named.
        return sorted(k for k, caller in vars(self._pm.hook).items() if caller.spec is not None)

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object (a module or any object with hook implementations).

        Its hooks run at once, so every class it registers is validated here.

        Args:
            plugin: the plugin.
            name: its name; default: the plugin's ``__name__`` (a module's dotted name).

        Returns:
            The name it is registered under.

        Raises:
            PluginError: the plugin is already registered (under any name, e.g. by its entry
                point), the name is taken, or the plugin is invalid (nothing is registered).
        """
        self._load_entry_points()
        if name is None:
            name = getattr(plugin, "__name__", None) or type(plugin).__name__
        if self._pm.is_registered(plugin):
            existing = self._pm.get_name(plugin)
            raise PluginError(
                f"plugin {name!r}: {describe(plugin)} is already registered as {existing!r}"
                f"{self._origin(existing)}; it needs no second registration (to register it "
                f"again, unregister({existing!r}) first)"
            )
        if self._pm.has_plugin(name):
            other = self._pm.get_plugin(name)
            raise PluginError(
                f"plugin {name!r}: that name is taken by {describe(other)}{self._origin(name)}; "
                f"pass another name, or unregister({name!r}) first (tests: use "
                f"flowbridge.plugins.isolated() for a fresh registry)"
            )
        self._add(plugin, name, entry_point=None)
        return name

    def _origin(self, name: str) -> str:
        """`` (loaded by the entry point ...)`` for a plugin an entry point loaded, else ``""``."""
        entry_point = self._loaded_from.get(name)
        if entry_point is None:
            return ""
        dist = _distribution_name(entry_point)
        by = f" of {dist}" if dist else ""
        return f" (loaded by the entry point {entry_point.name} = {entry_point.value!r}{by})"

    def unregister(self, name: str) -> bool:
        """Remove the plugin registered as ``name`` and everything it registered.

        Returns:
            Whether there was one: ``False`` (nothing removed) for a name no plugin has. A
            plugin loaded by an entry point goes by the entry point's name (see
            :meth:`plugins`), not its module's.
        """
        self._load_entry_points()
        if not self._pm.has_plugin(name):
            return False
        self._remove(name)
        return True

    def _table(self, kind: Kind) -> dict[str, type]:
        self._load_entry_points()
        return {name: cls for name, (cls, _) in sorted(self._tables[kind.what].items())}

    def domains(self) -> dict[str, type[Domain]]:
        """All registered domain classes by name, sorted."""
        return self._table(DOMAIN)

    def datasets(self) -> dict[str, type[PairedDataset]]:
        """All registered dataset classes by name, sorted."""
        return self._table(DATASET)

    def _get(self, kind: Kind, name: str, options: dict[str, Any]) -> Any:
        known = self._table(kind)
        if name not in known:
            listed = ", ".join(known) or (
                f"none (is the plugin installed? is {ENV_VAR} set to leave it out?)"
            )
            raise UnknownNameError(
                f"unknown {kind.what} {name!r}{did_you_mean(name, known)}; registered: {listed}"
            )
        check_options(kind, name, known[name], options)
        return known[name](**options)

    def get_domain(self, name: str, **options: Any) -> Domain:
        """Instantiate the domain registered as ``name`` with its options.

        Raises:
            UnknownNameError: no domain has that name (the message lists those that do).
            UnknownOptionError: its constructor takes no option of one of these names (the
                message lists those it takes).
            MissingOptionError: its constructor requires an option that is not given.
        """
        return self._get(DOMAIN, name, options)

    def get_dataset(self, name: str, **options: Any) -> PairedDataset:
        """Instantiate the dataset registered as ``name`` with its options.

        Raises:
            UnknownNameError: no dataset has that name (the message lists those that do).
            UnknownOptionError: its constructor takes no option of one of these names (the
                message lists those it takes).
            MissingOptionError: its constructor requires an option that is not given (a
                dataset's files, say).
        """
        return self._get(DATASET, name, options)

    def _owned(self, kind: Kind, plugin_name: str) -> dict[str, type]:
        table = self._tables[kind.what]
        return {n: cls for n, (cls, owner) in sorted(table.items()) if owner == plugin_name}

    def plugins(self, include_broken: bool = False) -> list[PluginInfo]:
        """Every registered plugin, sorted by name, with what it registered.

        Args:
            include_broken: also list each installed plugin that failed to load, with its
                ``error``, instead of raising (``flowbridge plugins`` shows both).

        Raises:
            PluginError: an installed plugin failed to load (unless ``include_broken``), or
                ``FLOWBRIDGE_LOAD_PLUGINS`` names one that is not installed.
        """
        self._load_entry_points(strict=not include_broken)
        infos = [self._info(name, plugin) for name, plugin in self._pm.list_name_plugin()]
        infos += [self._broken_info(name, failure) for name, failure in self._broken.items()]
        return sorted(infos, key=lambda info: info.name)

    def _info(self, name: str, plugin: object) -> PluginInfo:
        entry_point = self._loaded_from.get(name)
        dist = getattr(entry_point, "dist", None) or distribution_of(_module_of(plugin))
        return PluginInfo(
            name=name,
            plugin=plugin,
            hooks=tuple(sorted(h.name for h in self._pm.get_hookcallers(plugin) or ())),
            domains=self._owned(DOMAIN, name),
            datasets=self._owned(DATASET, name),
            **_shipped_by(dist),
        )

    @staticmethod
    def _broken_info(name: str, failure: _Failure) -> PluginInfo:
        # A clash's failure holds both plugins' entry points: this one's is named ``name``.
        own = next(ep for ep in failure.entry_points if ep.name == name)
        return PluginInfo(
            name=name,
            plugin=None,
            hooks=(),
            domains={},
            datasets={},
            **_shipped_by(getattr(own, "dist", None)),
            error=str(failure),
        )


def _module_of(plugin: object) -> str:
    """The module that holds ``plugin`` (a module itself, or an object's class)."""
    module = getattr(plugin, "__name__", None) if inspect.ismodule(plugin) else None
    return module or type(plugin).__module__


_current: Registry | None = None


def current() -> Registry:
    """The registry the module-level functions use: the process-wide one, created (entry
    points included) on first use, or the one :func:`isolated` swapped in."""
    global _current
    if _current is None:
        _current = Registry()
    return _current


@contextlib.contextmanager
def isolated(*plugins: object, entry_points: bool = False) -> Iterator[Registry]:
    """Use a fresh registry inside a ``with`` block, then restore the previous one.

    Args:
        plugins: plugins to register in it at once (under their default names).
        entry_points: also load the installed entry points (off: tests register in code).

    Yields:
        The fresh registry (also what the module-level functions use inside the block).
    """
    global _current
    previous, _current = _current, Registry(entry_points=entry_points)
    try:
        for plugin in plugins:
            _current.register(plugin)
        yield _current
    finally:
        _current = previous


def get_plugin_manager() -> pluggy.PluginManager:
    """The current registry's pluggy manager, entry points loaded."""
    return current().manager


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin in the current registry; see :meth:`Registry.register`."""
    return current().register(plugin, name)


def unregister(name: str) -> bool:
    """Remove a plugin from the current registry; see :meth:`Registry.unregister`."""
    return current().unregister(name)


def domains() -> dict[str, type[Domain]]:
    """All domain classes of the current registry by name."""
    return current().domains()


def datasets() -> dict[str, type[PairedDataset]]:
    """All dataset classes of the current registry by name."""
    return current().datasets()


def get_domain(name: str, **options: Any) -> Domain:
    """Instantiate the domain registered as ``name``; see :meth:`Registry.get_domain`."""
    return current().get_domain(name, **options)


def get_dataset(name: str, **options: Any) -> PairedDataset:
    """Instantiate the dataset registered as ``name``; see :meth:`Registry.get_dataset`."""
    return current().get_dataset(name, **options)
