"""accuracy_at_diversity on hand-made trade-off curves."""

from __future__ import annotations

import math

import pytest

from flowbridge.metrics import accuracy_at_diversity, accuracy_gap


def test_interpolates_between_the_bracketing_points_in_any_order():
    curve = [(0.9, 0.5), (0.5, 0.9), (0.7, 0.8)]  # unsorted on purpose
    assert accuracy_at_diversity(curve, 0.6) == pytest.approx(0.85)
    assert accuracy_at_diversity(curve, 0.85) == pytest.approx(0.8 - 0.3 * 0.75)


def test_a_point_on_the_curve_reads_its_own_accuracy():
    assert accuracy_at_diversity([(0.5, 0.9), (0.7, 0.8)], 0.7) == 0.8
    # neighbouring points at one diversity: their mean
    assert accuracy_at_diversity([(0.5, 0.9), (0.5, 0.7), (0.8, 0.1)], 0.5) == pytest.approx(0.8)
    assert accuracy_at_diversity([(0.4, 0.6)], 0.4) == 0.6


def test_no_extrapolation():
    curve = [(0.5, 0.9), (0.7, 0.8)]
    assert accuracy_at_diversity(curve, 0.49) is None
    assert accuracy_at_diversity(curve, 0.71) is None
    assert accuracy_at_diversity([(0.4, 0.6)], 0.5) is None


@pytest.mark.parametrize(
    ("curve", "diversity", "message"),
    [
        ([], 0.5, "at least one"),
        ([(0.5, math.nan)], 0.5, "finite points"),
        ([(math.inf, 0.5)], 0.5, "finite points"),
        ([(0.5, 0.5)], math.nan, "diversity must be finite"),
    ],
)
def test_bad_input_is_refused(curve, diversity, message):
    with pytest.raises(ValueError, match=message):
        accuracy_at_diversity(curve, diversity)


@pytest.mark.parametrize("curve", [{0.5: 0.9, 0.7: 0.8}, [0.5, 0.9], [(0.5, 0.9, 1.0)], [("a", 1)]])
def test_a_curve_that_is_not_pairs_shows_the_expected_form(curve):
    with pytest.raises(TypeError, match=r"list of \(diversity, accuracy\) pairs, e.g."):
        accuracy_gap(curve, [(0.6, 0.5)])
    with pytest.raises(TypeError, match=r"list of \(diversity, accuracy\) pairs"):
        accuracy_at_diversity(curve, 0.6)


def test_docstring_example_holds():
    import doctest

    import flowbridge.metrics.tradeoff as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_gap_reads_each_curve_at_the_others_points_within_the_overlap():
    flow = [(0.6, 0.8), (0.7, 0.6), (0.9, 0.4)]
    gaussian = [(0.5, 0.5), (0.8, 0.4)]
    gaps = accuracy_gap(flow, gaussian)
    # overlap 0.6-0.8: flow's points 0.6 and 0.7 against the Gaussian there (0.5 - 0.1/3
    # and 0.5 - 0.2/3), and the Gaussian's point 0.8 against the flow's 0.5
    assert [d for d, _ in gaps] == [0.6, 0.7, 0.8]
    expected = [0.8 - (0.5 - 0.1 / 3), 0.6 - (0.5 - 0.2 / 3), 0.5 - 0.4]
    assert [g for _, g in gaps] == pytest.approx(expected)
    # reversed roles: the same points, the opposite sign
    reverse = accuracy_gap(gaussian, flow)
    assert [d for d, _ in reverse] == [0.6, 0.7, 0.8]
    assert [-g for _, g in reverse] == pytest.approx(expected)


def test_gap_is_empty_without_overlap():
    assert accuracy_gap([(0.1, 0.9), (0.2, 0.8)], [(0.5, 0.5), (0.6, 0.4)]) == []


# unique_fraction saturates at 1.0 for the three hottest temperatures
SATURATED = [(0.8, 0.9), (1.0, 0.8), (1.0, 0.6), (1.0, 0.5)]


def test_points_of_equal_diversity_are_one_point_at_their_mean_accuracy():
    merged = [(0.8, 0.9), (1.0, (0.8 + 0.6 + 0.5) / 3)]
    for diversity in (0.8, 0.9, 0.99, 0.999, 1 - 1e-12, 1.0):
        expected = accuracy_at_diversity(merged, diversity)
        assert accuracy_at_diversity(SATURATED, diversity) == pytest.approx(expected)
        # the order of the tied points does not matter
        assert accuracy_at_diversity(SATURATED[::-1], diversity) == pytest.approx(expected)
    # continuous: no jump just below the tied diversity
    below = accuracy_at_diversity(SATURATED, 1 - 1e-12)
    assert below == pytest.approx(accuracy_at_diversity(SATURATED, 1.0), abs=1e-9)


def test_gap_has_one_value_per_diversity_with_tied_points():
    gaps = accuracy_gap(SATURATED, [(0.9, 0.7), (1.0, 0.7)])
    mean = (0.8 + 0.6 + 0.5) / 3
    assert [d for d, _ in gaps] == [0.9, 1.0]
    assert [g for _, g in gaps] == pytest.approx([(0.9 + mean) / 2 - 0.7, mean - 0.7])


def test_gap_refuses_an_empty_curve_naming_itself():
    with pytest.raises(ValueError, match=r"accuracy_gap: reference has no points"):
        accuracy_gap([(0.2, 0.5)], [])
    with pytest.raises(ValueError, match=r"accuracy_gap: curve has no points"):
        accuracy_gap([], [])


def test_readings_are_python_floats():
    import numpy as np

    reading = accuracy_at_diversity(np.array([[0.5, 0.9], [0.7, 0.8]]), np.float32(0.6))
    assert type(reading) is float and reading == pytest.approx(0.85)
    assert type(accuracy_at_diversity(np.array([[0.5, 0.9]]), np.float32(0.5))) is float
    gaps = accuracy_gap(np.array([[0.5, 0.9], [0.7, 0.8]]), [(np.float32(0.6), np.float32(0.5))])
    assert all(type(d) is float and type(g) is float for d, g in gaps)
    with pytest.raises(TypeError, match="diversity must be a number"):
        accuracy_at_diversity([(0.5, 0.9)], "0.5")
