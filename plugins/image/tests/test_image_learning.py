"""The encoder and decoder actually learn: a tiny autoencoder overfits a handful of images."""

import torch

from flowbridge.domain import LatentSpec
from flowbridge_image import ImageDomain


def test_tiny_autoencoder_overfits_a_handful_of_images():
    domain = ImageDomain(size=16, channels=1, hidden=8, loss="l1")
    encoder, decoder = (
        build(LatentSpec(shared=8, residual=4))
        for build in (domain.build_encoder, domain.build_decoder)
    )
    x = domain.example_batch(8, torch.Generator().manual_seed(1))
    # The best a decoder that ignores its latent can do under L1: the per-pixel median image.
    baseline = (x - x.median(dim=0).values).abs().mean()
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=3e-3)
    for _ in range(150):
        latent = encoder(x)
        loss = domain.reconstruction_loss(decoder(latent.shared, latent.residual), x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    latent = encoder(x)
    images = torch.stack(domain.generate(decoder, latent.shared, latent.residual))
    error = (images - x).abs().mean()
    assert error < 0.25 * baseline, (error.item(), baseline.item())
