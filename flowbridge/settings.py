"""Plain settings dicts and dataclasses: typed construction that names a bad setting by its
dotted key, the plain form back, and merging tables key by key.

What :mod:`flowbridge.config`'s dataclasses are built with (TOML and JSON give plain dicts;
checkpoints keep them), kept apart from the settings themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import types
import typing
from typing import Any, TypeVar

__all__ = ["ConfigError", "check_fields", "from_dict", "to_dict", "merge_settings", "type_ok"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type; the message names it."""


def type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` (from TOML or JSON) may fill a setting annotated ``annotation``: an
    int fills a float, a bool fills neither, a list fills a tuple, ``None`` only an optional."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(type_ok(value, arg) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if origin is dict:
        return isinstance(value, dict)
    if annotation is Any:
        return True
    return isinstance(value, annotation)


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into nested dataclasses.

    Raises:
        ConfigError: naming the dotted key for an unknown key or a wrongly typed value.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where or cls.__name__} must be a table/dict, got {type(data).__name__}"
        )
    hints = _hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        if key not in hints:
            raise ConfigError(f"unknown setting {dotted!r}; known: {sorted(hints)}")
        kwargs[key] = _coerced(value, hints[key], dotted)
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where + ': ' if where else ''}{exc}") from None


def check_fields(obj: Any) -> None:
    """Check and convert the fields of config dataclass ``obj`` in place, as :func:`from_dict`
    does a dict's values: for one built directly in Python (``BridgeConfig(weights={...})``,
    ``LossWeights(align=True)``), which no dict went through. Called by each config
    dataclass's ``__post_init__``."""
    for key, annotation in _hints(type(obj)).items():
        setattr(obj, key, _coerced(getattr(obj, key), annotation, key))


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's fields and their resolved annotations."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerced(value: Any, annotation: Any, dotted: str) -> Any:
    """``value`` as the setting ``dotted`` of type ``annotation`` holds it: a table built into
    a nested dataclass, a path (``os.PathLike``) as its string, numpy numbers and arrays as
    Python's, an int as a float; anything else of the wrong type is a :class:`ConfigError`."""
    if dataclasses.is_dataclass(annotation):
        return value if isinstance(value, annotation) else from_dict(annotation, value, dotted)
    if isinstance(value, os.PathLike) and type_ok("", annotation):
        value = os.fspath(value)
    value = _plain(value)
    if not type_ok(value, annotation):
        shown = getattr(annotation, "__name__", str(annotation))
        raise ConfigError(
            f"setting {dotted!r} must be of type {shown}, got {type(value).__name__} ({value!r})"
        )
    return float(value) if annotation is float else value


def _plain(value: Any) -> Any:
    """``value`` with numpy (or torch) numbers and arrays as Python's numbers and lists, in
    lists, tuples and tables too: a sweep's ``np.int64`` step count, ``np.array`` betas."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if not isinstance(value, (str, bytes, int, float)) and hasattr(value, "tolist"):
        return value.tolist()
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """The plain-dict (TOML/JSON/checkpoint-safe) form of a config dataclass."""
    return dataclasses.asdict(obj)


def merge_settings(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``override``, tables merged key by key rather than replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_settings(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
