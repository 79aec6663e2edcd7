r"""The approximate posterior :math:`q(z \mid x)` over a domain's latent ``[shared, residual]``.

Two modes:

* ``"fixed"`` (the original LNFMM): :math:`z = \mu(x) + \sigma\varepsilon` with a fixed σ. Its
  entropy is a constant, so :math:`\mathrm{KL}(q \| p) = -\log p(z) + \text{const}`: the
  log-density is reported as ``None`` and the KL terms are one-sample :math:`-\log p(z)`.
* ``"learned"``: the encoder also outputs :math:`\log\sigma^2(x)`;
  :math:`z = \mu + \sigma(x)\varepsilon` and the KL is estimated with the same sample as
  :math:`\log q(z|x) - \log p(z)`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .domain import EncoderOutput

__all__ = ["PosteriorSample", "sample_posterior"]

_LOG_2PI = math.log(2 * math.pi)
#: bounds of a learned posterior's log-variance
LOG_VAR_MIN, LOG_VAR_MAX = -30.0, 20.0


class PosteriorSample(NamedTuple):
    """A reparametrised posterior sample and its log-densities (``None`` for fixed σ).

    Shapes: ``shared [batch, d_s]``, ``residual [batch, d_r]``, log-densities ``[batch]``.
    """

    shared: torch.Tensor
    residual: torch.Tensor
    log_q_shared: torch.Tensor | None
    log_q_residual: torch.Tensor | None


def sample_posterior(encoded: EncoderOutput, mode: str, noise_scale: float) -> PosteriorSample:
    """Draw ``z ~ q(z | x)`` from an encoder's output (training; translation and evaluation
    use the encoder's means directly).

    Args:
        encoded: the encoder's means (and log-variance in ``"learned"`` mode).
        mode: ``"fixed"`` or ``"learned"``.
        noise_scale: σ of the fixed posterior (ignored in ``"learned"`` mode).
    """
    shared, residual, log_var = encoded
    if mode == "learned":
        if log_var is None:
            raise ValueError(
                "posterior 'learned' needs an encoder that returns a log-variance "
                "(EncoderOutput.log_var); the domain's encoder returned None"
            )
        d_s = shared.shape[1]
        # σ within [3e-7, 2e4]: an encoder's runaway log-variance (200 overflows float32's σ
        # to inf) ends in a clear divergence later instead of infinite codes now. Reached by
        # no trained model; within the bounds the clamp changes nothing.
        log_var = log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)
        mean = torch.cat((shared, residual), dim=1)
        noise = torch.randn_like(mean)
        z = mean + torch.exp(0.5 * log_var) * noise
        # log N(z; mean, σ²) per dimension, at the sample itself: (z - mean) / σ == noise.
        log_q = -0.5 * (noise.square() + log_var + _LOG_2PI)
        return PosteriorSample(
            z[:, :d_s], z[:, d_s:], log_q[:, :d_s].sum(dim=1), log_q[:, d_s:].sum(dim=1)
        )
    if mode != "fixed":
        raise ValueError(f"posterior must be 'fixed' or 'learned', got {mode!r}")
    if noise_scale > 0:
        shared = shared + noise_scale * torch.randn_like(shared)
        residual = residual + noise_scale * torch.randn_like(residual)
    return PosteriorSample(shared, residual, None, None)
