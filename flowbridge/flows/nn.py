r"""Conditioner networks and scale parametrisations shared by the flow layers.

An affine layer multiplies by a scale :math:`\sigma(u) > 0` computed from a raw network
output :math:`u`; the scale maps return :math:`\sigma(u)` *and* :math:`\log\sigma(u)`, so that
each can give its log-determinant in the cheapest exact way. The maps are chosen by name:
the ``scale`` option of the flow layers (and ``actnorm_scale`` of :class:`FlowPrior`) is one
of these names, not a standard deviation.

* ``"exp"``: :math:`\sigma(u) = \exp(\mathrm{clamp}(u, \log 10^{-3}, \log 3))`, in
  :math:`[10^{-3}, 3]`, and :math:`\log\sigma(u)` is the clamp itself. :math:`\sigma(0) = 1`,
  so a zero-initialised conditioner starts at the identity with no offset to add; the upper
  bound keeps inputs far outside the training range from overflowing the flow (in other flow
  libraries an unbounded exp overflows to inf or NaN on inputs 5× outside that range) and
  the lower bound keeps the inverse's division finite. Two cheap kernels (clamp, exp): the
  default of :class:`FlowPrior`.
* ``"softplus"``: :math:`\sigma(u) = \mathrm{clamp}(\log_2(1 + 2^u), 10^{-3}, 3)`, the
  same range, 1 at 0; three kernels (softplus, clamp, log), and CPU softplus is the most
  expensive elementwise kernel of a coupling (about 55 µs on ``[1024, 32]``, one thread or two).
* ``"sigmoid"``: :math:`\sigma(u) = \mathrm{sigmoid}(u + 2) + 10^{-3}`, in
  :math:`(10^{-3}, 1.001)`: nflows 0.14's; the original LNFMM code has sigmoid(u + 2) with no
  floor (a difference of at most 1e-3 in each factor). It can only contract in
  the data → noise direction, which fits much worse (``benchmarks/README.md``), but it is what
  :class:`SharedBijection` needs under the uniform prior, where an expanding scale would be
  rewarded for blowing space up.

A bounded :math:`3\,\mathrm{sigmoid}(u - \log 2)` (1 at 0) fits as well as ``"exp"`` and
``"softplus"`` but needs an offset, a floor and a log or logsigmoid: more kernels than
``"exp"``, so it is not offered.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_positive_int

__all__ = ["MLP", "SCALE_ACTIVATIONS", "scale_activation"]


class MLP(nn.Sequential):
    r"""Linear → ReLU → ... → Linear, with a zero-initialised output layer.

    A zero output layer makes every coupling and conditional ActNorm start at the same
    (sample-independent) transform, so a freshly built flow is well conditioned regardless of
    its depth.

    The ReLUs work in place, on the fresh output of the linear layer before them (which
    autograd does not keep): a hidden activation costs one buffer instead of two. On the
    benchmark flow (``[1024, 256]`` hidden activations, 2 threads) that halves the ReLU time,
    most of which went to the page faults of first touching a new buffer.

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
            layers += [nn.Linear(width, hidden_features), nn.ReLU(inplace=True)]
            width = hidden_features
        last = nn.Linear(width, out_features)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        super().__init__(*layers, last)


_LN2 = math.log(2.0)
# The bounds of the general scales: above, so that inputs far outside the training range
# cannot overflow the flow; below, so that the inverse never divides by 0.
_SCALE_MIN, _SCALE_MAX = 1e-3, 3.0
_LOG_SCALE_MIN, _LOG_SCALE_MAX = math.log(_SCALE_MIN), math.log(_SCALE_MAX)

#: ``raw [batch, n] -> (scale [batch, n], log scale [batch, n])``
ScaleFn = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _sigmoid_scale(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # nflows 0.14's sigmoid(raw + 2) + 1e-3, in (1e-3, 1.001); the original LNFMM code has no
    # + 1e-3 floor.
    scale = torch.sigmoid(raw + 2.0) + 1e-3
    return scale, scale.log()


def _softplus_scale(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # With beta = ln 2 the softplus is log2(1 + 2^u), exactly 1 at u = 0 with no offset to add.
    scale = F.softplus(raw, beta=_LN2).clamp(_SCALE_MIN, _SCALE_MAX)
    return scale, scale.log()


def _exp_scale(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # The clamp is the log scale itself: no log to take, and exact however far u saturates.
    # hardtanh is that clamp with a one-kernel backward (clamp's takes four).
    log_scale = F.hardtanh(raw, _LOG_SCALE_MIN, _LOG_SCALE_MAX)
    return log_scale.exp(), log_scale


#: The scale maps by name, in the order the module docstring gives them.
SCALE_ACTIVATIONS: dict[str, ScaleFn] = {
    "exp": _exp_scale,
    "softplus": _softplus_scale,
    "sigmoid": _sigmoid_scale,
}


def scale_activation(name: str) -> ScaleFn:
    """Return the scale map called ``name``: ``raw -> (scale, log scale)``, elementwise."""
    try:
        return SCALE_ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown scale activation {name!r}; choose one of {sorted(SCALE_ACTIVATIONS)}"
        ) from None
