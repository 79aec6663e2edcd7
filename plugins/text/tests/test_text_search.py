"""Decoding: greedy, sampling and beam search, batched, against brute force and the loss."""

from __future__ import annotations

import itertools

import pytest
import torch

from flowbridge.domain import LatentSpec
from flowbridge_text import (
    BOS,
    EOS,
    PAD,
    UNK,
    TextDomain,
    beam_search,
    greedy_search,
    sample_search,
)

N = 5


@pytest.fixture
def model(domain, spec):
    """An untrained decoder with sharpened outputs (clear argmaxes) and N random latents."""
    torch.manual_seed(1)
    decoder = domain.build_decoder(spec).eval()
    with torch.no_grad():
        decoder.out.weight.mul_(8.0)
    return decoder, torch.randn(N, spec.shared), torch.randn(N, spec.residual)


def _log_prob(domain, decoder, shared, residual, tokens):
    """log p(tokens | z) by teacher forcing: the decoder's own score of a batch."""
    with torch.no_grad():
        return -domain.reconstruction_loss(decoder(shared, residual, tokens), tokens)


def _check_layout(tokens, max_length):
    assert (tokens[:, 0] == BOS).all()
    for row in tokens.tolist():
        end = row.index(EOS)
        assert end <= max_length + 1  # at most max_length words, then <eos>
        assert PAD not in row[:end] and BOS not in row[1:] and set(row[end + 1 :]) <= {PAD}


@pytest.mark.parametrize("method", ["greedy", "sample", "beam"])
def test_scores_are_the_model_log_prob_of_the_output(domain, model, method):
    decoder, shared, residual = model
    generator = torch.Generator().manual_seed(0)
    tokens, scores = domain.generate_ids(
        decoder, shared, residual, method=method, max_length=6, generator=generator
    )
    _check_layout(tokens, max_length=6)
    torch.testing.assert_close(scores, _log_prob(domain, decoder, shared, residual, tokens))


def test_beam_of_one_is_greedy(domain, model):
    decoder, shared, residual = model
    greedy = domain.generate_ids(decoder, shared, residual, method="greedy", max_length=8)
    beam = domain.generate_ids(decoder, shared, residual, method="beam", beam_size=1, max_length=8)
    assert torch.equal(beam[0], greedy[0])
    torch.testing.assert_close(beam[1], greedy[1])


def test_exhaustive_beam_finds_the_most_likely_sequence(captions):
    # Two words plus <unk> and at most 3 words: 1 + 3 + 9 + 27 = 40 possible sequences, so a
    # beam of 40 keeps every hypothesis and must return the brute-force maximum.
    domain = TextDomain(embedding=6, hidden=8, decoder_hidden=8, min_count=1)
    domain.fit(["dog cat"])
    spec = LatentSpec(shared=3, residual=2)
    torch.manual_seed(2)
    decoder = domain.build_decoder(spec).eval()
    with torch.no_grad():
        decoder.out.weight.mul_(4.0)
    shared, residual = torch.randn(N, 3), torch.randn(N, 2)
    words = [UNK, *domain.vocabulary.encode(["dog", "cat"])]
    sequences = [s for n in range(4) for s in itertools.product(words, repeat=n)]
    assert len(sequences) == 40
    every = torch.full((len(sequences), 5), PAD)
    for row, seq in zip(every, sequences, strict=True):
        row[: len(seq) + 2] = torch.tensor([BOS, *seq, EOS])
    all_scores = _log_prob(
        domain,
        decoder,
        shared.repeat_interleave(len(sequences), 0),
        residual.repeat_interleave(len(sequences), 0),
        every.repeat(N, 1),
    ).view(N, len(sequences))
    best_scores, best = all_scores.max(dim=1)

    tokens, scores = domain.generate_ids(
        decoder, shared, residual, method="beam", beam_size=40, max_length=3
    )
    torch.testing.assert_close(scores, best_scores)
    for i in range(N):
        width = len(sequences[best[i]]) + 2
        assert torch.equal(tokens[i, :width], every[best[i], :width])
    greedy = domain.generate_ids(decoder, shared, residual, method="greedy", max_length=3)[1]
    assert (scores >= greedy - 1e-6).all()
    # Narrower beams never beat the exact maximum.
    for beam_size in (2, 3):
        narrow = domain.generate_ids(
            decoder, shared, residual, method="beam", beam_size=beam_size, max_length=3
        )[1]
        assert (narrow <= best_scores + 1e-6).all()


@pytest.mark.parametrize("method, beam_size", [("greedy", 1), ("beam", 2), ("beam", 3)])
def test_batched_generation_equals_one_by_one(domain, model, method, beam_size):
    decoder, shared, residual = model
    options = dict(method=method, beam_size=beam_size, max_length=7)
    batched = domain.generate(decoder, shared, residual, **options)
    single = [
        domain.generate(decoder, shared[i : i + 1], residual[i : i + 1], **options)[0]
        for i in range(N)
    ]
    assert batched == single
    assert all(isinstance(text, str) for text in batched)


def test_sampling_is_seed_deterministic(domain, model):
    decoder, shared, residual = model

    def sample(seed, word_temperature=2.0):
        generator = torch.Generator().manual_seed(seed)
        return domain.generate(
            decoder, shared, residual, method="sample", word_temperature=word_temperature,
            max_length=6, generator=generator,
        )  # fmt: skip

    assert sample(0) == sample(0)
    assert sample(0) != sample(1)
    # A vanishing temperature leaves only the most likely token: sampling becomes greedy.
    greedy = domain.generate(decoder, shared, residual, method="greedy", max_length=6)
    assert sample(0, word_temperature=1e-4) == greedy


def test_generation_stops_at_max_length_and_restores_mode(domain, model):
    decoder, shared, residual = model
    decoder.train()
    for method in ("greedy", "beam"):
        tokens, _ = domain.generate_ids(decoder, shared, residual, method=method, max_length=2)
        _check_layout(tokens, max_length=2)
        assert tokens.shape[1] <= 4
    texts = domain.generate(decoder, shared, residual, max_length=2)
    assert all(len(text.split()) <= 2 for text in texts)
    assert decoder.training
    # generate ran the decoder in eval mode: training-mode dropout did not change the result.
    assert texts == domain.generate(decoder.eval(), shared, residual, max_length=2)


@pytest.mark.parametrize(
    "options, error, match",
    [
        ({"method": "topk"}, ValueError, "method must be one of"),
        ({"method": "beam", "beam_size": 0}, ValueError, "beam_size must be >= 1"),
        ({"word_temperature": 0}, ValueError, "word_temperature must be a finite number > 0"),
        ({"word_temperature": float("nan")}, ValueError, "word_temperature must be a finite"),
        ({"word_temperature": "hot"}, TypeError, "word_temperature must be a number"),
        # The residual noise's temperature is Bridge.translate's, not the decoder's.
        ({"temperature": 0.5}, TypeError, "temperature"),
        ({"max_length": 0}, ValueError, "max_length must be >= 1"),
        ({"generator": 3}, TypeError, "generator must be a torch.Generator"),
        ({"top_p": 0.9}, TypeError, "top_p"),
    ],
)
def test_generate_rejects_bad_options(domain, model, options, error, match):
    decoder, shared, residual = model
    with pytest.raises(error, match=match):
        domain.generate(decoder, shared, residual, **options)


def test_generate_rejects_foreign_decoders_and_latents(domain, model, captions, spec):
    decoder, shared, residual = model
    with pytest.raises(TypeError, match="TextDecoder"):
        domain.generate(torch.nn.Linear(2, 2), shared, residual)
    other = TextDomain(embedding=4, hidden=4, decoder_hidden=4, min_count=1)
    other.fit(["a completely different vocabulary"])
    with pytest.raises(ValueError, match="load the vocabulary the decoder was trained with"):
        other.generate(decoder, shared, residual)
    with pytest.raises(ValueError, match=r"residual must have shape \[batch, 3\]"):
        domain.generate(decoder, shared, residual[:, :2])
    with pytest.raises(ValueError, match="give one residual row per shared row"):
        domain.generate(decoder, shared, residual[:2])


@pytest.mark.parametrize(
    "search, arguments, error, match",
    [
        (beam_search, {"beam_size": 0}, ValueError, "beam_size must be >= 1"),
        (beam_search, {"beam_size": -1}, ValueError, "beam_size must be >= 1"),
        (beam_search, {"max_length": -1}, ValueError, "max_length must be >= 1"),
        (greedy_search, {"max_length": -1}, ValueError, "max_length must be >= 1"),
        (greedy_search, {"max_length": 2.5}, TypeError, "max_length must be an int"),
        (
            sample_search,
            {"temperature": 0.0},
            ValueError,
            "temperature must be a finite number > 0",
        ),
        (
            sample_search,
            {"temperature": -1.0},
            ValueError,
            "temperature must be a finite number > 0",
        ),
        (sample_search, {"generator": 0}, TypeError, "generator must be a torch.Generator"),
        (beam_search, {"shared": [[0.0] * 6]}, TypeError, "shared must be a torch.Tensor"),
        (greedy_search, {"decoder": torch.nn.Linear(2, 2)}, TypeError, "must be a TextDecoder"),
    ],
)
def test_search_functions_reject_bad_arguments(model, search, arguments, error, match):
    decoder, shared, residual = model
    given = {"decoder": decoder, "shared": shared, "residual": residual, "max_length": 3}
    with pytest.raises(error, match=match):
        search(**(given | arguments))


@pytest.mark.parametrize("method", ["greedy", "sample", "beam"])
def test_no_latents_generate_nothing(domain, model, spec, method):
    decoder = model[0]
    shared, residual = torch.zeros(0, spec.shared), torch.zeros(0, spec.residual)
    tokens, scores = domain.generate_ids(decoder, shared, residual, method=method)
    assert tokens.shape == (0, 2) and tokens.dtype == torch.long and scores.shape == (0,)
    assert domain.generate(decoder, shared, residual, method=method) == []
