r"""flowbridge's transform protocol: nflows' ``Transform`` with checked public calls, transforms
that act on the two halves of their input, and the composition that checks once."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

import torch
from nflows.transforms import Transform
from torch import nn

from ..checks import check_context, check_vectors

__all__ = ["Chain", "FlowTransform", "HalvesTransform", "split_halves"]


class FlowTransform(Transform):
    r"""An invertible map :math:`y = T(x; c)` whose public calls validate their arguments.

    Subclasses set ``features`` (and ``context_features``, 0 when unconditional) and implement
    ``_forward`` and ``_inverse`` on validated tensors; ``forward`` and ``inverse`` check that
    the inputs are finite floating ``[batch, features]`` tensors and that a conditional
    transform got a context with one row per input (an unconditional one ignores it).

    Shapes:
        ``forward(inputs [batch, features], context [batch, context_features] | None)
        -> (outputs [batch, features], logabsdet [batch])``, with
        ``logabsdet`` :math:`= \log|\det \partial T(x; c) / \partial x|`;
        ``inverse`` is the same for :math:`T^{-1}`. Everything is in the dtype of the
        transform's parameters (convert the module with ``.to(dtype)`` to work in another).
    """

    features: int
    context_features: int = 0

    def forward(self, inputs, context=None):
        return self._forward(inputs, self._check(inputs, context))

    def inverse(self, inputs, context=None):
        return self._inverse(inputs, self._check(inputs, context))

    def _check(self, inputs, context) -> torch.Tensor | None:
        name = type(self).__name__
        check_vectors(inputs, self.features, name=f"{name} inputs", dtype=_parameter_dtype(self))
        return check_context(
            context, self.context_features, inputs.shape[0], name, dtype=inputs.dtype
        )

    def _forward(self, inputs, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse(self, inputs, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def _invert(self, inputs, context) -> torch.Tensor:
        """The outputs of ``_inverse`` without its log-determinant: all that sampling needs.

        Layers whose log-determinant costs work of its own override this to skip it; the
        outputs must stay the same, bit for bit (``tests/test_flows_sampling.py``).
        """
        return self._inverse(inputs, context)[0]


def _parameter_dtype(module: nn.Module) -> torch.dtype | None:
    """The dtype of ``module``'s first parameter (None without one), depth first.

    Read on every call rather than cached, so it follows ``.to()`` and ``load_state_dict``;
    walking ``_parameters`` and ``_modules`` stops at the first parameter, where
    ``next(module.parameters())`` costs ~10 µs of generator set-up on a deep chain.
    """
    for parameter in module._parameters.values():
        if parameter is not None:
            return parameter.dtype
    for child in module._modules.values():
        # torch keeps a child set to None (an optional part left out) and skips it in
        # parameters(); so must this walk.
        dtype = _parameter_dtype(child) if child is not None else None
        if dtype is not None:
            return dtype
    return None


def split_halves(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[batch, d] -> (x[:, :d // 2], x[:, d // 2:])``, two views (no copy)."""
    first = x.shape[1] // 2
    return x[:, :first], x[:, first:]


class HalvesTransform(FlowTransform):
    r"""A transform that reads and writes its input as two contiguous halves.

    With :math:`x = [x_1, x_2]`, ``x_1 = x[:, :features // 2]``, subclasses implement

    * ``_forward_halves(first [batch, features // 2], second [batch, features - features // 2],
      context) -> (first, second, logabsdet [batch])``, and
    * ``_inverse_halves`` alike, and optionally ``_invert_halves(first, second, context) ->
      (first, second)``, the inverse without its log-determinant,

    on validated tensors. ``_forward`` and ``_inverse`` split the input and concatenate the
    result, so the layer alone behaves like any other transform. A :class:`Chain` instead
    passes the halves from one such layer to the next and concatenates once at the end of a
    run: a coupling flow then spends no copy per layer on merging halves that the next layer
    splits again.
    """

    def _forward(self, inputs, context):
        *halves, logabsdet = self._forward_halves(*split_halves(inputs), context)
        return torch.cat(halves, dim=1), logabsdet

    def _inverse(self, inputs, context):
        *halves, logabsdet = self._inverse_halves(*split_halves(inputs), context)
        return torch.cat(halves, dim=1), logabsdet

    def _invert(self, inputs, context):
        return torch.cat(self._invert_halves(*split_halves(inputs), context), dim=1)

    def _invert_halves(self, first, second, context):
        return self._inverse_halves(first, second, context)[:2]

    def _forward_halves(self, first, second, context):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inverse_halves(self, first, second, context):  # pragma: no cover - abstract
        raise NotImplementedError


class Chain(FlowTransform):
    r"""The composition :math:`T = T_K \circ \dots \circ T_1` of flowbridge transforms.

    .. math::

        \log|\det J_T(x)| = \sum_{k=1}^K \log|\det J_{T_k}(h_{k-1})|, \qquad h_0 = x.

    The arguments are checked once, here; the layers are called unchecked. Besides saving a
    reduction per layer, this keeps an overflow inside the chain from being reported as bad
    *inputs* of some inner layer the caller never saw. Every layer gets the context; the
    unconditional ones ignore it. A run of consecutive :class:`HalvesTransform` layers (the
    couplings) hands the two halves from layer to layer and concatenates them once, after the
    run: the same operations as calling the layers one by one, minus a concatenation (a copy
    of the batch) per layer. ``_invert``, the inverse without log-determinant that sampling
    uses, asks each layer for its ``_invert`` (``_invert_halves``) and sums nothing.

    The chain always runs what ``layers`` holds, so it may be edited like any
    ``nn.ModuleList`` (``chain.layers[i] = ...``, ``append``, ``insert``, ``del``): the next
    call runs the new layers, as the ``state_dict`` holds them, after checking them as the
    constructor does. They must keep the chain's feature count and have its context size or
    none (the chain checks its arguments against the sizes it was built for).

    Args:
        layers: the transforms :math:`T_1, \dots, T_K` (at least one), all
            :class:`FlowTransform` instances on the same number of features.
    """

    def __init__(self, layers: Iterable[FlowTransform]):
        super().__init__()
        layers = tuple(layers)  # a generator would be used up by the checks below
        self.features, self.context_features = _sizes(layers)
        self.layers = nn.ModuleList(layers)

    #: ``(the layers of the last cut, its runs)``; the class's value (no cut yet) stands in
    #: until the first call, also for a chain pickled before there was one.
    _cut: tuple = (None, ())

    def _runs(self) -> tuple[tuple[bool, tuple[FlowTransform, ...]], ...]:
        """``self.layers`` cut into runs: ``(runs on halves?, layers)``, in order.

        The cut is kept with the layers it was made from and made again when ``self.layers``
        no longer holds those very objects: after ``chain.layers[i] = ...``, ``append``,
        ``insert`` or ``del``, the chain runs what its ``layers`` (and so its ``state_dict``)
        hold. The test costs a tuple of the layers and an identity comparison, under 1 µs
        (a forward of ``FlowPrior(8, 4)`` takes hundreds); a new cut also checks the layers, as
        the constructor does. The cut holds the layers it was made from, so a new layer cannot
        reuse the memory, and so the identity, of one of them.
        """
        # What iterating self.layers gives, without nn.Module's __getattr__ and iterator
        # (0.25 µs instead of 1.3).
        layers = tuple(self._modules["layers"]._modules.values())
        cut_from, segments = self._cut
        if layers != cut_from:  # elementwise identity: modules do not define ==
            edited = "the layers of this Chain were edited after it was built"
            try:
                features, context_features = _sizes(layers)
            except (TypeError, ValueError) as error:
                raise type(error)(f"{edited}, and {error}") from None
            # The chain checks its arguments against the sizes it was built for.
            if features != self.features or context_features not in (0, self.context_features):
                raise ValueError(
                    f"{edited} into layers of {features} features and context size "
                    f"{context_features}, but it was built for {self.features} and "
                    f"{self.context_features}; build a new Chain of the new layers"
                )
            runs = groupby(layers, key=lambda layer: isinstance(layer, HalvesTransform))
            segments = tuple((halves, tuple(run)) for halves, run in runs)
            # A plain attribute, not a module: the state_dict keys stay ``layers.*``.
            self._cut = (layers, segments)
        return segments

    def _forward(self, inputs, context):
        return self._compose(inputs, context, inverse=False)

    def _inverse(self, inputs, context):
        return self._compose(inputs, context, inverse=True)

    def _invert(self, inputs, context):
        # _inverse's loop without log-determinants; sampling calls nothing else.
        for halves, run in reversed(self._runs()):
            if halves:
                first, second = split_halves(inputs)
                for layer in reversed(run):
                    first, second = layer._invert_halves(first, second, context)
                inputs = torch.cat((first, second), dim=1)
            else:
                for layer in reversed(run):
                    inputs = layer._invert(inputs, context)
        return inputs

    def _compose(self, inputs, context, inverse: bool):
        terms = []
        segments = self._runs()
        for halves, run in reversed(segments) if inverse else segments:
            run = run[::-1] if inverse else run
            if halves:
                first, second = split_halves(inputs)
                for layer in run:
                    step = layer._inverse_halves if inverse else layer._forward_halves
                    first, second, term = step(first, second, context)
                    terms.append(term)
                inputs = torch.cat((first, second), dim=1)
            else:
                for layer in run:
                    inputs, term = (layer._inverse if inverse else layer._forward)(inputs, context)
                    terms.append(term)
        # One stack and one sum, rather than an add (and its backward node) per layer.
        return inputs, torch.stack(terms).sum(dim=0)


def _sizes(layers: tuple) -> tuple[int, int]:
    """``(features, context_features)`` of a chain of ``layers``, checked as a Chain needs."""
    if not layers:
        raise ValueError("a Chain needs at least one layer, got none")
    for index, layer in enumerate(layers):
        if not isinstance(layer, FlowTransform):
            raise TypeError(
                f"Chain layers must be FlowTransforms (the layers of flowbridge.flows, or "
                f"subclasses of FlowTransform), got {type(layer).__name__} at index {index}"
            )
    sizes = {layer.features for layer in layers}
    if len(sizes) != 1:
        raise ValueError(f"a Chain needs layers of one feature count, got sizes {sizes}")
    contexts = {layer.context_features for layer in layers} - {0}
    if len(contexts) > 1:
        raise ValueError(f"a Chain needs layers of one context size, got sizes {contexts}")
    return sizes.pop(), contexts.pop() if contexts else 0
