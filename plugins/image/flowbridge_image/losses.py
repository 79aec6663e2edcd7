r"""Per-sample reconstruction losses of the image domain. (The adversarial hinge losses are the
core's: :mod:`flowbridge.adversarial`.)

Every function returns one value per example, ``[batch]``, summed over the example's elements
(pixels or features), as the core's other terms are (see ``flowbridge.Domain``). The
reconstruction losses take optional per-element ``weights`` (broadcast against ``x``): the
image domain's ``edge_weight`` weighs each pixel by :math:`1 + w\,e_p` with :func:`edge_map`.
Weights that depend on the target alone keep every pixel's term a proper scoring rule (its
best prediction is still the pixel itself); they only decide which pixels the gradient
favours. Why: a few corner pixels tell a small diamond from a small circle, and an unweighted
sum over all the pixels leaves them for late in training (the shapes testbed's image
autoencoder keeps 97% of its small shapes after 2,000 steps at ``edge_weight`` 2, 89.5%
without; ``benchmarks/README.md``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = [
    "edge_map",
    "l1_loss",
    "l2_loss",
    "bce_loss",
    "RECONSTRUCTION_LOSSES",
]


def edge_map(x: torch.Tensor) -> torch.Tensor:
    r"""How far each pixel differs from its four neighbours, ``[batch, C, H, W] -> [batch, 1,
    H, W]``: :math:`e_p = \max_{q \in N_4(p)} \max_c |x_{c,p} - x_{c,q}|`, in [0, 1] for
    images in [0, 1] (0 inside flat regions, 1 on an edge between black and white)."""
    across = (x[..., :, 1:] - x[..., :, :-1]).abs().amax(dim=1, keepdim=True)  # [b, 1, H, W-1]
    down = (x[..., 1:, :] - x[..., :-1, :]).abs().amax(dim=1, keepdim=True)  # [b, 1, H-1, W]
    # Each difference belongs to both pixels it separates: padded on each side in turn.
    return torch.stack(
        [
            F.pad(across, (1, 0)),
            F.pad(across, (0, 1)),
            F.pad(down, (0, 0, 1, 0)),
            F.pad(down, (0, 0, 0, 1)),
        ]
    ).amax(dim=0)


def _summed(elementwise: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    if weights is not None:
        elementwise = elementwise * weights
    return elementwise.flatten(1).sum(dim=1)


def l1_loss(
    output: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    r""":math:`\sum_i w_i |\hat x_i - x_i|`, a Laplace NLL with unit scale up to a constant (the
    original LNFMM's image loss) when the weights are 1. ``output`` and ``x``: ``[batch, ...]``."""
    return _summed((output - x).abs(), weights)


def l2_loss(
    output: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    r""":math:`\sum_i w_i (\hat x_i - x_i)^2`, a Gaussian NLL with variance 1/2 up to a constant
    when the weights are 1."""
    return _summed((output - x).square(), weights)


def bce_loss(
    logits: torch.Tensor, x: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    r""":math:`-\sum_i w_i \left[x_i \log \sigma(\ell_i) + (1 - x_i) \log(1 - \sigma(\ell_i))
    \right]`: a Bernoulli NLL of targets ``x`` in [0, 1] under logits ``\ell`` when the weights
    are 1."""
    return _summed(F.binary_cross_entropy_with_logits(logits, x, reduction="none"), weights)


RECONSTRUCTION_LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "l1": l1_loss,
    "l2": l2_loss,
    "bce": bce_loss,
}
