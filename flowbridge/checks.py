"""Input checks shared by every public flow, prior and the bridge, and public for plugins:
a domain or dataset that validates its options and tensors with them fails the same way the
core does.

Errors say what was expected, what was given, and (where it helps) what to do. Every public
transform and prior checks its arguments on each call: a check costs one reduction over the
input (about 10 µs for a ``[1024, 64]`` tensor on 2 CPU cores), which is noise next to the
conditioner networks.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = [
    "NonFiniteInputError",
    "add_note",
    "check_context",
    "check_positive_int",
    "check_positive_number",
    "check_vectors",
    "noted",
    "shapes_of",
]


class NonFiniteInputError(ValueError):
    """A flow, prior or bridge was given NaN or Inf values. A ``ValueError`` (bad input);
    its own class so that training can tell diverged weights, whose codes turn non-finite
    inside the forward pass, from other bad input."""


def add_note(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc``, to say where it happened or what to do; Python 3.10 has no
    exception notes and keeps the bare error."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)


@contextlib.contextmanager
def noted(note: Callable[[], str]) -> Iterator[None]:
    """Add ``note()`` to an exception raised inside, to say where it happened: a plugin's
    own error (torch's "size of tensor a (3) must match...") names neither the domain, nor
    the side, nor the shapes. Python 3.10 has no exception notes and keeps the bare error."""
    try:
        yield
    except Exception as exc:
        add_note(exc, note())
        raise


def check_positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    """Return ``value`` as an int if it is an integer >= 1 (>= 0 when ``allow_zero``), else raise.

    Any integer type counts (a numpy ``int64`` from ``np.arange``, say); bool does not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return int(value)


def check_positive_number(value: object, name: str, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number > 0 (>= 0 when ``allow_zero``).

    Any real number type counts (a numpy ``float32``, say); bool does not.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} ({value!r})")
    number = float(value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value}")
    return number


def _all_finite(x: torch.Tensor) -> bool:
    # A sum is finite only if every term is, and one reduction is ~10x cheaper than
    # isfinite(x).all(); a non-finite sum may be a float overflow, so it is confirmed
    # elementwise.
    total = x.detach().sum()
    return bool(torch.isfinite(total)) or bool(torch.isfinite(x).all())


def check_vectors(
    x: object, features: int, name: str = "inputs", *, dtype: torch.dtype | None = None
) -> torch.Tensor:
    """Check that ``x`` is a finite floating tensor of shape ``[batch, features]``.

    Given ``dtype`` (the dtype the module computes in), ``x`` must have it: torch would
    otherwise fail deep inside the first linear layer, naming neither.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(
            f"{name} must be a torch.Tensor of shape [batch, {features}], "
            f"got {type(x).__name__}; convert with torch.as_tensor(..., dtype=torch.float32)"
        )
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
            f"convert with .float() (or .double())"
        )
    if dtype is not None and x.dtype != dtype:
        raise TypeError(
            f"{name} must have dtype {dtype} (the module's), got {x.dtype}; convert them "
            f"with .to({dtype}), or the module with .to({x.dtype})"
        )
    if x.dim() != 2 or x.shape[1] != features:
        raise ValueError(
            f"{name} must have shape [batch, {features}], got {list(x.shape)}"
            f"{_missing_dimension(x, features)}"
        )
    if not _all_finite(x):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise NonFiniteInputError(
            f"{name} contains NaN or Inf values (in {bad} of {x.shape[0]} rows)"
        )
    return x


def _missing_dimension(x: torch.Tensor, features: int) -> str:
    """The fix for a 1-D ``x`` where ``[batch, features]`` was expected ("" where none fits).

    It lacks the feature dimension if it holds N values of a single feature (a 1-D data set
    for a 1-feature flow: ``x[:, None]``), the batch dimension if it is one vector
    (``x[None]``); ``x[None]`` on the first gives ``[1, N]``, which fails again.
    """
    if x.dim() != 1:
        return ""
    if features == 1:
        return "; add the feature dimension with x[:, None] (or x.unsqueeze(1))"
    if x.shape[0] == features:
        return "; add a batch dimension with x[None]"
    return ""  # neither one vector nor a column: better no hint than a wrong one


def check_context(
    context: object,
    features: int,
    batch: int | None,
    owner: str,
    *,
    dtype: torch.dtype | None = None,
) -> torch.Tensor | None:
    """Check a context tensor against ``features`` context dims, the batch size and dtype.

    ``features == 0`` means the owner is unconditional: a context is then accepted and
    ignored (so conditional and unconditional modules are interchangeable) as long as it is a
    tensor with one row per input, and ``None`` is returned. A conditional owner requires a
    finite context of shape ``[batch, features]`` (and of ``dtype`` when given).
    """
    if context is None:
        if features:
            raise ValueError(
                f"{owner} is conditional and needs a context of shape [batch, {features}], got None"
            )
        return None
    if not isinstance(context, torch.Tensor):
        raise TypeError(
            f"{owner} context must be a torch.Tensor of shape [batch, {features}] (or None), "
            f"got {type(context).__name__}"
        )
    if context.dim() == 0:
        width = features or "..."
        raise ValueError(
            f"{owner} context must have shape [batch, {width}] (one row per input row), "
            f"got a 0-dim tensor"
        )
    if batch is not None and context.shape[0] != batch:
        raise ValueError(
            f"{owner}: the context has {context.shape[0]} rows but the inputs have {batch}; "
            f"give one context row per input row"
        )
    if not features:
        return None
    context = check_vectors(context, features, name=f"{owner} context")
    if dtype is not None and context.dtype != dtype:
        raise TypeError(
            f"{owner} context must have dtype {dtype} (that of the inputs or the module), "
            f"got {context.dtype}; convert it with .to({dtype})"
        )
    return context


def shapes_of(value: Any) -> str:
    """The shape of a tensor, or of each tensor in a tuple, list or dict, for a message; with
    its dtype where that is not float32 (``[8, 4] float64``, ``[8, 12] int64``), the other
    half of why two tensors do not fit."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).removeprefix("torch.")
        return str(list(value.shape)) + ("" if dtype == "float32" else f" {dtype}")
    if isinstance(value, (tuple, list)):
        return f"({', '.join(map(shapes_of, value))})"
    if isinstance(value, dict):
        return f"{{{', '.join(f'{key!r}: {shapes_of(item)}' for key, item in value.items())}}}"
    return type(value).__name__
