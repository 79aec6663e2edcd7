r"""The ``signal`` domain: real 1-D signals of a fixed length.

* **item**: a float tensor ``[length]``;
* **batch**: ``[batch, length]``;
* **encoder**: two strided 1-D convolutions and a linear head onto ``shared [batch, d_s]``,
  ``residual [batch, d_r]`` (and ``log_var [batch, d_s + d_r]`` when it is learned);
* **decoder output**: the mean :math:`\mu` ``[batch, length]`` of a Gaussian with a fixed
  scale :math:`\sigma`, so the reconstruction loss is the negative log-likelihood

.. math:: -\log p(x \mid \mu) = \sum_t \frac{(x_t - \mu_t)^2}{2\sigma^2}
   + L \log \sigma + \frac{L}{2} \log 2\pi .
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from einops import rearrange
from torch import nn

from flowbridge import Domain, EncoderOutput, LatentSpec
from flowbridge.files import atomic_write, suffixed

from .synth import random_chords, random_voicing

__all__ = ["SignalEncoder", "SignalDecoder", "SignalDomain"]


class SignalEncoder(nn.Module):
    """``x [batch, length] -> EncoderOutput``: conv1d features, then one linear head of
    ``spec.encoder_features`` outputs, split by :meth:`EncoderOutput.from_flat`.

    Each strided convolution halves the length, so ``length`` must be a multiple of 4.
    """

    def __init__(self, length: int, channels: int, spec: LatentSpec):
        super().__init__()
        self.spec = spec
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=2),
            nn.SiLU(),
            nn.Conv1d(channels, 2 * channels, 5, stride=2, padding=2),
            nn.SiLU(),
        )
        self.head = nn.Linear(2 * channels * (length // 4), spec.encoder_features)

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        h = self.features(rearrange(x, "b l -> b 1 l"))
        h = self.head(rearrange(h, "b c l -> b (c l)"))
        return EncoderOutput.from_flat(h, self.spec)

    def extra_repr(self) -> str:
        return f"shared={self.spec.shared}, residual={self.spec.residual}"


class SignalDecoder(nn.Module):
    """``(shared [batch, d_s], residual [batch, d_r]) -> mean [batch, length]``.

    The whole latent seeds a coarse feature map of length ``length / 4``; two transposed
    convolutions double it twice, and after each the shared code modulates the channels
    (FiLM: ``h * (1 + gamma(s)) + beta(s)``). The shared code, which carries what a pair has
    in common (here: the chord), so acts on every scale; the residual only on the seed.
    """

    def __init__(self, length: int, channels: int, spec: LatentSpec):
        super().__init__()
        self.channels, self.coarse = channels, length // 4
        self.seed = nn.Linear(spec.total, 2 * channels * self.coarse)
        self.upsample = nn.ModuleList(
            [
                nn.ConvTranspose1d(2 * channels, channels, 4, stride=2, padding=1),
                nn.ConvTranspose1d(channels, channels, 4, stride=2, padding=1),
            ]
        )
        self.film = nn.ModuleList([nn.Linear(spec.shared, 2 * channels) for _ in self.upsample])
        self.out = nn.Conv1d(channels, 1, 5, padding=2)

    def forward(
        self, shared: torch.Tensor, residual: torch.Tensor, x: torch.Tensor | None = None
    ) -> torch.Tensor:
        h = self.seed(torch.cat((shared, residual), dim=1))
        h = rearrange(h, "b (c l) -> b c l", l=self.coarse)
        for upsample, film in zip(self.upsample, self.film, strict=True):
            gamma, beta = rearrange(film(shared), "b (two c) -> two b c 1", two=2)
            h = nn.functional.silu(upsample(h) * (1 + gamma) + beta)
        return rearrange(self.out(h), "b 1 l -> b l")

    def extra_repr(self) -> str:
        return f"channels={self.channels}, coarse_length={self.coarse}"


class SignalDomain(Domain):
    """1-D signals of a fixed length, with a Gaussian likelihood of fixed scale.

    Args:
        length: samples per signal, a multiple of 4 (at least 8).
        channels: width of the convolutions.
        scale: the likelihood's standard deviation :math:`\\sigma` (about the noise level).
    """

    name = "signal"
    default_residual_features = 4

    def __init__(self, length: int = 64, channels: int = 16, scale: float = 0.1):
        if isinstance(length, bool) or not isinstance(length, int) or length < 8 or length % 4:
            raise ValueError(f"length must be an int multiple of 4, at least 8; got {length!r}")
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f"channels must be an int >= 1, got {channels!r}")
        if not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"scale must be a number > 0, got {scale!r}")
        self.length, self.channels, self.scale = length, channels, float(scale)
        self.options = {"length": length, "channels": channels, "scale": self.scale}

    # -- model parts ---------------------------------------------------------------------
    def build_encoder(self, spec: LatentSpec) -> SignalEncoder:
        return SignalEncoder(self.length, self.channels, spec)

    def build_decoder(self, spec: LatentSpec) -> SignalDecoder:
        return SignalDecoder(self.length, self.channels, spec)

    def reconstruction_loss(self, output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Gaussian negative log-likelihood of ``x [batch, length]`` under mean ``output``,
        summed over time: ``[batch]``."""
        z = (x - output) / self.scale
        constant = self.length * (math.log(self.scale) + 0.5 * math.log(2 * math.pi))
        return 0.5 * z.square().sum(dim=1) + constant

    def generate(
        self, decoder: nn.Module, shared: torch.Tensor, residual: torch.Tensor, **options: Any
    ) -> list[torch.Tensor]:
        """The decoder's mean signals ``[length]``, one per latent row (no options)."""
        if options:
            raise TypeError(f"the signal domain's generate takes no options, got {sorted(options)}")
        with torch.no_grad():
            return list(decoder(shared, residual).cpu().unbind(0))

    # -- data ----------------------------------------------------------------------------
    def collate(self, items: Sequence) -> torch.Tensor:
        """Stack signals (tensors, arrays or lists of ``length`` numbers) into ``[n, length]``."""
        rows = []
        for i, item in enumerate(items):
            row = torch.as_tensor(item, dtype=torch.float32)
            if row.shape != (self.length,):
                raise ValueError(
                    f"signal item {i} has shape {list(row.shape)}, expected [{self.length}]; "
                    f"resample it or build the domain with length={row.shape[-1]}"
                )
            rows.append(row)
        if not rows:
            raise ValueError("collate needs at least one signal, got none")
        return torch.stack(rows)

    def example_batch(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` random two-note chords (see :mod:`flowbridge_signals.synth`)."""
        return random_voicing(random_chords(n, 2, generator), self.length, 0.05, generator)

    # -- files a person reads --------------------------------------------------------------
    def read_item(self, source: str) -> torch.Tensor:
        """Read a signal from a text or CSV file of ``length`` numbers (any separators)."""
        try:
            text = Path(source).read_text(encoding="utf-8")
            values = [float(v) for v in text.replace(",", " ").split()]
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"cannot read a signal from {source!r}: {exc}; expected a text/CSV file of "
                f"{self.length} numbers"
            ) from None
        if len(values) != self.length:
            raise ValueError(
                f"{source!r} holds {len(values)} numbers, expected {self.length} (one signal)"
            )
        return torch.tensor(values)

    def write_items(self, items: Sequence[Sequence], path: Path) -> Path:
        """Plot ``items[i][k]`` in row i, column k of a PNG grid at ``path`` + ``.png``."""
        # matplotlib is imported here, not at the top: loading the plugin stays fast.
        from matplotlib.figure import Figure

        rows = len(items)
        cols = max((len(row) for row in items), default=0)
        if not rows or not cols:
            raise ValueError("write_items needs at least one signal, got an empty grid")
        figure = Figure(figsize=(2.2 * cols, 1.2 * rows), layout="constrained")
        axes = figure.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
        for i, row in enumerate(items):
            for k in range(cols):
                ax = axes[i][k]
                if k < len(row):
                    ax.plot(torch.as_tensor(row[k]).cpu().numpy(), linewidth=1)
                ax.set_xticks([])
                ax.set_yticks([])
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
        path = suffixed(path, ".png")
        return atomic_write(path, lambda file: file.write(buffer.getvalue()))
