r"""Accuracy at equal diversity: reading an accuracy-diversity trade-off curve.

Sampling temperature trades diversity for accuracy (a colder prior gives safer, more alike
outputs), so two models compared at one temperature each may differ in both numbers at once,
and neither wins. Sweeping the temperature traces each model's curve of points
:math:`(d_t, a_t)`; the fair comparison reads one model's accuracy at the other's diversity
:math:`d^\ast` by linear interpolation between the two points that bracket it:

.. math:: a(d^\ast) = a_i + (a_j - a_i) \frac{d^\ast - d_i}{d_j - d_i},
          \quad d_i \le d^\ast \le d_j

No extrapolation: outside the curve's range of diversities the answer is ``None`` (sweep a
wider range of temperatures rather than guess). :func:`accuracy_gap` reads two curves against
each other wherever their diversities overlap: at every point of either curve that lies
within the other's range.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

__all__ = ["accuracy_at_diversity", "accuracy_gap"]


def _points(curve: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """``curve`` as float pairs, or a TypeError that shows the expected form."""
    try:
        return [(float(d), float(a)) for d, a in curve]
    except (TypeError, ValueError):
        raise TypeError(
            f"a trade-off curve must be a list of (diversity, accuracy) pairs, e.g. "
            f"[(0.7, 0.9), (0.8, 0.85)], got {curve!r:.120}"
        ) from None


def accuracy_at_diversity(curve: Sequence[tuple[float, float]], diversity: float) -> float | None:
    """Accuracy of the trade-off ``curve`` at ``diversity``, linearly interpolated.

    Args:
        curve: ``(diversity, accuracy)`` points in any order, e.g. one per sampling
            temperature; at least one, all finite.
        diversity: where to read the curve.

    Returns:
        The interpolated accuracy, or ``None`` when ``diversity`` lies outside the curve's
        range. Where neighbouring points share a diversity the reading is their mean accuracy.

    >>> accuracy_at_diversity([(0.6, 0.9), (0.8, 0.7)], 0.7)
    0.8
    """
    points = sorted(_points(curve))
    if not points:
        raise ValueError("accuracy_at_diversity needs at least one (diversity, accuracy) point")
    if not all(math.isfinite(d) and math.isfinite(a) for d, a in points):
        raise ValueError(f"accuracy_at_diversity needs finite points, got {points}")
    if not math.isfinite(diversity):
        raise ValueError(f"diversity must be finite, got {diversity}")
    at = [a for d, a in points if d == diversity]
    if at:
        return sum(at) / len(at)
    for (d0, a0), (d1, a1) in itertools.pairwise(points):
        if d0 < diversity < d1:
            return a0 + (a1 - a0) * (diversity - d0) / (d1 - d0)
    return None


def accuracy_gap(
    curve: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """How far ``curve`` lies above ``reference`` at equal diversity.

    Args:
        curve, reference: ``(diversity, accuracy)`` points of two models' trade-offs.

    Returns:
        ``(diversity, accuracy of curve - accuracy of reference)`` at every point of either
        curve whose diversity lies within the other's range, the other read by
        :func:`accuracy_at_diversity`; sorted by diversity, empty when the ranges do not
        overlap.

    >>> accuracy_gap([(0.5, 1.0), (1.0, 0.5)], [(0.75, 0.25), (1.25, 0.0)])
    [(0.75, 0.5), (1.0, 0.375)]
    """
    curve, reference = _points(curve), _points(reference)
    gaps = set()
    for diversity, accuracy in reference:
        other = accuracy_at_diversity(curve, diversity)
        if other is not None:
            gaps.add((diversity, other - accuracy))
    for diversity, accuracy in curve:
        other = accuracy_at_diversity(reference, diversity)
        if other is not None:
            gaps.add((diversity, accuracy - other))
    return sorted(gaps)
