r"""Loss-weight schedules: each named term's weight times a piecewise-linear factor of the step.

``train.weight_schedule`` maps a :class:`~flowbridge.config.LossWeights` field to points
:math:`(t_1, a_1), \dots, (t_n, a_n)` with :math:`t_1 < \dots < t_n`. The weight of that term
at optimiser step :math:`t` (1-based) is the configured weight :math:`w` times

.. math::

    a(t) = \begin{cases}
        a_1 & t \le t_1 \\
        a_k + (a_{k+1} - a_k)\,\dfrac{t - t_k}{t_{k+1} - t_k} & t_k < t \le t_{k+1} \\
        a_n & t > t_n
    \end{cases}

so ``[[0, 0.0], [1000, 1.0]]`` warms a term up over the first 1,000 steps (a KL warm-up) and
``[[600, 1.0], [1200, 0.0]]`` fades it out between steps 600 and 1,200. A factor of a term
whose weight is 0 stays 0: a schedule scales a term, it cannot switch one on. The factor is a
function of the step alone, so a resumed run continues on the same curve.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence

from ..config import LossWeights

__all__ = ["schedule_factor", "scheduled_weights"]


def schedule_factor(points: Sequence[tuple[int, float]], step: int) -> float:
    """:math:`a(t)` of the module's formula at ``step`` for ``points`` (steps increasing)."""
    steps = [t for t, _ in points]
    k = bisect.bisect_left(steps, step)
    if k == 0:
        return float(points[0][1])
    if k == len(points):
        return float(points[-1][1])
    (t0, a0), (t1, a1) = points[k - 1], points[k]
    return a0 + (a1 - a0) * (step - t0) / (t1 - t0)


def scheduled_weights(
    weights: LossWeights, schedule: Mapping[str, Sequence[tuple[int, float]]], step: int
) -> LossWeights:
    """``weights`` with each scheduled term multiplied by its factor at ``step``."""
    factors = {name: schedule_factor(points, step) for name, points in schedule.items()}
    return dataclasses.replace(
        weights, **{name: getattr(weights, name) * a for name, a in factors.items()}
    )
