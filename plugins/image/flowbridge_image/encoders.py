r"""Image encoders: ``x -> EncoderOutput(shared, residual, log_var)``.

Both end in one linear layer of :attr:`~flowbridge.domain.LatentSpec.encoder_features`
outputs (``d_s + d_r``, twice that when the posterior variance is learned), split by
:meth:`EncoderOutput.from_flat <flowbridge.domain.EncoderOutput.from_flat>`.
"""

from __future__ import annotations

import torch
from torch import nn

from flowbridge.domain import EncoderOutput, LatentSpec

from .items import check_batch
from .layers import CONV_FORMAT, downsampling_trunk, level_widths, mlp, resolutions

__all__ = ["ConvEncoder", "FeatureEncoder"]


class ConvEncoder(nn.Module):
    r"""Strided convs down to a 4x4 (or 3x3, 5x5...) grid, then a linear head.

    ``[batch, C, S, S] -> shared [batch, d_s], residual [batch, d_r]`` (and ``log_var``);
    for ``S = 32``: 32 -> 16 -> 8 -> 4 with widths ``hidden, 2 hidden, 4 hidden``.

    Args:
        spec: latent sizes.
        channels: image channels ``C``.
        size: image side ``S``.
        hidden: width of the first conv.
    """

    def __init__(self, spec: LatentSpec, channels: int, size: int, hidden: int):
        super().__init__()
        self.spec, self.shape = spec, (channels, size, size)
        sides = resolutions(size)
        widths = level_widths(hidden, len(sides) - 1)
        self.trunk = downsampling_trunk(channels, widths, spectral=False)
        self.head = nn.Linear(widths[-1] * sides[-1] ** 2, spec.encoder_features)
        self.trunk.to(memory_format=CONV_FORMAT)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        check_batch(x, self.shape, "image encoder input")
        h = self.trunk(x.contiguous(memory_format=CONV_FORMAT))
        # flatten reads NCHW order (a copy from NHWC), so the head's weights keep their meaning.
        return EncoderOutput.from_flat(self.head(h.flatten(1)), self.spec)

    def extra_repr(self) -> str:
        return f"shape={list(self.shape)}, spec={self.spec}"


class FeatureEncoder(nn.Module):
    """The original captioning encoder: an MLP of a precomputed feature vector (VGG16 fc7).

    ``[batch, feature_dim] -> shared [batch, d_s], residual [batch, d_r]`` (and ``log_var``)
    through ``feature_dim -> hidden -> hidden -> latent`` with ReLUs.
    """

    def __init__(self, spec: LatentSpec, feature_dim: int, hidden: int):
        super().__init__()
        self.spec, self.feature_dim = spec, feature_dim
        self.net = mlp(feature_dim, hidden, spec.encoder_features)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        check_batch(x, (self.feature_dim,), "feature encoder input")
        return EncoderOutput.from_flat(self.net(x), self.spec)

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, spec={self.spec}"
