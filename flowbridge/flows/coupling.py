r"""Additive (NICE) and affine (RealNVP) coupling transforms, optionally conditional.

The input is split into two contiguous halves, ``x = [x_1, x_2]`` with
``x_1 = x[:, :features // 2]``. One half conditions the update of the other:

.. math::

    \text{additive:}\quad y_2 = x_2 + t(x_1, c)
    \qquad
    \text{affine:}\quad y_2 = x_2 \odot \sigma(x_1, c) + t(x_1, c),
    \quad \log|\det J| = \sum_i \log \sigma_i

With ``flip=True`` the roles of the halves swap (``x_2`` conditions ``x_1``). Slicing
contiguous halves (instead of nflows' mask indexing) avoids two gathers and a scatter per
layer, and alternating ``flip`` between layers mixes the halves without a permutation.

References:
    Dinh et al., "NICE: Non-linear Independent Components Estimation", 2014.
    Dinh et al., "Density estimation using Real NVP", ICLR 2017.
"""

from __future__ import annotations

import torch

from ..checks import check_positive_int
from .base import HalvesTransform
from .nn import MLP, scale_activation

__all__ = ["AdditiveCoupling", "AffineCoupling"]


class _Coupling(HalvesTransform):
    """The conditioner and which half it reads; subclasses define the elementwise map.

    Args:
        features: dimensions of x (at least 2).
        context_features: dimensions of the context c (0: unconditional).
        hidden_features: width of each hidden layer of the conditioner MLP.
        hidden_layers: number of hidden layers of the conditioner MLP.
        flip: whether ``x_2`` conditions ``x_1`` instead of the other way round.
    """

    params_per_feature: int

    def __init__(
        self,
        features: int,
        context_features: int = 0,
        hidden_features: int = 128,
        hidden_layers: int = 1,
        flip: bool = False,
    ):
        if check_positive_int(features, "features") < 2:
            raise ValueError(
                f"a coupling needs features >= 2 to split in two, got {features}; "
                f"use an elementwise layer (GlobalScale, ConditionalActNorm) for 1 feature"
            )
        super().__init__()
        self.features = features
        self.context_features = check_positive_int(
            context_features, "context_features", allow_zero=True
        )
        self.flip = bool(flip)
        first = features // 2
        # (conditioning half, updated half) sizes
        sizes = (features - first, first) if flip else (first, features - first)
        self.net = MLP(
            sizes[0] + context_features,
            sizes[1] * self.params_per_feature,
            hidden_features,
            hidden_layers,
        )

    def _params(self, conditioning: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
        # The one place where the context joins the conditioner input.
        if self.context_features:
            conditioning = torch.cat((conditioning, context), dim=1)
        return self.net(conditioning)

    def _forward_halves(self, first, second, context):
        return self._update(first, second, context, inverse=False)

    def _inverse_halves(self, first, second, context):
        return self._update(first, second, context, inverse=True)

    def _invert_halves(self, first, second, context):
        return self._update(first, second, context, inverse=True, logabsdet=False)[:2]

    def _update(self, first, second, context, inverse: bool, logabsdet: bool = True):
        if self.flip:
            first, term = self._couple(first, self._params(second, context), inverse, logabsdet)
        else:
            second, term = self._couple(second, self._params(first, context), inverse, logabsdet)
        return first, second, term

    def _couple(self, x, params, inverse, logabsdet):  # pragma: no cover - abstract
        """``(x [batch, n], params [batch, n * params_per_feature]) -> (y, logabsdet [batch])``;
        with ``logabsdet=False`` the second item is None and no work goes into it."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return (
            f"features={self.features}, context_features={self.context_features}, flip={self.flip}"
        )


class AdditiveCoupling(_Coupling):
    r"""NICE coupling :math:`y_2 = x_2 + t(x_1, c)`: volume preserving, log-det 0."""

    params_per_feature = 1

    def _couple(self, x, shift, inverse, logabsdet):
        y = x - shift if inverse else x + shift
        return y, x.new_zeros(x.shape[0]) if logabsdet else None


class AffineCoupling(_Coupling):
    r"""RealNVP coupling :math:`y_2 = x_2 \odot \sigma + t` with a bounded positive scale.

    Args:
        scale: name of the scale activation (a str, not a standard deviation; see
            :mod:`flowbridge.flows.nn`): ``"exp"`` or ``"softplus"`` (scale in [1e-3, 3], 1 at
            u = 0) or ``"sigmoid"`` (sigmoid(u + 2) + 1e-3, in (1e-3, 1.001): the original
            LNFMM's sigmoid(u + 2) with nflows' floor).
    """

    params_per_feature = 2

    def __init__(self, *args, scale: str = "exp", **kwargs):
        super().__init__(*args, **kwargs)
        self.scale = scale
        self._scale_fn = scale_activation(scale)

    def _couple(self, x, params, inverse, logabsdet):
        shift, raw = params.chunk(2, dim=1)
        scale, log_scale = self._scale_fn(raw)
        term = log_scale.sum(dim=1) if logabsdet else None
        if inverse:
            # In place on the fresh difference: one buffer less per layer when sampling (the
            # gradient through it stays exact: tests/test_flows_sampling.py).
            return (x - shift).div_(scale), None if term is None else -term
        return torch.addcmul(shift, x, scale), term

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, scale={self.scale!r}"
