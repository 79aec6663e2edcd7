"""Checking what a plugin registers, and the names and options asked of the registry: each
check raises an error whose message names the culprit, what was expected, and what to do.

:mod:`flowbridge.plugins` (the registry and its module-level functions) runs these checks and
is where the errors are imported from; this module is its private half.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from . import hookspecs
from .domain import Domain, PairedDataset
from .settings import ConfigError

__all__ = [
    "NAME_PATTERN",
    "PluginError",
    "UnknownNameError",
    "UnknownOptionError",
    "Kind",
    "DOMAIN",
    "DATASET",
    "KINDS",
    "check_name",
    "check_class",
    "did_you_mean",
    "constructor_options",
    "options_signature",
    "refuse_unknown_options",
    "check_options",
    "check_unmarked",
    "describe",
]

# A leading "-" would read as a command-line option (``--from -x``), hence the first class.
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]*")


class PluginError(RuntimeError):
    """A plugin failed to load, or registered something invalid. The message names it."""

    # Named (in tracebacks, reprs and pickles) by where it is imported from; so are the others.
    __module__ = "flowbridge.plugins"


class UnknownNameError(KeyError, ValueError):
    """No domain or dataset is registered under the name asked for; the message lists those
    that are. A ``KeyError`` (a registry lookup) and a ``ValueError`` (bad user input)."""

    __module__ = "flowbridge.plugins"

    def __str__(self) -> str:
        # KeyError would print the repr of its message, quotes and escaped newlines included.
        return str(self.args[0])


class UnknownOptionError(ConfigError, TypeError):
    """A domain or dataset was given an option its constructor does not take; the message
    lists the options it does take. A ``ConfigError`` (the options come from a run config's
    tables) and a ``TypeError`` (what Python raises for an unexpected keyword argument)."""

    __module__ = "flowbridge.plugins"


class MissingOptionError(ConfigError, TypeError):
    """A domain or dataset was not given an option its constructor requires (one without a
    default); the message names it and where it is set. A ``ConfigError`` and a
    ``TypeError`` (what Python raises for a missing argument), as :class:`UnknownOptionError`."""

    __module__ = "flowbridge.plugins"


@dataclass(frozen=True)
class Kind:
    """One registry: the hook that fills it, the base class its entries subclass, and the
    run config tables that hold its entries' options."""

    what: str
    hook: str
    base: type
    options_key: str


DOMAIN = Kind(
    "domain", "flowbridge_register_domains", Domain, "domains.a.options or domains.b.options"
)
DATASET = Kind("dataset", "flowbridge_register_datasets", PairedDataset, "data.options")
KINDS = (DOMAIN, DATASET)


def check_name(value: object, plugin: str, what: str, owner: str) -> str:
    """Validate a name ``plugin`` gave in ``owner`` (a class's ``name``, a dataset's domain
    names); return it."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise PluginError(
            f"plugin {plugin!r}: {owner} has {what} {value!r}; expected a non-empty str of "
            f"lowercase letters, digits, '_' and '-' (not starting with '_' or '-'), "
            f"e.g. 'signal'"
        )
    return value


def check_class(cls: object, kind: Kind, plugin: str) -> str:
    """Validate one class passed to ``register``; return its registry name."""
    if not isinstance(cls, type):
        hint = (
            f"; pass the class {type(cls).__name__} itself, not an instance"
            if isinstance(cls, kind.base)
            else ""
        )
        raise PluginError(
            f"plugin {plugin!r} passed {cls!r} to register in {kind.hook}, expected a "
            f"subclass of flowbridge.{kind.base.__name__}{hint}"
        )
    if not issubclass(cls, kind.base):
        raise PluginError(
            f"plugin {plugin!r} registered {cls.__qualname__} as a {kind.what}, but it is not a "
            f"subclass of flowbridge.{kind.base.__name__}; derive it from that class"
        )
    owner = f"{kind.what} class {cls.__qualname__}"
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    if abstract:
        raise PluginError(f"plugin {plugin!r}: {owner} does not implement {', '.join(abstract)}")
    name = check_name(getattr(cls, "name", None), plugin, "name", owner)
    if kind is DOMAIN:
        residual = cls.default_residual_features
        if isinstance(residual, bool) or not isinstance(residual, int) or residual < 0:
            raise PluginError(
                f"plugin {plugin!r}: {owner} has default_residual_features {residual!r}; "
                f"expected an int >= 0"
            )
    else:
        pair = getattr(cls, "domains", None)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise PluginError(
                f"plugin {plugin!r}: {owner} has domains {pair!r}; expected a pair of domain "
                f"names, e.g. ('image', 'text')"
            )
        for domain_name in pair:
            check_name(domain_name, plugin, "a domain name", owner)
        splits = cls.splits
        if (
            not isinstance(splits, (tuple, list))
            or not splits
            or not all(isinstance(s, str) and s for s in splits)
        ):
            raise PluginError(
                f"plugin {plugin!r}: {owner} has splits {splits!r}; expected a non-empty tuple "
                f"of split names, e.g. ('train', 'val', 'test')"
            )
    return name


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the valid name closest to a misspelt one, else ``""``."""
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def refuse_unknown_options(what: str, options: Iterable[str], valid: list[str], where: str) -> None:
    """Raise :class:`UnknownOptionError` for the ``options`` not in ``valid``: what a class
    whose ``__init__`` takes ``**options`` says when called directly (the registry checks a
    config's names against its :func:`options_signature` first). ``what`` names the class
    (``"image domain"``), ``where`` the run config's table (``"domains.a.options"``)."""
    unknown = sorted(set(options) - set(valid))
    if unknown:
        described = ", ".join(f"{key!r}{did_you_mean(key, valid)}" for key in unknown)
        raise UnknownOptionError(
            f"unknown {what} options [{described}]; valid: {valid} (in a run config: {where})"
        )


def options_signature(options: type) -> inspect.Signature:
    """``__init__(self, *, <the dataclass's fields with their defaults>)``, for a plugin
    class whose ``__init__(self, **options)`` hands them to that dataclass: set as
    ``__init__.__signature__`` (on the method, so that a subclass with an ``__init__`` of its
    own has its own signature), it lets :func:`constructor_options` (``flowbridge plugins
    --all``, the registry's check of a config's option names) read the options and their
    defaults."""

    def default(field: dataclasses.Field) -> Any:
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        return inspect.Parameter.empty

    return inspect.Signature(
        [
            inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
            *(
                inspect.Parameter(
                    field.name, inspect.Parameter.KEYWORD_ONLY, default=default(field)
                )
                for field in dataclasses.fields(options)
            ),
        ]
    )


def constructor_options(cls: type) -> tuple[dict[str, Any], bool]:
    """The options ``cls(**options)`` takes by name, each with its default
    (``inspect.Parameter.empty`` for a required one), and whether it also takes any other
    (``**options``).

    Raises:
        TypeError, ValueError: ``cls`` has no signature to read (as :func:`inspect.signature`).
    """
    parameters = inspect.signature(cls).parameters.values()
    named = {
        p.name: p.default for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return named, any(p.kind is p.VAR_KEYWORD for p in parameters)


def check_options(kind: Kind, name: str, cls: type, options: dict[str, Any]) -> None:
    """Refuse the options that ``cls``'s constructor does not take, before calling it: Python's
    own TypeError names ``__init__``, but neither the valid options nor where they are set."""
    try:
        named, open_ended = constructor_options(cls)
    except (TypeError, ValueError):  # no signature to read: the call itself decides
        return
    valid = list(named)
    unknown = [key for key in options if key not in valid]
    if unknown and not open_ended:  # with **options the class checks them itself
        described = ", ".join(f"{key!r}{did_you_mean(key, valid)}" for key in unknown)
        raise UnknownOptionError(
            f"{kind.what} {name!r} has no option{'s' if len(unknown) > 1 else ''} "
            f"{described}; its options are: {', '.join(valid) or 'none'}. "
            f"Fix the option's name (in a run config: {kind.options_key})"
        )
    missing = [key for key, default in named.items() if default is inspect.Parameter.empty]
    missing = [key for key in missing if key not in options]
    if missing:
        raise MissingOptionError(
            f"{kind.what} {name!r} needs the option{'s' if len(missing) > 1 else ''} "
            f"{', '.join(map(repr, missing))}, which {'have' if len(missing) > 1 else 'has'} no "
            f"default; give {'them' if len(missing) > 1 else 'it'} (in a run config: "
            f"{kind.options_key})"
        )


def check_unmarked(plugin: object, name: str) -> None:
    """Reject functions named like a hook that lack ``@flowbridge.hookimpl``: pluggy would
    silently skip them, and the plugin would register nothing."""
    marker = f"{hookspecs.PROJECT}_impl"
    for attr in dir(plugin):
        if not attr.startswith(f"{hookspecs.PROJECT}_"):
            continue
        value = getattr(plugin, attr, None)
        if inspect.isroutine(value) and not hasattr(value, marker):
            raise PluginError(
                f"plugin {name!r}: function {attr} looks like a hook but is not decorated with "
                f"@flowbridge.hookimpl; decorate it (or rename it)"
            )


def describe(plugin: object) -> str:
    """How a message names a plugin object: ``module flowbridge_coco.plugin``."""
    if inspect.ismodule(plugin):
        return f"module {plugin.__name__}"
    return f"{type(plugin).__qualname__} object"
