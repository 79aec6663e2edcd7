r"""Image decoders: ``(shared, residual, x=None) -> output`` (logits for ``bce``, values for
``l1``/``l2``, feature vectors in features mode); ``x`` is ignored (no teacher forcing)."""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from flowbridge.domain import LatentSpec

from .layers import CONV_FORMAT, UpBlock, level_widths, mlp, resolutions

__all__ = ["ConvDecoder", "FeatureDecoder"]


class ConvDecoder(nn.Module):
    r"""A dense layer of ``[s, r]`` to the base grid, then FiLM-conditioned upsampling blocks,
    the last of which outputs the image.

    .. math:: h_0 = \mathrm{reshape}(W [s, r]), \quad h_{l+1} = \mathrm{UpBlock}_l(h_l, s),
              \quad \hat x = h_L

    The shared code ``s`` enters twice: through the first dense layer and through FiLM at
    every resolution below the output's. The second path is what makes text→image accurate:
    the decoder cannot ignore what the other domain says, however strong the residual. Maps
    ``shared [batch, d_s]``, ``residual [batch, d_r]`` to ``[batch, C, S, S]``; widths mirror
    :class:`~flowbridge_image.encoders.ConvEncoder` (for ``S = 32``: ``4 hidden`` at 4x4,
    ``2 hidden`` at 8x8, ``hidden`` at 16x16, ``C`` at 32x32). No feature map at full
    resolution: on a CPU that is where the time would go.

    With ``shared_dropout`` p > 0, training decodes each row from a zero shared code with
    probability p, so the decoder also learns :math:`D(0, r)`, an image from the residual
    alone: the reference of :meth:`guided`.
    """

    def __init__(
        self, spec: LatentSpec, channels: int, size: int, hidden: int, shared_dropout: float = 0.0
    ):
        super().__init__()
        self.spec, self.shape = spec, (channels, size, size)
        self.shared_dropout = shared_dropout
        sides = resolutions(size)
        widths = level_widths(hidden, len(sides) - 1)
        self.base = sides[-1]
        self.dense = nn.Linear(spec.total, widths[-1] * self.base**2)
        outputs = [channels, *widths[:-1]]
        self.blocks = nn.ModuleList(
            UpBlock(widths[level], outputs[level], spec.shared, bias=level == 0)
            for level in reversed(range(len(widths)))
        )
        self.blocks.to(memory_format=CONV_FORMAT)

    def forward(
        self, shared: torch.Tensor, residual: torch.Tensor, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.training and self.shared_dropout:
            keep = torch.rand(shared.shape[0], 1, device=shared.device) >= self.shared_dropout
            shared = shared * keep.to(shared.dtype)
        return self._decode(shared, residual)

    def guided(self, shared: torch.Tensor, residual: torch.Tensor, weight: float) -> torch.Tensor:
        r"""Classifier-free guidance between the shared code and none:

        .. math:: D(s, r) + w\,(D(s, r) - D(0, r))

        What the shared code adds to the residual's image, ``weight`` = w times more: where a
        residual drawn from the prior disagrees with the code (another colour than the
        caption states), the output leans to the code. Both decodings in one pass of
        ``[2 batch]`` rows; meaningful only for a decoder trained with ``shared_dropout``.
        """
        both = self._decode(
            torch.cat((shared, torch.zeros_like(shared))), torch.cat((residual, residual))
        )
        with_code, without = both.chunk(2)
        return with_code + weight * (with_code - without)

    def _decode(self, shared: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        h = self.dense(torch.cat((shared, residual), dim=1))
        h = rearrange(h, "b (c h w) -> b c h w", h=self.base, w=self.base)
        for block in self.blocks:
            h = block(h, shared)
        return h.contiguous()  # computed in CONV_FORMAT; handed back as a plain NCHW batch

    def extra_repr(self) -> str:
        dropout = f", shared_dropout={self.shared_dropout}" if self.shared_dropout else ""
        return f"shape={list(self.shape)}, spec={self.spec}{dropout}"


class FeatureDecoder(nn.Module):
    """Reconstructs the feature vector from ``[s, r]`` with an MLP ``latent -> hidden ->
    hidden -> feature_dim``: only a training target for the features-mode encoder."""

    def __init__(self, spec: LatentSpec, feature_dim: int, hidden: int):
        super().__init__()
        self.spec, self.feature_dim = spec, feature_dim
        self.net = mlp(spec.total, hidden, feature_dim)

    def forward(
        self, shared: torch.Tensor, residual: torch.Tensor, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.net(torch.cat((shared, residual), dim=1))

    def extra_repr(self) -> str:
        return f"feature_dim={self.feature_dim}, spec={self.spec}"
