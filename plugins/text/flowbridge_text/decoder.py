r"""Text decoder: an LSTM language model conditioned on the latent at every step.

With ``z = [s, r]`` (shared and residual code, ``[batch, d_s + d_r]``):

.. math::
    (h_0, c_0) = (\tanh A_h z,\; A_c z), \qquad
    u = P z, \qquad
    (o_t, h_t, c_t) = \mathrm{LSTM}([u, E w_{t-1}], h_{t-1}, c_{t-1}), \qquad
    p(w_t \mid w_{<t}, z) = \mathrm{softmax}(O o_t)

Feeding the latent input ``u`` at every step (not only through the initial state) keeps
the latent in reach of every word, as in the original LNFMM decoder. During training the
previous words ``w_{t-1}`` are the true ones (teacher forcing), each replaced by ``<unk>`` with
probability ``word_dropout`` so the decoder has to lean on ``z`` instead of on the words it is
given: the lever against posterior collapse (0.8 in the original).
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import nn

from flowbridge.checks import check_vectors
from flowbridge.domain import LatentSpec

from ._checks import check_tokens
from .vocabulary import BOS, PAD, UNK

__all__ = ["TextDecoder"]

State = tuple[torch.Tensor, torch.Tensor]


class TextDecoder(nn.Module):
    """``(shared [batch, d_s], residual [batch, d_r], x [batch, T]) -> logits [batch, T-1, V]``.

    The logits at position ``t`` predict token ``x[:, t + 1]`` from ``x[:, :t + 1]``. For
    decoding without ``x``, :meth:`start` and :meth:`step` run the same network one token at a
    time (what :func:`flowbridge_text.search.beam_search` and friends use).

    Args:
        vocab_size: number of token ids ``V``.
        spec: latent sizes.
        embedding: word embedding size.
        hidden: LSTM width (also the size of the latent input ``u`` fed at every step).
        layers: LSTM layers.
        word_dropout: probability of replacing an input word by ``<unk>`` in training mode.
        embedding_dropout: dropout on the input word embeddings in training mode.
    """

    def __init__(
        self,
        vocab_size: int,
        spec: LatentSpec,
        embedding: int,
        hidden: int,
        layers: int,
        word_dropout: float,
        embedding_dropout: float,
    ):
        super().__init__()
        self.vocab_size, self.spec, self.word_dropout = vocab_size, spec, word_dropout
        self.layers, self.hidden = layers, hidden
        self.initial = nn.Linear(spec.total, 2 * layers * hidden)
        self.project = nn.Linear(spec.total, hidden)
        self.embed = nn.Embedding(vocab_size, embedding, padding_idx=PAD)
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.lstm = nn.LSTM(hidden + embedding, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, vocab_size)

    def start(self, shared: torch.Tensor, residual: torch.Tensor) -> tuple[State, torch.Tensor]:
        """Initial LSTM state ``(h, c)``, each ``[layers, batch, hidden]``, and the latent input
        ``u = P z`` ``[batch, hidden]`` fed at every step (:meth:`step`'s ``latent_input``)."""
        shared = check_vectors(shared, self.spec.shared, "shared")
        residual = check_vectors(residual, self.spec.residual, "residual")
        if shared.shape[0] != residual.shape[0]:
            raise ValueError(
                f"shared has {shared.shape[0]} rows but residual has {residual.shape[0]}; "
                f"give one residual row per shared row"
            )
        z = torch.cat((shared, residual), dim=1)
        h, c = rearrange(self.initial(z), "b (two l h) -> two l b h", two=2, l=self.layers)
        return (torch.tanh(h).contiguous(), c.contiguous()), self.project(z)

    def _run(
        self, tokens: torch.Tensor, latent_input: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        """Logits ``[batch, t, V]`` for input tokens ``[batch, t]``, and the state after them."""
        words = self.embedding_dropout(self.embed(tokens))
        latent_steps = repeat(latent_input, "b h -> b t h", t=tokens.shape[1])
        inputs = torch.cat((latent_steps, words), dim=2)
        outputs, state = self.lstm(inputs, state)
        return self.out(outputs), state

    def step(
        self, tokens: torch.Tensor, latent_input: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        """One decoding step: previous tokens ``[batch]`` → next-token logits ``[batch, V]``,
        given the latent input ``[batch, hidden]`` and the state from :meth:`start`."""
        logits, state = self._run(tokens.unsqueeze(1), latent_input, state)
        return logits.squeeze(1), state

    def forward(
        self, shared: torch.Tensor, residual: torch.Tensor, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        if x is None:
            raise ValueError(
                "the text decoder scores a given batch x (teacher forcing) and needs it; to "
                "decode latents into text use TextDomain.generate(decoder, shared, residual)"
            )
        check_tokens(x, self.vocab_size)
        state, latent_input = self.start(shared, residual)
        if x.shape[0] != latent_input.shape[0]:
            raise ValueError(
                f"x has {x.shape[0]} rows but the latents have {latent_input.shape[0]}"
            )
        tokens = x[:, :-1]
        if self.training and self.word_dropout > 0:
            # <bos> and padding stay: the first is the only cue where a caption starts, and
            # padding only ever predicts ignored positions.
            drop = torch.rand(tokens.shape, device=x.device) < self.word_dropout
            drop &= (tokens != PAD) & (tokens != BOS)
            tokens = tokens.masked_fill(drop, UNK)
        return self._run(tokens, latent_input, state)[0]

    def extra_repr(self) -> str:
        return (
            f"shared={self.spec.shared}, residual={self.spec.residual}, "
            f"word_dropout={self.word_dropout}"
        )
