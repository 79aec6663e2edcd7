r"""The projection discriminator of the original text-to-image model, conditioned on the
shared code."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from flowbridge.domain import LatentSpec

from .items import check_batch
from .layers import downsampling_trunk, level_widths, resolutions

__all__ = ["ProjectionDiscriminator"]


class ProjectionDiscriminator(nn.Module):
    r"""Score how real an image looks *for a given shared code*.

    .. math:: D(x, s) = w^\top \phi(x) + (E s)^\top \phi(x), \quad
              \phi(x) = \sum_{h, w} \mathrm{trunk}(x)_{:, h, w}

    The trunk is the encoder's strided conv stack with spectral norm (and no activation
    normalisation); :math:`w` and the embedding :math:`E` of the shared code are spectrally
    normalised linear maps. Maps ``x [batch, C, S, S]`` (images in [0, 1]) and ``shared
    [batch, d_s]`` to scores ``[batch]``; the bridge trains it with
    :func:`flowbridge.adversarial.discriminator_hinge_loss` (through
    :meth:`flowbridge.Bridge.discriminator_loss`).

    References:
        Miyato & Koyama, "cGANs with Projection Discriminator", ICLR 2018.
        Miyato et al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.
    """

    def __init__(self, spec: LatentSpec, channels: int, size: int, hidden: int):
        super().__init__()
        self.shape = (channels, size, size)
        widths = level_widths(hidden, len(resolutions(size)) - 1)
        self.trunk = downsampling_trunk(channels, widths, spectral=True)
        self.linear = spectral_norm(nn.Linear(widths[-1], 1))
        self.embed = spectral_norm(nn.Linear(spec.shared, widths[-1], bias=False))

    def forward(self, x: torch.Tensor, shared: torch.Tensor) -> torch.Tensor:
        check_batch(x, self.shape, "discriminator input")
        features = self.trunk(x).sum(dim=(2, 3))
        return self.linear(features).squeeze(1) + (self.embed(shared) * features).sum(dim=1)

    def extra_repr(self) -> str:
        return f"shape={list(self.shape)}"
