"""Plain settings dicts and dataclasses: typed construction that names a bad setting by its
dotted key, the plain form back, and merging tables key by key.

What :mod:`flowbridge.config`'s dataclasses are built with (TOML and JSON give plain dicts;
checkpoints keep them), kept apart from the settings themselves.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from typing import Any, TypeVar

__all__ = ["ConfigError", "from_dict", "to_dict", "merge_settings", "type_ok"]

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
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        if key not in fields:
            raise ConfigError(f"unknown setting {dotted!r}; known: {sorted(fields)}")
        annotation = hints[key]
        if dataclasses.is_dataclass(annotation):
            kwargs[key] = from_dict(annotation, value, dotted)
            continue
        if not type_ok(value, annotation):
            shown = getattr(annotation, "__name__", str(annotation))
            raise ConfigError(
                f"setting {dotted!r} must be of type {shown}, got {type(value).__name__} "
                f"({value!r})"
            )
        kwargs[key] = float(value) if annotation is float else value
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{where + ': ' if where else ''}{exc}") from None


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
