r"""Sums of sinusoids on a fixed window, the signals of this plugin's examples and dataset.

A signal of length :math:`L` with frequencies :math:`f_k` (cycles per window), amplitudes
:math:`a_k` and phases :math:`\varphi_k` is

.. math:: x_t = \sum_k a_k \sin(2\pi f_k t / L + \varphi_k) + \sigma \epsilon_t,
   \quad \epsilon_t \sim \mathcal N(0, 1).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange

__all__ = ["FREQUENCIES", "sinusoids", "random_chords", "random_voicing"]

#: Frequencies a chord is drawn from, in cycles per window.
FREQUENCIES = tuple(range(1, 9))


def sinusoids(
    frequencies: torch.Tensor, amplitudes: torch.Tensor, phases: torch.Tensor, length: int
) -> torch.Tensor:
    """Sum of sinusoids: ``[n, k]`` frequencies, amplitudes and phases -> ``[n, length]``."""
    t = torch.arange(length, dtype=torch.float32) / length
    angle = 2 * math.pi * rearrange(frequencies, "n k -> n k 1") * t + rearrange(
        phases, "n k -> n k 1"
    )
    return (rearrange(amplitudes, "n k -> n k 1") * torch.sin(angle)).sum(dim=1)


def random_chords(n: int, notes: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` chords of ``notes`` distinct frequencies from :data:`FREQUENCIES`, ``[n, notes]``
    sorted ascending (float32)."""
    choices = torch.stack(
        [torch.randperm(len(FREQUENCIES), generator=generator)[:notes] for _ in range(n)]
    )
    return torch.tensor(FREQUENCIES, dtype=torch.float32)[choices].sort(dim=1).values


def random_voicing(
    frequencies: torch.Tensor, length: int, noise: float, generator: torch.Generator
) -> torch.Tensor:
    """One recording of each chord ``[n, k]``: random amplitudes in [0.5, 1), random phases
    and Gaussian noise of scale ``noise``; returns ``[n, length]``."""
    amplitudes = 0.5 + 0.5 * torch.rand(frequencies.shape, generator=generator)
    phases = 2 * math.pi * torch.rand(frequencies.shape, generator=generator)
    clean = sinusoids(frequencies, amplitudes, phases, length)
    return clean + noise * torch.randn(clean.shape, generator=generator)
