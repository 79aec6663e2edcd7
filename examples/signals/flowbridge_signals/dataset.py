"""The ``chords`` dataset: a chord recorded twice, the second time transposed.

Pair ``i`` holds two recordings of the same two-note chord: ``a`` at its frequencies ``f``,
``b`` at ``transpose * f``, each with its own random amplitudes, phases and noise. What the
two share is the chord (the shared code's job); how each was played is domain-specific (the
residuals'), so one ``a`` has many valid ``b`` and back: a many-to-many mapping in miniature.
"""

from __future__ import annotations

from typing import Any

import torch

from flowbridge import Domain, PairedDataset, PairedSplit

from .synth import FREQUENCIES, random_chords, random_voicing

__all__ = ["ChordsDataset"]


class ChordsDataset(PairedDataset):
    """Pairs of 1-D signals: a two-note chord, and the same chord transposed.

    Args:
        size: number of pairs over all splits (80% train, 10% val, 10% test).
        length: samples per signal.
        transpose: integer factor applied to ``b``'s frequencies (2 = an octave up).
        noise: standard deviation of the Gaussian noise added to every sample.
        seed: seed of the generator; the same options always give the same pairs.
    """

    name = "chords"
    domains = ("signal", "signal")

    def __init__(
        self,
        size: int = 1000,
        length: int = 64,
        transpose: int = 2,
        noise: float = 0.05,
        seed: int = 0,
    ):
        integers = (("size", size, 10), ("length", length, 1), ("transpose", transpose, 1))
        integers += (("seed", seed, 0),)
        for key, value, low in integers:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key} must be an int >= {low}, got {value!r}")
        highest = transpose * max(FREQUENCIES)
        if 2 * highest >= length:
            raise ValueError(
                f"transpose={transpose} puts the highest note at {highest} cycles, not below the "
                f"Nyquist frequency {length // 2} of length={length}; lower transpose or "
                f"raise length"
            )
        if not isinstance(noise, (int, float)) or noise < 0:
            raise ValueError(f"noise must be a number >= 0, got {noise!r}")
        self.size, self.length, self.transpose, self.noise = size, length, transpose, noise
        self.seed = seed
        self.options: dict[str, Any] = {
            "size": size,
            "length": length,
            "transpose": transpose,
            "noise": noise,
            "seed": seed,
        }

    def split(self, name: str) -> PairedSplit:
        if name not in self.splits:
            raise ValueError(f"unknown split {name!r}; the chords dataset has {self.splits}")
        index = self.splits.index(name)
        sizes = (self.size - 2 * (self.size // 10), self.size // 10, self.size // 10)
        # One generator per split: a split does not change when another is never asked for.
        generator = torch.Generator().manual_seed(self.seed * len(self.splits) + index)
        chords = random_chords(sizes[index], 2, generator)
        a = random_voicing(chords, self.length, self.noise, generator)
        b = random_voicing(self.transpose * chords, self.length, self.noise, generator)
        meta = [{"frequencies": chord.int().tolist()} for chord in chords]
        return PairedSplit(a=list(a.unbind(0)), b=list(b.unbind(0)), meta=meta)

    def check_domains(self, a: Domain, b: Domain) -> None:
        for side, domain in (("a", a), ("b", b)):
            if domain.options.get("length") != self.length:
                raise ValueError(
                    f"chords option length is {self.length} but domain {side}'s length is "
                    f"{domain.options.get('length')}; set them equal"
                )
