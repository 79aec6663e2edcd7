"""The approximate posterior q(z | x): its samples and log-densities, drawn again by hand."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal

from flowbridge.domain import EncoderOutput
from flowbridge.posterior import sample_posterior

DTYPE = torch.float64


def _encoded(rows=6, d_s=3, d_r=2, log_var=True):
    g = torch.Generator().manual_seed(0)
    shared = torch.randn(rows, d_s, generator=g, dtype=DTYPE)
    residual = torch.randn(rows, d_r, generator=g, dtype=DTYPE)
    variance = 2 * torch.randn(rows, d_s + d_r, generator=g, dtype=DTYPE) if log_var else None
    return EncoderOutput(shared, residual, variance)


def test_a_learned_posterior_samples_its_gaussian_and_scores_each_part_under_it():
    encoded = _encoded()
    torch.manual_seed(3)
    q = sample_posterior(encoded, "learned", 0.05)  # the fixed σ goes unused
    torch.manual_seed(3)
    mean = torch.cat((encoded.shared, encoded.residual), dim=1)
    std = (0.5 * encoded.log_var).exp()
    z = mean + std * torch.randn_like(mean)
    log_q = Normal(mean, std).log_prob(z)

    torch.testing.assert_close(q.shared, z[:, :3], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.residual, z[:, 3:], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.log_q_shared, log_q[:, :3].sum(1), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.log_q_residual, log_q[:, 3:].sum(1), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("noise_scale", [0.0, 0.3])
def test_a_fixed_posterior_adds_noise_of_its_scale_to_the_means(noise_scale):
    encoded = _encoded(log_var=False)
    torch.manual_seed(3)
    q = sample_posterior(encoded, "fixed", noise_scale)
    torch.manual_seed(3)
    shared = encoded.shared + noise_scale * torch.randn_like(encoded.shared)
    residual = encoded.residual + noise_scale * torch.randn_like(encoded.residual)

    torch.testing.assert_close(q.shared, shared, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(q.residual, residual, rtol=1e-12, atol=1e-12)
    assert q.log_q_shared is None and q.log_q_residual is None
    if noise_scale == 0:  # the means themselves, and no draw from the global generator
        assert q.shared is encoded.shared and q.residual is encoded.residual
