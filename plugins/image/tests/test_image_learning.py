"""The encoder and decoder actually learn: a tiny autoencoder overfits a handful of images."""

import pytest
import torch

from flowbridge.domain import LatentSpec
from flowbridge_image import ImageDomain


@pytest.fixture
def one_thread():
    # Ops this small gain nothing from threads, and on a busy 2-core machine two threads
    # spin-wait for each other: this test took 0.5 s on one thread and up to 25 s on two.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_tiny_autoencoder_overfits_a_handful_of_images(one_thread):
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
