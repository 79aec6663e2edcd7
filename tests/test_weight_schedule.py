"""Loss-weight schedules: the piecewise-linear factor and the weights it scales."""

from __future__ import annotations

import pytest

from flowbridge.config import LossWeights
from flowbridge.training.schedule import schedule_factor, scheduled_weights

FADE = ((600, 1.0), (1200, 0.0))
WARM_THEN_HOLD = ((0, 0.0), (100, 2.0), (300, 0.5))


@pytest.mark.parametrize(
    ("points", "step", "factor"),
    [
        (FADE, 1, 1.0),  # before the first point: its factor
        (FADE, 600, 1.0),
        (FADE, 750, 0.75),
        (FADE, 1200, 0.0),
        (FADE, 10_000, 0.0),  # after the last point: its factor
        (WARM_THEN_HOLD, 0, 0.0),
        (WARM_THEN_HOLD, 25, 0.5),
        (WARM_THEN_HOLD, 100, 2.0),
        (WARM_THEN_HOLD, 200, 1.25),
        (((5, 3.0),), 1, 3.0),  # one point: a constant
        (((5, 3.0),), 9, 3.0),
    ],
)
def test_the_factor_interpolates_between_points_and_holds_outside_them(points, step, factor):
    assert schedule_factor(points, step) == pytest.approx(factor)


def test_scheduled_weights_scale_only_the_scheduled_terms():
    weights = LossWeights(rec_a=2.0, prior_a=3.0, align=0.0)
    scaled = scheduled_weights(weights, {"rec_a": FADE, "align": FADE}, 900)
    assert scaled.rec_a == pytest.approx(1.0) and scaled.align == 0.0
    assert scaled.prior_a == 3.0 and scaled.cross == weights.cross
    assert weights.rec_a == 2.0  # a copy: the configured weights stay as they were
