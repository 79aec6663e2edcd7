r"""Decoding latents into token ids: greedy, ancestral sampling and beam search.

All three run every latent of a batch at once (beam search over ``batch × beam`` rows) and
return ids in the layout :meth:`TextDomain.collate` produces, ``<bos> w_1 … w_n <eos> <pad>…``,
with the score of each sequence

.. math::
    \log p(w_{1:n}, \texttt{<eos>} \mid z) = \sum_{t=1}^{n+1} \log p(w_t \mid w_{<t}, z)

under the decoder in evaluation mode, i.e. exactly ``-reconstruction_loss`` of the returned
batch. ``<pad>`` and ``<bos>`` are never proposed (training never asks for them) and their
probability mass is not redistributed, so scores stay the model's own log-probabilities.
Every sequence ends with ``<eos>``: after ``max_length`` tokens (words and punctuation marks)
it is the only token allowed. Each step runs the decoder once on every row, so the time grows
linearly with ``max_length`` (an untrained decoder seldom emits ``<eos>`` and takes every
step). ``n = 0`` latents give ``tokens [0, 2]`` and ``scores [0]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from einops import rearrange, repeat

from flowbridge.checks import check_positive_int, check_positive_number
from flowbridge.flows import draw_device

from .decoder import TextDecoder
from .vocabulary import BOS, EOS, PAD

__all__ = ["greedy_search", "sample_search", "beam_search", "check_search_options"]


def check_search_options(
    decoder: object,
    max_length: object,
    beam_size: object = 1,
    temperature: object = 1.0,
    generator: object = None,
) -> None:
    """Raise ``TypeError``/``ValueError`` unless the decoding options are usable: a
    :class:`TextDecoder`, ``max_length >= 1`` and ``beam_size >= 1`` ints, a finite
    ``temperature > 0`` and ``generator`` ``None`` or a ``torch.Generator``."""
    if not isinstance(decoder, TextDecoder):
        raise TypeError(
            f"decoder must be a TextDecoder (the module TextDomain.build_decoder makes), got "
            f"{type(decoder).__name__}"
        )
    check_positive_int(max_length, "max_length")
    check_positive_int(beam_size, "beam_size")
    check_positive_number(temperature, "temperature")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")


def _next_log_probs(logits: torch.Tensor, finished: torch.Tensor, last_step: bool) -> torch.Tensor:
    """Log-probabilities ``[..., V]`` of the tokens a hypothesis may take next (others -inf).

    A finished hypothesis may only append ``<pad>``, at no cost, so its score stays fixed.
    """
    logp = logits.log_softmax(dim=-1)
    blocked = torch.zeros(logp.shape[-1], dtype=torch.bool, device=logp.device)
    if last_step:
        blocked[:] = True
        blocked[EOS] = False
    blocked[PAD] = blocked[BOS] = True
    logp = logp.masked_fill(blocked, float("-inf"))
    pad_only = torch.full_like(logp, float("-inf"))
    pad_only[..., PAD] = 0.0
    return torch.where(finished.unsqueeze(-1), pad_only, logp)


def _stepwise(
    decoder: TextDecoder,
    shared: torch.Tensor,
    residual: torch.Tensor,
    max_length: int,
    choose: Callable[[torch.Tensor], torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Extend every row by the token ``choose(log_probs [n, V]) -> [n]`` picks, until ``<eos>``."""
    state, latent_input = decoder.start(shared, residual)
    n = latent_input.shape[0]
    token = torch.full((n,), BOS, dtype=torch.long, device=latent_input.device)
    tokens, scores = [token], latent_input.new_zeros(n)
    finished = torch.zeros(n, dtype=torch.bool, device=latent_input.device)
    for step in range(max_length + 1):
        logits, state = decoder.step(token, latent_input, state)
        logp = _next_log_probs(logits, finished, last_step=step == max_length)
        token = choose(logp)
        scores = scores + logp.gather(1, token.unsqueeze(1)).squeeze(1)
        finished = finished | (token == EOS)
        tokens.append(token)
        if bool(finished.all()):
            break
    return torch.stack(tokens, dim=1), scores


def greedy_search(
    decoder: TextDecoder, shared: torch.Tensor, residual: torch.Tensor, max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely next token at every step.

    Args:
        decoder: a :class:`TextDecoder` (put it in eval mode: dropout would act otherwise).
        shared, residual: latents ``[n, d_s]``, ``[n, d_r]``.
        max_length: most tokens (words and punctuation marks) per sequence, ``<bos>`` and
            ``<eos>`` not counted.

    Returns:
        ``tokens [n, L]`` (``L <= max_length + 2``) and ``scores [n]`` (log-probabilities).

    Raises:
        TypeError, ValueError: a bad option (see :func:`check_search_options`) or latents.
    """
    check_search_options(decoder, max_length)
    return _stepwise(decoder, shared, residual, max_length, lambda logp: logp.argmax(dim=-1))


def sample_search(
    decoder: TextDecoder,
    shared: torch.Tensor,
    residual: torch.Tensor,
    max_length: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Ancestral sampling from :math:`p(w_t \mid w_{<t}, z)^{1/\tau}` (renormalised).

    Arguments and returns as :func:`greedy_search`; ``temperature`` ``τ > 0`` sharpens
    (``< 1``) or flattens (``> 1``) each step's distribution, the scores stay those of the
    untempered model; ``generator`` makes the draw reproducible.
    """
    check_search_options(decoder, max_length, temperature=temperature, generator=generator)

    def choose(logp: torch.Tensor) -> torch.Tensor:
        probs = (logp / temperature).softmax(dim=-1)
        # Drawn on the generator's device, so a CPU generator also seeds a model on a GPU.
        where = draw_device(generator, probs.device)
        drawn = torch.multinomial(probs.to(where), 1, generator=generator)
        return drawn.squeeze(1).to(probs.device)

    return _stepwise(decoder, shared, residual, max_length, choose)


def beam_search(
    decoder: TextDecoder,
    shared: torch.Tensor,
    residual: torch.Tensor,
    max_length: int,
    beam_size: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the ``beam_size`` best-scoring prefixes per latent; return the best sequence.

    Finished hypotheses stay in the beam with their final score, competing with the live
    ones; the search stops when every beam of every latent has finished. Scores are not
    length-normalised (the original LNFMM decoding, beam 2). With ``beam_size=1`` this is
    :func:`greedy_search`; with a beam as large as the number of possible sequences it is the
    exact most likely sequence.

    Arguments and returns as :func:`greedy_search`.
    """
    check_search_options(decoder, max_length, beam_size=beam_size)
    beams = beam_size
    (h, c), latent_input = decoder.start(shared, residual)
    n = latent_input.shape[0]
    # Row i * beams + k is beam k of latent i.
    state = (repeat(h, "l n d -> l (n k) d", k=beams), repeat(c, "l n d -> l (n k) d", k=beams))
    latent_input = repeat(latent_input, "n d -> (n k) d", k=beams)
    device = latent_input.device
    tokens = torch.full((n, beams, 1), BOS, dtype=torch.long, device=device)
    # All beams start as the same <bos> prefix: only the first is live, or the beam would
    # fill with copies of one hypothesis.
    scores = torch.full((n, beams), float("-inf"), device=device, dtype=latent_input.dtype)
    scores[:, 0] = 0.0
    finished = torch.zeros(n, beams, dtype=torch.bool, device=device)
    offsets = torch.arange(n, device=device).unsqueeze(1) * beams
    for step in range(max_length + 1):
        previous = rearrange(tokens[..., -1], "n k -> (n k)")
        logits, state = decoder.step(previous, latent_input, state)
        logp = _next_log_probs(
            rearrange(logits, "(n k) v -> n k v", k=beams), finished, step == max_length
        )
        vocab = logp.shape[-1]
        candidates = rearrange(scores.unsqueeze(-1) + logp, "n k v -> n (k v)")
        scores, index = candidates.topk(beams, dim=1)
        origin, token = index // vocab, index % vocab
        history = tokens.gather(1, repeat(origin, "n k -> n k t", t=tokens.shape[-1]))
        tokens = torch.cat((history, token.unsqueeze(-1)), dim=-1)
        # A beam left at -inf (fewer live candidates than beams) is dead: finish it too.
        finished = finished.gather(1, origin) | (token == EOS) | scores.isneginf()
        rows = rearrange(origin + offsets, "n k -> (n k)")
        state = (state[0][:, rows], state[1][:, rows])
        if bool(finished.all()):
            break
    best = scores.argmax(dim=1, keepdim=True)
    tokens = tokens.gather(1, repeat(best, "n 1 -> n 1 t", t=tokens.shape[-1])).squeeze(1)
    return tokens, scores.gather(1, best).squeeze(1)
