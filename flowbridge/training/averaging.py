r"""Weight averaging (Polyak averaging): the model a run evaluates, saves and hands out.

After optimiser step :math:`t` the average of the weights :math:`\theta_t` the optimiser
steps is

.. math::

    \bar\theta_t = \beta_t\, \bar\theta_{t-1} + (1 - \beta_t)\, \theta_t, \qquad
    \beta_t = \min\left(\beta, \frac{t - 1}{t}\right),

an exponential moving average of decay :math:`\beta` (``train.ema_decay``). While
:math:`t < 1 / (1 - \beta)` the warm-up of :math:`\beta_t` makes :math:`\bar\theta_t` the
plain mean of :math:`\theta_1 \dots \theta_t`, so the average never holds the random
initialisation; from then on it weighs about the last :math:`1 / (1 - \beta)` steps.
Adam at a fixed learning rate leaves the weights jittering around where the loss is low; the
average sits nearer its middle. On the shapes testbed (``benchmarks/README.md``) β = 0.98
raised image→text and text→image accuracy and both diversities at once after 2,000 steps
(0.99 and 0.995 alike), against the same run's raw weights.

References:
    Polyak, Juditsky. "Acceleration of Stochastic Approximation by Averaging." SIAM Journal
    on Control and Optimization, 1992.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

__all__ = ["WeightAverage"]


def _tensors(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return list(itertools.chain(module.named_parameters(), module.named_buffers()))


def _check_same_names(ours: list[str], theirs: list[str]) -> None:
    """Refuse an average whose parameters and buffers (in order) are not the model's,
    naming the first that differs."""
    if ours == theirs:
        return
    pairs = itertools.zip_longest(ours, theirs)  # None: the shorter list has ended
    mine, its = (
        "nothing" if name is None else repr(name)
        for name in next((a, m) for a, m in pairs if a != m)
    )
    raise ValueError(
        f"average and model must have the same parameters and buffers, in the same order; "
        f"the first that differs is average's {mine} vs model's {its}: build both modules "
        f"the same way"
    )


class WeightAverage:
    r"""Keeps ``average``'s weights the running average of ``model``'s.

    ``average`` is a module of the same structure (built the same way); it starts as a copy
    of ``model``. Floating-point parameters and buffers are averaged; integer buffers and
    every tensor whose name starts with one of ``copied`` are copied as they are.

    Args:
        model: the module the optimiser steps.
        average: the module that holds the average (:attr:`module`).
        decay: β in [0, 1); 0 makes the average a copy of the latest weights.
        copied: name prefixes of tensors to copy, not average (e.g. a GAN's critics, whose
            power-iteration vectors must stay unit vectors).
    """

    def __init__(
        self, model: nn.Module, average: nn.Module, decay: float, copied: tuple[str, ...] = ()
    ):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        ours, theirs = _tensors(average), _tensors(model)
        _check_same_names([name for name, _ in ours], [name for name, _ in theirs])
        self.module, self.decay = average, decay
        # Which tensors are averaged, fixed once: [averages], [weights] for the fused update.
        self._averages: list[torch.Tensor] = []
        self._weights: list[torch.Tensor] = []
        self._copied: list[tuple[torch.Tensor, torch.Tensor]] = []
        for (name, a), (_, m) in zip(ours, theirs, strict=True):
            if a.is_floating_point() and not name.startswith(copied):
                self._averages.append(a)
                self._weights.append(m)
            else:
                self._copied.append((a, m))
        self.reset()

    def reset(self) -> None:
        """Make the average a copy of the model's current weights."""
        with torch.no_grad():
            for a, m in [*zip(self._averages, self._weights, strict=True), *self._copied]:
                a.copy_(m)

    def decay_at(self, step: int) -> float:
        r""":math:`\beta_t = \min(\beta, (t - 1) / t)` for optimiser step ``t >= 1``."""
        return min(self.decay, (step - 1) / step)

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the model's weights after optimiser step ``step`` (1-based)."""
        if self._averages:
            # One fused multi-tensor kernel for all weights: torch.optim's own EMA helper
            # (swa_utils.get_ema_multi_avg_fn) calls the same.
            torch._foreach_lerp_(self._averages, self._weights, 1 - self.decay_at(step))
        for a, m in self._copied:
            a.copy_(m)
