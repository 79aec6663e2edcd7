"""End to end: this domain's encoder and decoder learn to reconstruct a handful of captions."""

from __future__ import annotations

import torch

from flowbridge.domain import LatentSpec
from flowbridge_text import TextDomain


def test_tiny_autoencoder_reconstructs_its_captions(captions):
    torch.manual_seed(0)
    # Word dropout 0.5: the decoder cannot just copy its input words, it must read the latent.
    domain = TextDomain(
        embedding=16, hidden=32, decoder_hidden=32, layers=1, min_count=1,
        word_dropout=0.5, embedding_dropout=0.1,
    )  # fmt: skip
    domain.fit(captions)
    spec = LatentSpec(shared=8, residual=4)
    encoder, decoder = domain.build_encoder(spec), domain.build_decoder(spec)
    x = domain.collate(captions)
    optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=0.02)
    losses = []
    for _ in range(150):
        z = encoder(x)
        loss = domain.reconstruction_loss(decoder(z.shared, z.residual, x), x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20

    with torch.no_grad():
        z = encoder.eval()(x)
    expected = [" ".join(c.lower().split()) for c in captions]
    assert domain.generate(decoder, z.shared, z.residual) == expected
    assert domain.generate(decoder, z.shared, z.residual, method="beam", beam_size=2) == expected
