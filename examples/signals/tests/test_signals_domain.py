"""The signal domain: the flowbridge contract, its likelihood, its files, and that it learns."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from PIL import Image

from flowbridge import LatentSpec
from flowbridge.testing import CHECKS, check_domain, latent_specs
from flowbridge_signals import SignalDomain


def test_the_domain_keeps_the_contract(tmp_path):
    source = tmp_path / "signal.csv"
    source.write_text(",".join(str(math.sin(t / 3)) for t in range(32)), encoding="utf-8")
    passed = check_domain(SignalDomain(length=32, channels=4), sources=[str(source)])
    assert passed == [c for c in CHECKS if c != "discriminator"]


@settings(max_examples=6, derandomize=True, deadline=None)
@given(spec=latent_specs(max_shared=6, max_residual=6))
def test_the_contract_holds_for_any_latent_sizes(spec):
    check_domain(SignalDomain(length=16, channels=2), spec, batch=2)


def test_the_loss_is_the_gaussian_negative_log_likelihood():
    domain = SignalDomain(length=8, scale=0.3)
    x, mean = torch.randn(5, 8), torch.randn(5, 8)
    expected = -torch.distributions.Normal(mean, 0.3).log_prob(x).sum(dim=1)
    torch.testing.assert_close(domain.reconstruction_loss(mean, x), expected)


def test_the_decoder_uses_the_shared_code_at_every_scale():
    torch.manual_seed(0)
    decoder = SignalDomain(length=16, channels=2).build_decoder(LatentSpec(3, 2))
    shared = torch.randn(4, 3, requires_grad=True)
    # Each FiLM layer (one per scale) is given the shared code itself.
    seen = []
    for film in decoder.film:
        film.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    out = decoder(shared, torch.randn(4, 2))
    assert len(seen) == len(decoder.film) == 2
    assert all(code is shared for code in seen)
    out.sum().backward()
    assert all(film.weight.grad.abs().sum() > 0 for film in decoder.film)
    assert shared.grad.abs().sum() > 0


def test_example_batches_are_two_note_chords():
    x = SignalDomain(length=64).example_batch(6, torch.Generator().manual_seed(1))
    spectrum = torch.fft.rfft(x).abs()
    peaks = spectrum.topk(2, dim=1).indices
    assert ((peaks >= 1) & (peaks <= 8)).all()
    # The third strongest bin is noise: far below the weaker note (amplitude >= 0.5).
    assert (spectrum.topk(3, dim=1).values[:, 2] < 0.5 * spectrum.topk(2, dim=1).values[:, 1]).all()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"length": 30}, "length must be an int multiple of 4"),
        ({"length": 4}, "at least 8"),
        ({"length": True}, "got True"),
        ({"channels": 0}, "channels must be an int >= 1"),
        ({"scale": 0.0}, "scale must be a number > 0"),
    ],
)
def test_bad_options_are_rejected(options, message):
    with pytest.raises(ValueError, match=message):
        SignalDomain(**options)


def test_collate_accepts_lists_and_rejects_other_lengths():
    domain = SignalDomain(length=8)
    batch = domain.collate([[0.0] * 8, torch.ones(8)])
    assert batch.shape == (2, 8) and batch.dtype == torch.float32
    with pytest.raises(ValueError, match=r"signal item 1 has shape \[9\], expected \[8\]"):
        domain.collate([torch.ones(8), torch.ones(9)])
    with pytest.raises(ValueError, match="at least one signal"):
        domain.collate([])


def test_generate_takes_no_options():
    domain = SignalDomain(length=8)
    decoder = domain.build_decoder(LatentSpec(2, 0))
    with pytest.raises(TypeError, match=r"takes no options, got \['beam_size'\]"):
        domain.generate(decoder, torch.zeros(1, 2), torch.zeros(1, 0), beam_size=3)


def test_read_item_reads_any_separators_and_names_bad_sources(tmp_path):
    domain = SignalDomain(length=8)
    good = tmp_path / "good.txt"
    good.write_text("0 1\n2,3\n4, 5 6\n7\n", encoding="utf-8")
    assert domain.read_item(str(good)).tolist() == list(range(8))
    short = tmp_path / "short.csv"
    short.write_text("1,2,3", encoding="utf-8")
    with pytest.raises(ValueError, match="short.csv' holds 3 numbers, expected 8"):
        domain.read_item(str(short))
    with pytest.raises(ValueError, match="cannot read a signal from 'missing.csv'"):
        domain.read_item("missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("1,x", encoding="utf-8")
    with pytest.raises(ValueError, match="bad.csv'.*could not convert"):
        domain.read_item(str(bad))


def test_write_items_plots_a_png_grid(tmp_path):
    domain = SignalDomain(length=8)
    items = [[torch.randn(8) for _ in range(3)], [torch.randn(8)]]
    path = domain.write_items(items, tmp_path / "grid")
    assert path == tmp_path / "grid.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = Image.open(path).size
    assert width > height  # three columns, two rows
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]
    with pytest.raises(ValueError, match="empty grid"):
        domain.write_items([], tmp_path / "none")


def test_the_autoencoder_learns_to_reconstruct_chords():
    torch.manual_seed(0)
    domain, spec = SignalDomain(length=32, channels=8), LatentSpec(shared=6, residual=4)
    data, held_out = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    val = domain.example_batch(64, held_out)
    encoder, decoder = domain.build_encoder(spec), domain.build_decoder(spec)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    for _ in range(150):
        x = domain.example_batch(32, data)
        code = encoder(x)
        loss = domain.reconstruction_loss(decoder(code.shared, code.residual, x), x).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        code = encoder(val)
        error = (decoder(code.shared, code.residual) - val).square().mean()
    # On held-out chords, more than half of the variance is explained (the mean scores 1.0).
    assert error / val.var() < 0.5
