r"""Building blocks of the image networks: the resolution schedule, FiLM normalisation, the
upsampling block of the decoder and the strided conv trunk of the encoder and the
discriminator.

References:
    Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018.
    Brock et al., "Large Scale GAN Training for High Fidelity Natural Image Synthesis" (BigGAN),
    ICLR 2019 (conditional normalisation in every generator block).
    Radford et al., "Unsupervised Representation Learning with Deep Convolutional GANs"
    (DCGAN), ICLR 2016 (strided and transposed 4x4 convs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "CONV_FORMAT",
    "resolutions",
    "level_widths",
    "FiLMNorm",
    "UpBlock",
    "downsampling_trunk",
    "mlp",
]

#: Memory format of the encoder's and decoder's conv weights and feature maps. oneDNN's CPU
#: convolutions work in NHWC: handed NCHW tensors they reorder them around every call. On the
#: testbed's networks (batch 64, 2 threads) a training step of encoder and decoder takes about
#: 12% less time in NHWC; CUDA convolutions take either.
CONV_FORMAT = torch.channels_last


def resolutions(size: int) -> list[int]:
    """Image sides from ``size`` down to the base grid, halving while the side is even and > 4.

    >>> resolutions(32), resolutions(64), resolutions(24)
    ([32, 16, 8, 4], [64, 32, 16, 8, 4], [24, 12, 6, 3])
    """
    sides = [size]
    while sides[-1] % 2 == 0 and sides[-1] > 4:
        sides.append(sides[-1] // 2)
    return sides


def level_widths(hidden: int, levels: int) -> list[int]:
    """Channel widths after each of ``levels`` halvings: ``hidden`` doubled per level, at most
    8x (so a 64-pixel image does not end at 16x the base width).

    >>> level_widths(32, 4)
    [32, 64, 128, 256]
    """
    return [hidden * 2 ** min(level, 3) for level in range(levels)]


def _groups(channels: int) -> int:
    # Up to 8 groups that divide the width, so tiny test widths still normalise.
    return math.gcd(channels, 8)


class FiLMNorm(nn.Module):
    r"""Group normalisation whose scale and shift are affine functions of a context (FiLM).

    .. math:: y = \mathrm{GN}(h) \odot (1 + \gamma(c)) + \beta(c), \quad
              [\gamma, \beta] = W c + b

    The linear map starts at zero, so a fresh block is a plain group norm and the context's
    influence is learned rather than imposed by a random initialisation.

    Args:
        channels: feature channels ``C`` of ``h [batch, C, H, W]``.
        context_features: size of the context ``c [batch, d_s]`` (the shared code).
    """

    def __init__(self, channels: int, context_features: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(channels), channels, affine=False)
        self.film = nn.Linear(context_features, 2 * channels)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, h: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        gamma, beta = rearrange(self.film(context), "b (two c) -> two b c 1 1", two=2)
        return self.norm(h) * (1 + gamma) + beta


class UpBlock(nn.Module):
    r"""Double the resolution, conditioned through FiLM: normalise, modulate, activate, then a
    4x4 transposed conv with stride 2.

    .. math:: y = \mathrm{ConvT}_{4 \times 4, /2}(\sigma(\mathrm{FiLM}(h, c)))

    maps ``[batch, in_channels, H, W]`` to ``[batch, out_channels, 2H, 2W]`` (SiLU
    :math:`\sigma`). DCGAN's upsampling with BigGAN's per-block conditioning; one transposed
    conv costs 4/9 of an upsample followed by a 3x3 conv, which keeps CPU training fast.
    Give ``bias=False`` when another block follows: its normalisation would cancel the bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, context_features: int, bias: bool = True
    ):
        super().__init__()
        self.norm = FiLMNorm(in_channels, context_features)
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=bias)

    def forward(self, h: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.conv(F.silu(self.norm(h, context)))


def downsampling_trunk(in_channels: int, widths: list[int], *, spectral: bool) -> nn.Sequential:
    """Strided 4x4 convs, each halving the side: ``[batch, C, H, W] -> [batch, widths[-1],
    H / 2^L, W / 2^L]`` with ``L = len(widths)``.

    Args:
        in_channels: image channels ``C``.
        widths: output width of each conv.
        spectral: discriminator flavour: spectral norm on every conv and no activation
            normalisation (SN-GAN); otherwise group norm after every conv (the encoder).
    """
    layers: list[nn.Module] = []
    for width in widths:
        # A bias right before a normalisation is cancelled by it (a dead parameter).
        conv = nn.Conv2d(in_channels, width, 4, stride=2, padding=1, bias=spectral)
        if spectral:
            layers += [spectral_norm(conv), nn.LeakyReLU(0.2)]
        else:
            layers += [conv, nn.GroupNorm(_groups(width), width), nn.SiLU()]
        in_channels = width
    return nn.Sequential(*layers)


def mlp(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Linear -> ReLU -> Linear -> ReLU -> Linear, the original captioning model's feature MLP
    (4096 -> 2048 -> 2048 -> latent)."""
    return nn.Sequential(
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_features),
    )
