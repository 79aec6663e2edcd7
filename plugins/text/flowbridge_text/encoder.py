r"""Text encoder: embedding → bidirectional GRU → mean over real time steps → linear head.

.. math::
    h_{1:n} = \mathrm{BiGRU}(E x_{1:n}), \qquad
    \bar h = \frac{1}{n} \sum_{t=1}^{n} h_t, \qquad
    [s, r\,(, \log\sigma^2)] = W \bar h + b

where ``n`` counts the row's tokens up to its ``<eos>`` (padding excluded). Padding never
reaches the GRU: the batch is packed, so the backward direction starts at each row's own
``<eos>`` and an encoding does not depend on how long the other rows of its batch are.

The two directions are concatenated, so the head sees ``2 * hidden`` features. The original
LNFMM encoder sums them instead (a head of ``hidden`` inputs: Linear(1024 → 1024) there,
Linear(2048 → 1024) here with the same ``hidden = 1024``).

References:
    Mahajan, Gurevych, Roth. Latent Normalizing Flows for Many-to-Many Cross-Domain Mappings.
    ICLR 2020 (text encoder: 2-layer BiGRU of width 1024, mean-pooled).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from flowbridge.domain import EncoderOutput, LatentSpec

from ._checks import check_tokens
from .vocabulary import PAD

__all__ = ["TextEncoder"]


class TextEncoder(nn.Module):
    """Map token ids ``[batch, T]`` to an :class:`~flowbridge.domain.EncoderOutput`.

    Args:
        vocab_size: number of token ids.
        spec: latent sizes (``shared``, ``residual`` (may be 0), ``learned_variance``).
        embedding: word embedding size.
        hidden: GRU width per direction.
        layers: GRU layers.
        dropout: dropout on the input word embeddings in training mode (0: none). On a small
            caption set whose wordings are mostly unique it keeps the encoder from learning
            to name a training item by its wording (benchmarks/README.md).
    """

    def __init__(
        self,
        vocab_size: int,
        spec: LatentSpec,
        embedding: int,
        hidden: int,
        layers: int,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.vocab_size, self.spec = vocab_size, spec
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=PAD)
        self.dropout = nn.Dropout(dropout) if dropout else nn.Identity()
        self.gru = nn.GRU(embedding, hidden, layers, batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * hidden, spec.encoder_features)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        """Encode ``x [batch, T]``: ``shared [batch, d_s]``, ``residual [batch, d_r]``,
        ``log_var [batch, d_s + d_r]`` or ``None``."""
        check_tokens(x, self.vocab_size)
        lengths = (x != PAD).sum(dim=1)
        packed = pack_padded_sequence(
            self.dropout(self.embed(x)), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        # pad_packed_sequence fills padding with zeros, so a plain sum is the sum over real steps.
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True)
        pooled = h.sum(dim=1) / lengths.unsqueeze(1).to(h.dtype)
        return EncoderOutput.from_flat(self.head(pooled), self.spec)

    def extra_repr(self) -> str:
        s = self.spec
        return f"shared={s.shared}, residual={s.residual}, learned_variance={s.learned_variance}"
