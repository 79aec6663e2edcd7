r"""The base class of flowbridge's transforms: nflows' ``Transform`` with checked arguments."""

from __future__ import annotations

import torch
from nflows.transforms import Transform

from .._checks import check_context, check_vectors

__all__ = ["FlowTransform"]


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
