"""Input checks shared by every public flow, prior and the bridge.

Errors say what was expected, what was given, and (where it helps) what to do. Checks run at
public entry points only; the layers inside a composite flow trust their caller.
"""

from __future__ import annotations

import torch

__all__ = ["check_vectors", "check_context", "check_positive_int"]


def check_positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    """Return ``value`` if it is a (non-negative when ``allow_zero``) int, else raise."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} ({value!r})")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_vectors(x: object, features: int, name: str = "inputs") -> torch.Tensor:
    """Check that ``x`` is a finite floating tensor of shape ``[batch, features]``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(
            f"{name} must be a floating-point tensor, got dtype {x.dtype}; "
            f"convert with .float() (or .double())"
        )
    if x.dim() != 2 or x.shape[1] != features:
        raise ValueError(f"{name} must have shape [batch, {features}], got {list(x.shape)}")
    if not torch.isfinite(x).all():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{name} contains NaN or Inf values (in {bad} of {x.shape[0]} rows)")
    return x


def check_context(
    context: object, features: int, batch: int | None, owner: str
) -> torch.Tensor | None:
    """Check a context tensor against ``features`` context dims and the batch size.

    ``features == 0`` means the owner is unconditional: a context is then accepted and
    ignored (so conditional and unconditional priors are interchangeable), and ``None`` is
    returned. A conditional owner requires a context of shape ``[batch, features]``.
    """
    if features == 0:
        return None
    if context is None:
        raise ValueError(
            f"{owner} is conditional and needs a context of shape [batch, {features}], got None"
        )
    context = check_vectors(context, features, name=f"{owner} context")
    if batch is not None and context.shape[0] != batch:
        raise ValueError(
            f"{owner}: context has {context.shape[0]} rows but the inputs have {batch}; "
            f"give one context row per input row"
        )
    return context
