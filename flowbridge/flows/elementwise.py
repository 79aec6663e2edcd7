r"""Elementwise invertible layers: the learned global scale and conditional ActNorm."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import check_positive_int
from .base import FlowTransform
from .nn import MLP, scale_activation

__all__ = ["ConditionalActNorm", "GlobalScale"]


class GlobalScale(FlowTransform):
    r"""Learned per-dimension scale :math:`y = x \odot \mathrm{sigmoid}(s + 5)` (with
    :math:`s + 5` floored at -30, so that the scale stays at or above sigmoid(-30) ≈ 9e-14).

    The log-determinant :math:`\sum_i \log \mathrm{sigmoid}(s_i + 5) \le 0` is the same for
    every sample. Under LNFMM's "uniform prior" on the shared space, the loss term
    :math:`-\log|\det J_f|` therefore pushes the scales towards 1 and keeps the shared map from
    shrinking space (the original code initialises ``s`` to ones).

    Args:
        features: number of dimensions.
        offset: the constant inside the sigmoid (5 in the original).
    """

    def __init__(self, features: int, offset: float = 5.0):
        super().__init__()
        self.features = check_positive_int(features, "features")
        self.offset = float(offset)
        self.log_scale_raw = nn.Parameter(torch.ones(features))

    def _log_scale(self) -> torch.Tensor:
        # log sigmoid(u) = -softplus(-u). F.logsigmoid opens an OpenMP parallel region even for
        # a handful of elements, which costs milliseconds per call on a busy 2-core machine.
        # u is floored at -30 (a scale of 9e-14): far below it a float32 output underflows
        # and the inverse overflows (u = -95: inf). Above the floor nothing changes.
        return -F.softplus(-(self.log_scale_raw + self.offset).clamp_min(-30.0))

    def _forward(self, inputs, context):
        log_scale = self._log_scale()
        # A tensor of its own, as every layer returns: an expanded view (stride 0) of the one
        # sum would make a caller's `logabsdet += ...` fail. The copy costs ~1.5 µs at a
        # batch of 1024 (nothing at 1), next to ~30 µs for the rest of the layer.
        logabsdet = log_scale.sum().expand(inputs.shape[0]).contiguous()
        return inputs * log_scale.exp(), logabsdet

    def _inverse(self, inputs, context):
        log_scale = self._log_scale()
        # The negation writes a fresh tensor already (the minus applies after the expand).
        logabsdet = -log_scale.sum().expand(inputs.shape[0])
        return inputs * (-log_scale).exp(), logabsdet

    def extra_repr(self) -> str:
        return f"features={self.features}, offset={self.offset}"


class ConditionalActNorm(FlowTransform):
    r"""Per-sample affine normalisation whose shift and scale come from the context.

    .. math::

        (b, u) = \mathrm{MLP}(c), \qquad y = (x + b) \odot \sigma(u),
        \qquad \log|\det J| = \sum_i \log \sigma(u_i)

    with :math:`\sigma` the chosen scale activation (``"sigmoid"``: sigmoid(u + 2) + 1e-3, the
    original LNFMM code's sigmoid(u + 2) with nflows' 1e-3 floor). With
    ``context_features == 0`` the layer is a plain ActNorm: b and u are learned parameters and
    any context is ignored.

    **The default scale cannot expand.** ``"sigmoid"`` lies in (1e-3, 1.001), so unlike a
    Glow or nflows ActNorm this layer cannot normalise data narrower than its target: in the
    x → y (data → noise) direction it contracts or keeps the scale, at most ×1.001. In a
    flow that maps data to a base :math:`\mathcal N(0, \sigma_0^2 I)` it can widen the
    modelled density, never narrow it: a stack of S of them alone (a 1-feature
    :class:`~flowbridge.flows.FlowPrior`) is never narrower than :math:`\sigma_0 / 1.001^S`,
    and with couplings the reach is bounded too (``FlowPrior``'s docstring gives the bound).
    For data narrower than the base, use ``scale="exp"`` or ``"softplus"`` (in [1e-3, 3], 1 at
    u = 0), or standardise the data, or choose the base scale near their spread.

    There is no data-dependent initialisation: statistics of a batch would make one sample's
    output depend on the others. The zero-initialised MLP starts every sample at the same
    transform instead.

    Args:
        features: dimensions of x.
        context_features: dimensions of the context c (0: unconditional).
        hidden_features: width of the context MLP.
        scale: name of the scale activation (a str, not a standard deviation; see
            :mod:`flowbridge.flows.nn`); the default ``"sigmoid"`` cannot expand (above).
        hidden_layers: number of hidden layers of the context MLP.

    Shapes:
        ``inputs [batch, features]``, ``context [batch, context_features]`` →
        ``(outputs [batch, features], logabsdet [batch])``.
    """

    def __init__(
        self,
        features: int,
        context_features: int,
        hidden_features: int = 128,
        scale: str = "sigmoid",
        hidden_layers: int = 1,
    ):
        super().__init__()
        self.features = check_positive_int(features, "features")
        self.context_features = check_positive_int(
            context_features, "context_features", allow_zero=True
        )
        self.scale = scale
        self._scale_fn = scale_activation(scale)
        if context_features:
            self.net = MLP(context_features, 2 * features, hidden_features, hidden_layers)
        else:
            self.params = nn.Parameter(torch.zeros(2 * features))

    def _shift_and_scale(self, inputs, context):
        params = self.net(context) if self.context_features else self.params.expand(len(inputs), -1)
        shift, raw = params.chunk(2, dim=1)
        return shift, *self._scale_fn(raw)

    def _forward(self, inputs, context):
        shift, scale, log_scale = self._shift_and_scale(inputs, context)
        return (inputs + shift) * scale, log_scale.sum(dim=1)

    def _inverse(self, inputs, context):
        shift, scale, log_scale = self._shift_and_scale(inputs, context)
        return self._unscale(inputs, shift, scale), -log_scale.sum(dim=1)

    def _invert(self, inputs, context):
        shift, scale, _ = self._shift_and_scale(inputs, context)
        return self._unscale(inputs, shift, scale)

    @staticmethod
    def _unscale(inputs, shift, scale):
        # In place on the fresh quotient: subtraction's backward needs neither operand.
        return (inputs / scale).sub_(shift)

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, context_features={self.context_features}, "
            f"scale={self.scale!r}"
        )
