"""The testbed's accuracy-diversity trade-off: temperature sweeps and equal-diversity reads."""

import math

import pytest

import flowbridge.plugins as plugins
from flowbridge import train
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import (
    VARIANTS,
    at_equal_diversity,
    evaluate,
    run_config,
    text_to_image_tradeoff,
)
from flowbridge_text import plugin as text_plugin


def _row(temperature, entropy, accuracy):
    return {"temperature": temperature, "unstated_entropy": entropy, "accuracy": accuracy}


FLOW = [_row(0.5, 0.6, 0.8), _row(1.0, 0.7, 0.6), _row(1.5, 0.9, 0.4)]
GAUSSIAN = [_row(0.5, 0.5, 0.5), _row(1.0, 0.8, 0.4)]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_variant_is_a_valid_run_and_only_flow_priors_get_the_mixture(variant, tmp_path):
    model = run_config(variant, str(tmp_path)).model
    mixture = model.residual_prior == "flow" and variant != "lnfmm-single"
    assert (model.residual_components > 1) == mixture


def test_gains_where_the_diversities_overlap():
    # Overlap 0.6-0.8. The Gaussian at the flow's entropies 0.6 and 0.7: 0.5 - 0.1/3 and
    # 0.5 - 0.2/3; the flow at the Gaussian's 0.8: 0.5.
    read = at_equal_diversity(FLOW, GAUSSIAN)
    expected = [0.8 - (0.5 - 0.1 / 3), 0.6 - (0.5 - 0.2 / 3), 0.5 - 0.4]
    assert read["overlap"] == [0.6, 0.8]
    assert [e for e, _ in read["gains"]] == [0.6, 0.7, 0.8]
    assert [g for _, g in read["gains"]] == pytest.approx(expected)
    assert read["mean"] == pytest.approx(sum(expected) / 3)
    assert read["min"] == pytest.approx(0.1) and read["max"] == pytest.approx(expected[0])
    assert at_equal_diversity(GAUSSIAN, FLOW)["mean"] == pytest.approx(-read["mean"])


def test_no_overlap_no_reading_and_nan_rows_are_left_out():
    apart = [_row(1.0, 0.95, 0.1), _row(1.5, 0.99, 0.05)]
    assert at_equal_diversity(apart, GAUSSIAN) == {
        "overlap": None,
        "gains": [],
        "mean": None,
        "min": None,
        "max": None,
    }
    with_nan = [*FLOW, _row(2.0, math.nan, 0.1)]
    assert at_equal_diversity(with_nan, GAUSSIAN) == at_equal_diversity(FLOW, GAUSSIAN)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        data = {"options": {"train_size": 40, "seed": 0}}
        config = run_config(
            "gaussian",
            str(tmp_path_factory.mktemp("run")),
            data=data,
            train={"steps": 2, "checkpoint_every": 0, "progress": False},
        )
        bridge = train(config).bridge
        yield bridge, ShapesDataset(**data["options"]).split("test")


def test_the_sweep_repeats_evaluate_at_temperature_one(tiny_run):
    bridge, test = tiny_run
    rows = text_to_image_tradeoff(bridge, test, [0.5, 1.0], samples=3, inputs=4, seed=2)
    assert [row["temperature"] for row in rows] == [0.5, 1.0]
    scores = evaluate(bridge, test, samples=3, inputs=4, seed=2, ceilings=False)
    assert rows[1] == {"temperature": 1.0, **scores["text_to_image"]}
    # Deterministic: the same call gives the same curve.
    assert text_to_image_tradeoff(bridge, test, [0.5], samples=3, inputs=4, seed=2) == rows[:1]
    # A known row is taken as given, not sampled again.
    marker = {"accuracy": -1.0, "unstated_entropy": -1.0, "readable": -1.0}
    reused = text_to_image_tradeoff(
        bridge, test, [0.5, 1.0], samples=3, inputs=4, seed=2, known={1.0: marker}
    )
    assert reused == [rows[0], {"temperature": 1.0, **marker}]
