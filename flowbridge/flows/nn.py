"""Conditioner networks and scale parametrisations shared by the flow layers."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import check_positive_int

__all__ = ["MLP", "SCALE_ACTIVATIONS", "scale_activation"]


class MLP(nn.Sequential):
    r"""Linear → ReLU → ... → Linear, with a zero-initialised output layer.

    A zero output layer makes every coupling and conditional ActNorm start at the same
    (sample-independent) transform, so a freshly built flow is well conditioned regardless of
    its depth.

    Args:
        in_features: input size (conditioner input, context included).
        out_features: output size.
        hidden_features: width of each hidden layer.
        hidden_layers: number of hidden layers (the original LNFMM uses 1; 0 gives a linear
            map).
    """

    def __init__(
        self, in_features: int, out_features: int, hidden_features: int, hidden_layers: int = 1
    ):
        check_positive_int(hidden_features, "hidden_features")
        layers: list[nn.Module] = []
        width = in_features
        for _ in range(check_positive_int(hidden_layers, "hidden_layers", allow_zero=True)):
            layers += [nn.Linear(width, hidden_features), nn.ReLU()]
            width = hidden_features
        last = nn.Linear(width, out_features)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        super().__init__(*layers, last)


_LN2 = math.log(2.0)


def _sigmoid_scale(raw: torch.Tensor) -> torch.Tensor:
    # The original LNFMM code and nflows 0.14: scale in (0, 1] (+1e-3 so it never reaches 0).
    return torch.sigmoid(raw + 2.0) + 1e-3


def _softplus_scale(raw: torch.Tensor) -> torch.Tensor:
    # A general scale in [1e-3, 3]: it can expand as well as contract, which fits much faster
    # (see shared/reference/flow-peers.md), and the bound keeps exp-style overflow away.
    # With beta = ln 2 the softplus is log2(1 + 2^u), exactly 1 at u = 0 (the zero-initialised
    # conditioner starts at the identity) with no offset to add: two kernels in all.
    return F.softplus(raw, beta=_LN2).clamp(1e-3, 3.0)


SCALE_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": _sigmoid_scale,
    "softplus": _softplus_scale,
}


def scale_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return the positive-scale map called ``name`` (``"sigmoid"`` or ``"softplus"``)."""
    try:
        return SCALE_ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown scale activation {name!r}; choose one of {sorted(SCALE_ACTIVATIONS)}"
        ) from None
