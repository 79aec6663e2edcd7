"""Encoder, decoder and reconstruction loss of the text domain."""

from __future__ import annotations

import pytest
import torch

from flowbridge.domain import LatentSpec
from flowbridge_text import BOS, EOS, PAD, UNK, TextDomain


def _encode_decode(domain, spec, x):
    encoder, decoder = domain.build_encoder(spec), domain.build_decoder(spec)
    encoded = encoder(x)
    return encoder, decoder, encoded, decoder(encoded.shared, encoded.residual, x)


def test_encoder_shapes_with_learned_variance_and_without_residual(domain):
    x = domain.collate(["a red circle", "a blue square at the bottom right"])
    out = domain.build_encoder(LatentSpec(shared=5, residual=3, learned_variance=True))(x)
    assert out.shared.shape == (2, 5) and out.residual.shape == (2, 3)
    assert out.log_var.shape == (2, 8)
    out = domain.build_encoder(LatentSpec(shared=5, residual=0))(x)
    assert out.residual.shape == (2, 0) and out.log_var is None
    decoder = domain.build_decoder(LatentSpec(shared=5, residual=0))
    assert decoder(out.shared, out.residual, x).shape == (2, x.shape[1] - 1, len(domain.vocabulary))


def test_padding_does_not_change_the_encoding(domain, spec):
    encoder = domain.build_encoder(spec).eval()
    texts = ["a red circle", "two green triangles, side by side!", ""]
    together = encoder(domain.collate(texts))
    for i, text in enumerate(texts):
        alone = encoder(domain.collate([text]))
        torch.testing.assert_close(alone.shared[0], together.shared[i])
        torch.testing.assert_close(alone.residual[0], together.residual[i])
    # Extra padding columns, past every row's end, change nothing either.
    x = domain.collate(texts)
    padded = torch.cat((x, torch.full((3, 4), PAD)), dim=1)
    torch.testing.assert_close(encoder(padded).shared, together.shared)


def _refitted(domain, **options):
    other = TextDomain(**{**domain.options, **options})
    other.load_state_dict(domain.state_dict())
    return other


def test_encoder_dropout_acts_in_training_only(domain, spec):
    # Dropout 1 zeroes every embedding: in training two texts of one length encode alike.
    encoder = _refitted(domain, encoder_dropout=1.0).build_encoder(spec)
    x = domain.collate(["a red circle", "a blue square"])
    trained = encoder.train()(x)
    torch.testing.assert_close(trained.shared[0], trained.shared[1])
    # In eval mode the embeddings pass untouched: the encoding of a model without dropout.
    twin = domain.build_encoder(spec)
    twin.load_state_dict(encoder.state_dict())
    evaluated = encoder.eval()(x)
    torch.testing.assert_close(evaluated.shared, twin.eval()(x).shared)
    assert not torch.allclose(evaluated.shared[0], evaluated.shared[1])
    assert isinstance(twin.dropout, torch.nn.Identity)  # no dropout op at all by default


def test_loss_is_summed_token_nll_ignoring_padding(domain, spec):
    x = domain.collate(["a red circle at the top left.", "a square"])
    _, decoder, encoded, logits = _encode_decode(domain, spec, x)
    loss = domain.reconstruction_loss(logits, x)
    assert loss.shape == (2,)
    logp = logits.log_softmax(dim=-1)
    for i, row in enumerate(x.tolist()):
        end = row.index(EOS)  # targets are row[1 : end + 1]: words and <eos>
        expected = -sum(logp[i, t - 1, row[t]] for t in range(1, end + 1))
        torch.testing.assert_close(loss[i], expected)
    # Logits at padded positions do not count, whatever they are.
    noisy = logits.detach().clone()
    noisy[1, 3:] = torch.randn_like(noisy[1, 3:]) * 100
    torch.testing.assert_close(domain.reconstruction_loss(noisy, x), loss.detach())


def test_loss_of_a_row_does_not_depend_on_its_batch(domain, spec):
    encoder, decoder = domain.build_encoder(spec).eval(), domain.build_decoder(spec).eval()
    texts = ["a green circle and a red square", "a square"]

    def loss(batch):
        x = domain.collate(batch)
        encoded = encoder(x)
        return domain.reconstruction_loss(decoder(encoded.shared, encoded.residual, x), x)

    torch.testing.assert_close(loss(texts)[1], loss(texts[1:])[0])


def test_gradients_reach_every_parameter_and_both_latents(domain):
    spec = LatentSpec(shared=6, residual=3, learned_variance=True)
    x = domain.collate(["a red circle at the top left.", "two green triangles", ""])
    encoder, decoder, encoded, logits = _encode_decode(domain, spec, x)
    encoded.shared.retain_grad()
    encoded.residual.retain_grad()
    (domain.reconstruction_loss(logits, x).sum() + encoded.log_var.sum()).backward()
    for module in (encoder, decoder):
        for name, p in module.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert encoded.shared.grad.abs().sum(dim=1).gt(0).all()
    assert encoded.residual.grad.abs().sum(dim=1).gt(0).all()


def test_word_dropout_acts_in_training_mode_only(captions):
    domain = TextDomain(
        embedding=8, hidden=8, decoder_hidden=8, min_count=1, word_dropout=1.0, embedding_dropout=0
    )
    domain.fit(captions)
    spec = LatentSpec(shared=4, residual=2)
    decoder = domain.build_decoder(spec)
    shared, residual = torch.randn(2, 4), torch.randn(2, 2)
    x = domain.collate(["a red circle", "a blue square at the bottom right"])
    # word_dropout=1: every input word is <unk>, so training logits equal those of an all-<unk> x.
    all_unk = x.masked_fill((x != PAD) & (x != BOS), UNK)
    decoder.train()
    torch.testing.assert_close(
        decoder(shared, residual, x), decoder.eval()(shared, residual, all_unk)
    )
    # In eval mode the words are the real ones.
    assert not torch.allclose(decoder(shared, residual, x), decoder(shared, residual, all_unk))


def test_step_by_step_decoding_matches_teacher_forcing(domain, spec):
    decoder = domain.build_decoder(spec).eval()
    shared, residual = torch.randn(2, spec.shared), torch.randn(2, spec.residual)
    x = domain.collate(["a red circle at the top left.", "a square"])
    forced = decoder(shared, residual, x)
    state, latent_input = decoder.start(shared, residual)
    for t in range(x.shape[1] - 1):
        logits, state = decoder.step(x[:, t], latent_input, state)
        torch.testing.assert_close(logits, forced[:, t])


@pytest.mark.parametrize(
    "make_x, error, match",
    [
        (lambda x: x.float(), TypeError, "integer token ids"),
        (lambda x: x[0], ValueError, r"shape \[batch >= 1, T >= 2\]"),
        (lambda x: x[:, :1], ValueError, r"shape \[batch >= 1, T >= 2\]"),
        (lambda x: x + 1000, ValueError, "collated with another vocabulary"),
        (lambda x: x[:, 1:], ValueError, "start with <bos>"),
        (lambda x: x.tolist(), TypeError, "must be a torch.Tensor"),
    ],
)
def test_networks_reject_bad_batches(domain, spec, make_x, error, match):
    x = make_x(domain.collate(["a red circle", "a square"]))
    with pytest.raises(error, match=match):
        domain.build_encoder(spec)(x)
    with pytest.raises(error, match=match):
        domain.build_decoder(spec)(torch.zeros(2, spec.shared), torch.zeros(2, spec.residual), x)


def test_decoder_needs_x_and_matching_latents(domain, spec):
    decoder = domain.build_decoder(spec)
    x = domain.collate(["a red circle"])
    with pytest.raises(ValueError, match="TextDomain.generate"):
        decoder(torch.zeros(1, spec.shared), torch.zeros(1, spec.residual))
    with pytest.raises(ValueError, match=r"shared must have shape \[batch, 6\]"):
        decoder(torch.zeros(1, 5), torch.zeros(1, spec.residual), x)
    with pytest.raises(ValueError, match="x has 1 rows but the latents have 2"):
        decoder(torch.zeros(2, spec.shared), torch.zeros(2, spec.residual), x)


@pytest.mark.parametrize(
    "shape, dtype, error, match",
    [
        (
            (1, 5, 30),
            torch.float32,
            ValueError,
            r"\[batch, T-1, V\] = \[1, 4, 30\].* got \[1, 5, 30\]",
        ),
        ((1, 4, 5), torch.float32, ValueError, r"30-token vocabulary, got \[1, 4, 5\]"),
        ((1, 4, 50), torch.float32, ValueError, r"30-token vocabulary, got \[1, 4, 50\]"),
        ((1, 4), torch.float32, ValueError, r"= \[1, 4, 30\] .* got \[1, 4\]"),
        ((1, 4, 30), torch.long, TypeError, "floating-point logits, got dtype torch.int64"),
    ],
)
def test_reconstruction_loss_rejects_mismatched_logits(domain, shape, dtype, error, match):
    x = domain.collate(["a red circle"])
    assert len(domain.vocabulary) == 30
    with pytest.raises(error, match=match):
        domain.reconstruction_loss(torch.zeros(shape, dtype=dtype), x)
    with pytest.raises(TypeError, match="must be the decoder's logits, a torch.Tensor"):
        domain.reconstruction_loss(torch.zeros(1, 4, 30).tolist(), x)
