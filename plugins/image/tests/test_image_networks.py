import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from flowbridge.adversarial import discriminator_hinge_loss, generator_hinge_loss
from flowbridge.domain import EncoderOutput, LatentSpec
from flowbridge_image import ImageDomain
from flowbridge_image.layers import FiLMNorm


def _build(domain, spec):
    return domain.build_encoder(spec), domain.build_decoder(spec)


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 24, 32, 64])
def test_encoder_and_decoder_shapes(channels, size):
    domain = ImageDomain(size=size, channels=channels, hidden=4)
    spec = LatentSpec(shared=6, residual=3)
    encoder, decoder = _build(domain, spec)
    x = domain.example_batch(2, torch.Generator().manual_seed(0))
    assert x.shape == (2, channels, size, size)
    shared, residual, log_var = encoder(x)
    assert shared.shape == (2, 6) and residual.shape == (2, 3) and log_var is None
    output = decoder(shared, residual)
    assert output.shape == x.shape
    assert domain.reconstruction_loss(output, x).shape == (2,)


@pytest.mark.parametrize("loss", ["l1", "l2", "bce"])
def test_gradients_reach_every_encoder_and_decoder_parameter(loss):
    domain = ImageDomain(size=16, channels=3, hidden=4, loss=loss)
    spec = LatentSpec(shared=5, residual=2, learned_variance=True)
    encoder, decoder = _build(domain, spec)
    x = domain.example_batch(3, torch.Generator().manual_seed(0))
    latent = encoder(x)
    # The log-variance goes unused by the reconstruction; give it a term of its own.
    total = domain.reconstruction_loss(decoder(latent.shared, latent.residual), x).sum()
    (total + latent.log_var.square().sum()).backward()
    # Gradients here are O(1) or larger; a parameter whose effect a normalisation cancels
    # gets rounding noise (~1e-5) instead.
    for name, parameter in [*encoder.named_parameters(), *decoder.named_parameters()]:
        assert parameter.grad is not None, name
        assert parameter.grad.abs().max() > 1e-2, name


def test_learned_variance_adds_a_log_variance_for_the_whole_latent():
    domain = ImageDomain(size=16, channels=1, hidden=4)
    encoder = domain.build_encoder(LatentSpec(shared=6, residual=3, learned_variance=True))
    latent = encoder(domain.example_batch(4, torch.Generator().manual_seed(0)))
    assert latent.log_var.shape == (4, 9)
    assert latent.shared.shape == (4, 6) and latent.residual.shape == (4, 3)


@pytest.mark.parametrize("learned_variance", [False, True])
def test_the_encoder_heads_are_split_by_the_domain_contract(learned_variance):
    spec = LatentSpec(shared=3, residual=2, learned_variance=learned_variance)
    assert spec.encoder_features == (10 if learned_variance else 5)
    for encoder in (
        ImageDomain(size=16, channels=1, hidden=4).build_encoder(spec),
        ImageDomain(encoder="features", feature_dim=8, hidden=4).build_encoder(spec),
    ):
        head = encoder.head if hasattr(encoder, "head") else encoder.net[-1]
        assert head.out_features == spec.encoder_features
    # from_flat cuts shared, residual, then log_var, in that order.
    h = torch.arange(2 * spec.encoder_features, dtype=torch.float32).view(2, -1)
    out = EncoderOutput.from_flat(h, spec)
    torch.testing.assert_close(out.shared, h[:, :3])
    torch.testing.assert_close(out.residual, h[:, 3:5])
    if learned_variance:
        torch.testing.assert_close(out.log_var, h[:, 5:])
    else:
        assert out.log_var is None
    width = spec.encoder_features
    with pytest.raises(ValueError, match=rf"shape \[batch, {width}\].*got \[2, 4\]"):
        EncoderOutput.from_flat(h[:, :4], spec)


def test_residual_zero_is_a_deterministic_domain():
    domain = ImageDomain(size=16, channels=1, hidden=4)
    encoder, decoder = _build(domain, LatentSpec(shared=6, residual=0))
    x = domain.example_batch(2, torch.Generator().manual_seed(0))
    shared, residual, _ = encoder(x)
    assert residual.shape == (2, 0)
    output = decoder(shared, residual)
    assert output.shape == x.shape
    domain.reconstruction_loss(output, x).sum().backward()
    assert all(p.grad is not None for p in decoder.parameters())


def test_decoder_conditions_every_resolution_on_the_shared_code():
    domain = ImageDomain(size=32, channels=1, hidden=4)
    decoder = domain.build_decoder(LatentSpec(shared=4, residual=2))
    films = [m for m in decoder.modules() if isinstance(m, FiLMNorm)]
    # One per upsampling block, at 4x4, 8x8 and 16x16.
    assert len(films) == 3
    for film in films:
        torch.nn.init.normal_(film.film.weight)
    shared, residual = torch.randn(2, 4), torch.randn(2, 2)
    # The dense path alone: FiLM switched off must change the output.
    with_film = decoder(shared, residual)
    for film in films:
        torch.nn.init.zeros_(film.film.weight)
    assert not torch.allclose(with_film, decoder(shared, residual))


def test_encoder_refuses_a_batch_of_the_wrong_shape():
    domain = ImageDomain(size=16, channels=3, hidden=4)
    encoder = domain.build_encoder(LatentSpec(shared=4, residual=2))
    with pytest.raises(ValueError, match=r"shape \[batch, 3, 16, 16\], got \[2, 1, 16, 16\]"):
        encoder(torch.rand(2, 1, 16, 16))


def test_features_mode_mlp_shapes_and_gradients():
    domain = ImageDomain(encoder="features", feature_dim=10, hidden=8)
    spec = LatentSpec(shared=4, residual=2, learned_variance=True)
    encoder, decoder = _build(domain, spec)
    x = domain.example_batch(3, torch.Generator().manual_seed(0))
    assert x.shape == (3, 10)
    latent = encoder(x)
    assert latent.shared.shape == (3, 4) and latent.log_var.shape == (3, 6)
    output = decoder(latent.shared, latent.residual)
    assert output.shape == (3, 10)
    loss = domain.reconstruction_loss(output, x)
    torch.testing.assert_close(loss, (output - x).square().sum(dim=1))
    (loss.sum() + latent.log_var.sum()).backward()
    assert all(p.grad.abs().sum() > 0 for p in [*encoder.parameters(), *decoder.parameters()])
    assert domain.build_discriminator(spec) is None


def _discriminator(size=16, channels=3):
    domain = ImageDomain(size=size, channels=channels, hidden=4, adversarial=True)
    return domain, domain.build_discriminator(LatentSpec(shared=5, residual=2))


def test_no_discriminator_unless_adversarial():
    assert ImageDomain(size=16).build_discriminator(LatentSpec(shared=5, residual=2)) is None


@pytest.mark.parametrize("channels", [1, 3])
def test_discriminator_scores_and_gradients(channels):
    domain, discriminator = _discriminator(channels=channels)
    x = domain.example_batch(4, torch.Generator().manual_seed(0)).requires_grad_()
    shared = torch.randn(4, 5, requires_grad=True)
    score = discriminator(x, shared)
    assert score.shape == (4,)
    score.sum().backward()
    assert x.grad.abs().sum() > 0 and shared.grad.abs().sum() > 0
    for name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_discriminator_is_spectrally_normalised():
    domain, discriminator = _discriminator()
    weighted = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 4  # strided convs 16 -> 8 -> 4, the linear head, the embedding
    assert all(parametrize.is_parametrized(m, "weight") for m in weighted)
    x = domain.example_batch(4, torch.Generator().manual_seed(0))
    for _ in range(30):  # each training-mode call runs one power iteration
        discriminator(x, torch.randn(4, 5))
    discriminator.eval()
    for module in weighted:
        sigma = torch.linalg.matrix_norm(module.weight.flatten(1), ord=2)
        torch.testing.assert_close(sigma, torch.tensor(1.0), rtol=0.02, atol=0.0)


def test_discriminator_projection_is_linear_in_the_shared_code():
    domain, discriminator = _discriminator()
    discriminator.eval()
    x = domain.example_batch(3, torch.Generator().manual_seed(0))
    shared = torch.randn(3, 5)
    unconditional = discriminator(x, torch.zeros(3, 5))
    projection = discriminator(x, shared) - unconditional
    assert projection.abs().min() > 0
    torch.testing.assert_close(discriminator(x, 2 * shared) - unconditional, 2 * projection)


def test_hinge_losses():
    real, fake = torch.tensor([2.0, 0.5, -1.0]), torch.tensor([-2.0, 0.0, 1.0])
    # max(0, 1 - real) + max(0, 1 + fake), worked out by hand.
    torch.testing.assert_close(discriminator_hinge_loss(real, fake), torch.tensor([0.0, 1.5, 4.0]))
    torch.testing.assert_close(generator_hinge_loss(fake), torch.tensor([2.0, 0.0, -1.0]))
    with pytest.raises(ValueError, match="same shape"):
        discriminator_hinge_loss(real, fake[:2])
