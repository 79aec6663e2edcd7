r"""The optional adversarial term: hinge losses and a critic scored without training it.

A domain may build a critic :math:`D(x, s) \to \mathbb{R}` that scores how real a batch
``x`` looks for a shared code ``s`` (:meth:`flowbridge.Domain.build_discriminator`). The
critic and the generator (encoders, flows, decoders) minimise the hinge losses

.. math::

    L_D = \max(0, 1 - D(x, s)) + \max(0, 1 + D(\hat x, s)), \qquad L_G = -D(\hat x, s)

with :math:`\hat x` generated and :math:`s` the code it was generated from. Each player's
loss must move only its own parameters: :func:`frozen_scores` scores generated batches for
:math:`L_G` with the critic's parameters detached, and :math:`L_D` sees :math:`\hat x`
detached.

References:
    Lim & Ye, "Geometric GAN", 2017; Miyato & Koyama, "cGANs with Projection
    Discriminator", ICLR 2018.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

__all__ = ["discriminator_hinge_loss", "generator_hinge_loss", "frozen_scores"]


def discriminator_hinge_loss(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    r"""The critic's hinge loss :math:`\max(0, 1 - D(x)) + \max(0, 1 + D(\hat x))`.

    Args:
        real: scores of real examples ``[batch]``.
        fake: scores of generated examples ``[batch]`` (detached from the generator).

    Returns:
        The loss per pair ``[batch]``.
    """
    if real.shape != fake.shape or real.dim() != 1:
        raise ValueError(
            f"real and fake scores must have the same shape [batch], got {list(real.shape)} "
            f"and {list(fake.shape)}; a critic must return one score per example"
        )
    return F.relu(1 - real) + F.relu(1 + fake)


def generator_hinge_loss(fake: torch.Tensor) -> torch.Tensor:
    r"""The generator's hinge loss :math:`-D(\hat x)` for scores ``fake [batch]``."""
    if fake.dim() != 1:
        raise ValueError(
            f"scores must have shape [batch], got {list(fake.shape)}; a critic must return "
            f"one score per example"
        )
    return -fake


def frozen_scores(critic: nn.Module, x: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
    """``critic(x, shared)`` with gradients to ``x`` but none to the critic's parameters.

    Detaching the parameters, rather than switching their ``requires_grad`` off and on, leaves
    the module untouched, so the generator's backward pass cannot leak into the critic's
    gradients and no flag is left wrong if the call raises.

    Args:
        critic: a module ``(x, shared) -> scores [batch]``.
        x: a batch ``[batch, ...]``, usually generated.
        shared: the codes it is scored for ``[batch, d_s]``.
    """
    detached = {name: p.detach() for name, p in critic.named_parameters()}
    return functional_call(critic, detached, (x, shared))
