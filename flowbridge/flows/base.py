r"""flowbridge's transform protocol: nflows' ``Transform`` with checked public calls, and the
composition that checks once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from nflows.transforms import Transform
from torch import nn

from .._checks import check_context, check_vectors

__all__ = ["Chain", "FlowTransform"]


class FlowTransform(Transform):
    r"""An invertible map :math:`y = T(x; c)` whose public calls validate their arguments.

    Subclasses set ``features`` (and ``context_features``, 0 when unconditional) and implement
    ``_forward`` and ``_inverse`` on validated tensors; ``forward`` and ``inverse`` check that
    the inputs are finite floating ``[batch, features]`` tensors and that a conditional
    transform got a context with one row per input (an unconditional one ignores it).

    Shapes:
        ``forward(inputs [batch, features], context [batch, context_features] | None)
        -> (outputs [batch, features], logabsdet [batch])``, with
        ``logabsdet`` :math:`= \log|\det \partial T(x; c) / \partial x|` in the inputs' dtype;
        ``inverse`` is the same for :math:`T^{-1}`.
    """

    features: int
    context_features: int = 0

    def forward(self, inputs, context=None):
        return self._forward(inputs, self._check(inputs, context))

    def inverse(self, inputs, context=None):
        return self._inverse(inputs, self._check(inputs, context))

    def _check(self, inputs, context) -> torch.Tensor | None:
        name = type(self).__name__
        check_vectors(inputs, self.features, name=f"{name} inputs")
        return check_context(
            context, self.context_features, inputs.shape[0], name, dtype=inputs.dtype
        )

    def _forward(self, inputs, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, inputs, context):  # pragma: no cover - abstract
        raise NotImplementedError


class Chain(FlowTransform):
    r"""The composition :math:`T = T_K \circ \dots \circ T_1` of flowbridge transforms.

    .. math::

        \log|\det J_T(x)| = \sum_{k=1}^K \log|\det J_{T_k}(h_{k-1})|, \qquad h_0 = x.

    The arguments are checked once, here; the layers are called unchecked. Besides saving a
    reduction per layer, this keeps an overflow inside the chain from being reported as bad
    *inputs* of some inner layer the caller never saw. Every layer gets the context; the
    unconditional ones ignore it.

    Args:
        layers: the transforms :math:`T_1, \dots, T_K`, all on the same number of features.
    """

    def __init__(self, layers: Sequence[FlowTransform]):
        super().__init__()
        sizes = {layer.features for layer in layers}
        if len(sizes) != 1:
            raise ValueError(f"a Chain needs layers of one feature count, got sizes {sizes}")
        contexts = {layer.context_features for layer in layers} - {0}
        if len(contexts) > 1:
            raise ValueError(f"a Chain needs layers of one context size, got sizes {contexts}")
        self.features = sizes.pop()
        self.context_features = contexts.pop() if contexts else 0
        self.layers = nn.ModuleList(layers)

    def _forward(self, inputs, context):
        terms = []
        for layer in self.layers:
            inputs, term = layer._forward(inputs, context)
            terms.append(term)
        # One stack and one sum, rather than an add (and its backward node) per layer.
        return inputs, torch.stack(terms).sum(dim=0)

    def _inverse(self, inputs, context):
        terms = []
        for layer in reversed(self.layers):
            inputs, term = layer._inverse(inputs, context)
            terms.append(term)
        return inputs, torch.stack(terms).sum(dim=0)
