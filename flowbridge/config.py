"""Configuration dataclasses and their validated construction from plain dicts (TOML).

Every setting of a run lives in one object that is saved in its checkpoints, so a model
reloads without guessing. ``from_dict`` rejects unknown keys and wrong types by name.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = ["LossWeights", "BridgeConfig", "from_dict", "to_dict", "ConfigError"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type; the message names it."""


@dataclass
class LossWeights:
    r"""Weights of the LNFMM loss terms (DESIGN.md §1).

    ======================  ======  =====================================================
    field                   paper   term (per sample, nats)
    ======================  ======  =====================================================
    ``shared``              λ1      :math:`-\log p(s)` of each shared code (uniform prior:
                                    the volume term :math:`-\log|\det J_f|`)
    ``prior_a``             λ2      :math:`\mathrm{KL}(q(r_A|x_A) \| p_A(r_A|c_A))`
    ``prior_b``             λ3      :math:`\mathrm{KL}(q(r_B|x_B) \| p_B(r_B|c_B))`
    ``rec_a``               λ4      reconstruction NLL of A from its own latent
    ``rec_b``               λ5      reconstruction NLL of B from its own latent
    ``cross``               λx      cross-reconstruction of both domains through f
    ``align``               λm      :math:`\|f(s_A) - s_B\|^2` (the paper's text; 0 in the
                                    original code)
    ======================  ======  =====================================================
    """

    shared: float = 1.0
    prior_a: float = 1.0
    prior_b: float = 1.0
    rec_a: float = 1.0
    rec_b: float = 1.0
    cross: float = 1.0
    align: float = 0.0


@dataclass
class BridgeConfig:
    """The two-domain LNFMM model.

    Attributes:
        shared_features: shared code size ``d_s`` (both domains).
        residual_a, residual_b: residual sizes; ``None`` = the domain's default.
        shared_map: coupling of the shared bijection f: ``"additive"`` (original) or ``"affine"``.
        shared_steps, shared_hidden: depth and width of f (12 and 1024 in the original).
        shared_prior: ``"uniform"`` (original), ``"gaussian"`` or ``"flow"`` (joint sampling).
        residual_prior: ``"flow"`` (LNFMM), ``"gaussian"``, ``"standard"`` or ``"none"``
            (then both residuals are 0-dimensional: a deterministic mapping).
        residual_steps, residual_hidden: depth and width of the residual priors.
        base_scale: σ0 of the residual priors' base normal (0.25 in the original).
        coupling_scale: scale activation of the priors' affine couplings.
        posterior: ``"fixed"`` (encoder output + fixed-σ noise, the original) or ``"learned"``
            (the encoder also outputs a log-variance; KL by one Monte-Carlo sample).
        posterior_noise: σ of the fixed posterior (0.05 in the original).
        weights: loss weights.
    """

    shared_features: int = 16
    residual_a: int | None = None
    residual_b: int | None = None
    shared_map: str = "additive"
    shared_steps: int = 4
    shared_hidden: int = 256
    shared_prior: str = "uniform"
    residual_prior: str = "flow"
    residual_steps: int = 4
    residual_hidden: int = 128
    base_scale: float = 0.25
    coupling_scale: str = "softplus"
    posterior: str = "fixed"
    posterior_noise: float = 0.05
    weights: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self):
        choices = {
            "shared_map": ("additive", "affine"),
            "shared_prior": ("uniform", "gaussian", "flow"),
            "residual_prior": ("flow", "gaussian", "standard", "none"),
            "posterior": ("fixed", "learned"),
            "coupling_scale": ("softplus", "sigmoid"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ConfigError(f"{key} must be one of {allowed}, got {getattr(self, key)!r}")
        for key in (
            "shared_features",
            "shared_steps",
            "shared_hidden",
            "residual_steps",
            "residual_hidden",
        ):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key} must be >= 1, got {getattr(self, key)}")
        for key in ("residual_a", "residual_b"):
            value = getattr(self, key)
            if value is not None and value < 0:
                raise ConfigError(f"{key} must be >= 0 (or omitted), got {value}")
        if self.residual_prior == "none" and (self.residual_a or self.residual_b):
            raise ConfigError(
                "residual_prior 'none' is the deterministic baseline: residual_a and residual_b "
                f"must be 0 or omitted, got {self.residual_a} and {self.residual_b}"
            )
        if not (self.base_scale > 0 and self.posterior_noise >= 0):
            raise ConfigError("base_scale must be > 0 and posterior_noise >= 0")


def _type_ok(value: Any, annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
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
        if not _type_ok(value, annotation):
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
