r"""Accuracy at equal diversity: reading an accuracy-diversity trade-off curve.

Sampling temperature trades diversity for accuracy (a colder prior gives safer, more alike
outputs), so two models compared at one temperature each may differ in both numbers at once,
and neither wins. Sweeping the temperature traces each model's curve of points
:math:`(d_t, a_t)`; the fair comparison reads one model's accuracy at the other's diversity
:math:`d^\ast` by linear interpolation between the two points that bracket it:

.. math:: a(d^\ast) = a_i + (a_j - a_i) \frac{d^\ast - d_i}{d_j - d_i},
          \quad d_i \le d^\ast \le d_j

Points of equal diversity (a saturated diversity metric, e.g. every sample unique at several
hot temperatures) are merged first into one point at their mean accuracy, so the curve is a
function of diversity and its reading is continuous.

No extrapolation: outside the curve's range of diversities the answer is ``None`` (sweep a
wider range of temperatures rather than guess). :func:`accuracy_gap` reads two curves against
each other wherever their diversities overlap: at every diversity of either curve that lies
within the other's range.
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Sequence

__all__ = ["accuracy_at_diversity", "accuracy_gap"]


def _points(curve: Sequence[tuple[float, float]], what: str) -> list[tuple[float, float]]:
    """``curve`` as finite float pairs sorted by diversity, points of equal diversity merged
    into one at their mean accuracy; or an error that shows the expected form."""
    try:
        points = sorted((float(d), float(a)) for d, a in curve)
    except (TypeError, ValueError):
        raise TypeError(
            f"a trade-off curve must be a list of (diversity, accuracy) pairs, e.g. "
            f"[(0.7, 0.9), (0.8, 0.85)], got {curve!r:.120}"
        ) from None
    if not points:
        raise ValueError(f"{what} has no points: give at least one (diversity, accuracy) point")
    if not all(math.isfinite(d) and math.isfinite(a) for d, a in points):
        raise ValueError(f"{what} needs finite points, got {points}")
    merged = []
    for diversity, group in itertools.groupby(points, key=lambda point: point[0]):
        accuracies = [a for _, a in group]
        merged.append((diversity, math.fsum(accuracies) / len(accuracies)))
    return merged


def _read(points: list[tuple[float, float]], diversity: float) -> float | None:
    """Linear interpolation of merged, sorted ``points`` at ``diversity``; ``None`` outside."""
    for d, a in points:
        if d == diversity:
            return a
    for (d0, a0), (d1, a1) in itertools.pairwise(points):
        if d0 < diversity < d1:
            return a0 + (a1 - a0) * (diversity - d0) / (d1 - d0)
    return None


def accuracy_at_diversity(curve: Sequence[tuple[float, float]], diversity: float) -> float | None:
    """Accuracy of the trade-off ``curve`` at ``diversity``, linearly interpolated.

    Args:
        curve: ``(diversity, accuracy)`` points in any order, e.g. one per sampling
            temperature; at least one, all finite. Each row is one point: two temperatures
            given as ``[diversities, accuracies]`` would read as two points, so transpose
            such columns first (``list(zip(diversities, accuracies))``).
        diversity: where to read the curve.

    Returns:
        The interpolated accuracy (a float), or ``None`` when ``diversity`` lies outside the
        curve's range. Points of equal diversity count as one point at their mean accuracy,
        at that diversity and in the interpolation on either side of it.

    >>> accuracy_at_diversity([(0.6, 0.9), (0.8, 0.7)], 0.7)
    0.8
    >>> accuracy_at_diversity([(0.5, 1.0), (1.0, 0.75), (1.0, 0.25)], 0.75)
    0.75
    """
    points = _points(curve, "accuracy_at_diversity's curve")
    if not isinstance(diversity, numbers.Real):
        raise TypeError(f"diversity must be a number, got {diversity!r:.60}")
    diversity = float(diversity)  # a Python float out, not a numpy scalar
    if not math.isfinite(diversity):
        raise ValueError(f"diversity must be finite, got {diversity}")
    return _read(points, diversity)


def accuracy_gap(
    curve: Sequence[tuple[float, float]], reference: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """How far ``curve`` lies above ``reference`` at equal diversity.

    Args:
        curve, reference: ``(diversity, accuracy)`` points of two models' trade-offs, at
            least one each (see :func:`accuracy_at_diversity`).

    Returns:
        ``(diversity, accuracy of curve - accuracy of reference)`` at every diversity of
        either curve that lies within the other's range, both read by
        :func:`accuracy_at_diversity` (one value per diversity); sorted by diversity, empty
        when the ranges do not overlap.

    >>> accuracy_gap([(0.5, 1.0), (1.0, 0.5)], [(0.75, 0.25), (1.25, 0.0)])
    [(0.75, 0.5), (1.0, 0.375)]
    """
    curve_points = _points(curve, "accuracy_gap: curve")
    reference_points = _points(reference, "accuracy_gap: reference")
    gaps = []
    for diversity in sorted({d for d, _ in curve_points} | {d for d, _ in reference_points}):
        ours, theirs = _read(curve_points, diversity), _read(reference_points, diversity)
        if ours is not None and theirs is not None:
            gaps.append((diversity, ours - theirs))
    return gaps
