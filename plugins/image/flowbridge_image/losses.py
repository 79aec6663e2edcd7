r"""Per-sample losses of the image domain: reconstruction, and the core's hinge adversarial
terms (:mod:`flowbridge.adversarial`, re-exported here).

Every function returns one value per example, ``[batch]``, summed over the example's elements
(pixels or features), as the core's other terms are (see ``flowbridge.Domain``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from flowbridge.adversarial import discriminator_hinge_loss, generator_hinge_loss

__all__ = [
    "l1_loss",
    "l2_loss",
    "bce_loss",
    "RECONSTRUCTION_LOSSES",
    "discriminator_hinge_loss",
    "generator_hinge_loss",
]


def l1_loss(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i |\hat x_i - x_i|`, a Laplace NLL with unit scale up to a constant (the
    original LNFMM's image loss). ``output`` and ``x``: ``[batch, ...]``."""
    return (output - x).abs().flatten(1).sum(dim=1)


def l2_loss(output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r""":math:`\sum_i (\hat x_i - x_i)^2`, a Gaussian NLL with variance 1/2 up to a constant."""
    return (output - x).square().flatten(1).sum(dim=1)


def bce_loss(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    r""":math:`-\sum_i x_i \log \sigma(\ell_i) + (1 - x_i) \log(1 - \sigma(\ell_i))`: a
    Bernoulli NLL of targets ``x`` in [0, 1] under logits ``\ell``."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(dim=1)


RECONSTRUCTION_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "l1": l1_loss,
    "l2": l2_loss,
    "bce": bce_loss,
}
