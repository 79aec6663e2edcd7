"""The testbed's accuracy-diversity trade-off: temperature sweeps and equal-diversity reads."""

import math

import pytest

import flowbridge.plugins as plugins
from flowbridge import train
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.experiment import (
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


def test_reads_one_curve_at_the_other_models_diversity():
    # The Gaussian's T = 1 point has entropy 0.8: the flow curve there is halfway between
    # (0.7, 0.6) and (0.9, 0.4), so 0.5, ten points above the Gaussian's 0.4.
    read = at_equal_diversity(FLOW, GAUSSIAN)
    assert read["unstated_entropy"] == 0.8 and read["reference_accuracy"] == 0.4
    assert read["accuracy"] == pytest.approx(0.5) and read["gain"] == pytest.approx(0.1)
    # And the other way round: the Gaussian at the flow's entropy 0.7.
    back = at_equal_diversity(GAUSSIAN, FLOW)
    assert back["accuracy"] == pytest.approx(0.5 - 0.1 * 2 / 3)
    assert back["gain"] == pytest.approx(back["accuracy"] - 0.6)


def test_outside_the_curve_there_is_no_reading():
    read = at_equal_diversity(GAUSSIAN, FLOW, temperature=1.5)  # entropy 0.9 > 0.8
    assert read["accuracy"] is None and read["gain"] is None
    assert read["reference_accuracy"] == 0.4


def test_nan_entropies_are_left_out_and_a_missing_temperature_is_named():
    curve = [*FLOW, _row(2.0, math.nan, 0.1)]
    assert at_equal_diversity(curve, GAUSSIAN)["accuracy"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no row at temperature 0.7"):
        at_equal_diversity(FLOW, GAUSSIAN, temperature=0.7)


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
