"""Testbed metrics on hand-made outputs with known answers, and the ceilings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from flowbridge_shapes import (
    ShapesDataset,
    caption_ceiling,
    caption_diversity,
    caption_metrics,
    caption_reconstruction,
    image_ceiling,
    image_metrics,
    image_reconstruction,
    one_pair_per_image,
    read_images,
    render,
    sample_images,
)
from flowbridge_shapes import metrics as metrics_module
from flowbridge_shapes.metrics import attributes_kept, captions_by_image

RED_CIRCLE = {
    "shape": "circle",
    "color": "red",
    "size": "large",
    "horizontal": "left",
    "vertical": "top",
}
META = {"image": 0, "attributes": RED_CIRCLE, "claims": {"shape": "circle"}}


def _images(*changes: dict) -> list[torch.Tensor]:
    return list(render([{**RED_CIRCLE, **c} for c in changes], np.random.default_rng(0)))


def test_caption_metrics_identical_and_all_different():
    same = caption_metrics([["a red circle"] * 4], [META])
    assert same == {"accuracy": 1.0, "distinct_valid": 0.25, "parsed": 1.0}
    varied = ["a red circle", "a big disk", "something crimson", "a shape at the top left"]
    assert caption_metrics([varied], [META]) == {
        "accuracy": 1.0,
        "distinct_valid": 1.0,
        "parsed": 1.0,
    }


def test_caption_metrics_add_the_literature_s_diversity_metrics_given_the_training_captions():
    captions = [
        ["a red circle", "a big disk", "a red circle", "a large circle on the left"],
        ["a red circle"] * 4,
    ]
    training = [["a big disk", "a small square"], ["a red circle"]]
    got = caption_metrics(captions, [META, META], training)
    # Those of flowbridge.metrics, whose values tests/test_metrics_diversity.py checks by hand.
    diversity = caption_diversity(captions, training)
    assert set(diversity) == {"div_1", "div_2", "mbleu_4", "unique", "novel", "self_cider"}
    assert got == {**caption_metrics(captions, [META, META]), **diversity}
    # The data's own captions are scored by the same metrics.
    ceiling = caption_ceiling([META], k=4, training=training)
    assert {"div_1", "div_2", "mbleu_4", "unique", "novel", "self_cider"} <= set(ceiling)


def test_captions_by_image_groups_a_split_s_captions_by_image():
    meta = [{"image": i} for i in (0, 0, 1, 0, 2)]
    assert captions_by_image(meta, ["a", "b", "c", "d", "e"]) == [["a", "b", "d"], ["c"], ["e"]]
    with pytest.raises(ValueError, match="2 captions but meta of 5 pairs"):
        captions_by_image(meta, ["a", "b"])


def test_caption_metrics_count_false_and_unparsable_captions():
    captions = [["a red circle", "a blue circle", "red circle a", "A red circle."]]
    # true, false, outside the grammar, and a duplicate of the first (after normalisation)
    got = caption_metrics(captions, [META])
    assert got == {"accuracy": 0.5, "distinct_valid": 0.25, "parsed": 0.75}
    # averaged over inputs
    two = caption_metrics([["a red circle"] * 2, ["a blue square"] * 2], [META, META])
    assert two == {"accuracy": 0.5, "distinct_valid": 0.25, "parsed": 1.0}


def test_image_metrics_accuracy_and_unstated_entropy():
    images = _images({}, {}, {"color": "blue"}, {"color": "blue"})
    got = image_metrics([images], [META])
    assert got["accuracy"] == 1.0 and got["readable"] == 1.0
    # unstated: colour (2 values, evenly) and size, horizontal, vertical (one value each)
    assert got["unstated_entropy"] == pytest.approx(math.log(2) / math.log(6) / 4)
    wrong = _images({}, {"shape": "square"}, {}, {"shape": "triangle"})
    assert image_metrics([wrong], [META])["accuracy"] == 0.5


def test_image_metrics_by_attribute_names_the_wrong_and_the_unvaried_attribute():
    # META states a red circle; two of four drawn as squares, colour open over red and blue.
    images = _images({}, {"shape": "square"}, {"color": "blue"}, {"shape": "square"})
    metrics = image_metrics([images], [META], by_attribute=True)
    got = metrics["by_attribute"]
    assert {k: v for k, v in metrics.items() if k != "by_attribute"} == image_metrics(
        [images], [META]
    )
    assert got["shape"] == {"wrong": 0.5, "entropy": pytest.approx(math.nan, nan_ok=True)}
    assert got["color"]["entropy"] == pytest.approx(math.log(2) / math.log(6) * 0.81127812)
    assert got["size"] == {"wrong": pytest.approx(math.nan, nan_ok=True), "entropy": 0.0}
    blank = torch.full((3, 32, 32), 0.3)  # unreadable: counted neither way
    assert image_metrics([[*images, blank]], [META], by_attribute=True)["by_attribute"] == got


def test_an_undecided_shape_meets_no_stated_shape_and_is_left_out_of_the_shape_entropy(
    monkeypatch,
):
    # The oracle leaves the shape of a blob undecided ("shape": None): readings made up here.
    readings = [
        {**RED_CIRCLE, "shape": None},
        RED_CIRCLE,
        {**RED_CIRCLE, "shape": "square"},
        {**RED_CIRCLE, "shape": None},
        RED_CIRCLE,
    ]
    monkeypatch.setattr(metrics_module, "read_images", lambda images: readings[: len(images)])
    image = _images({})[0]
    red = {**META, "claims": {"color": "red"}}
    got = image_metrics([[image] * 3, [image] * 2], [red, META], by_attribute=True)
    # Row 1 states the colour only: all three hold; row 2 states the circle: one of two.
    assert got["accuracy"] == 4 / 5
    assert got["by_attribute"]["shape"]["wrong"] == 1 / 2
    # The shape open in row 1 varies over circle and square (the undecided one left out),
    # not over three values.
    assert got["by_attribute"]["shape"]["entropy"] == pytest.approx(math.log(2) / math.log(4))
    # A reconstruction whose shape is undecided does not keep its original's.
    blob = {**RED_CIRCLE, "shape": None}
    assert attributes_kept([RED_CIRCLE, RED_CIRCLE], [blob, RED_CIRCLE]) == 0.5
    # Two undecided readings are not a kept shape either.
    assert attributes_kept([blob, blob], [blob, blob]) == 0.0


def test_image_metrics_all_stated_and_unreadable():
    stated = {**META, "claims": dict(RED_CIRCLE)}
    blank = torch.full((3, 32, 32), 0.3)
    got = image_metrics([_images({}) + [blank]], [stated])
    assert got["accuracy"] == 0.5 and got["readable"] == 0.5
    assert math.isnan(got["unstated_entropy"])


def test_sample_images_fit_the_claims():
    claims = {"color": "green", "vertical": "bottom"}
    images = sample_images(claims, 12, np.random.default_rng(0))
    read = read_images(images)
    assert all(r["color"] == "green" and r["vertical"] == "bottom" for r in read)
    assert len({r["shape"] for r in read}) > 1
    with pytest.raises(ValueError, match="no attribute combination"):
        sample_images({"color": "green"}, 1, np.random.default_rng(0), combinations=[RED_CIRCLE])


@pytest.fixture(scope="module")
def test_meta():
    split = ShapesDataset(train_size=0, test_size=40, val_size=0, novel_size=0).split("test")
    return [split.meta[i] for i in one_pair_per_image(split.meta)]


def test_ceilings(test_meta):
    captions = caption_ceiling(test_meta, k=5)
    assert captions["accuracy"] == 1.0 and captions["parsed"] == 1.0
    assert 0.8 <= captions["distinct_valid"] <= 1.0
    assert caption_ceiling(test_meta, k=5) == captions  # seeded
    images = image_ceiling(test_meta, k=5)
    assert images["accuracy"] >= 0.99 and images["readable"] >= 0.99
    assert 0.4 < images["unstated_entropy"] < 1.0


def test_the_image_ceiling_draws_from_the_combinations_it_is_given():
    meta = [{"image": 0, "attributes": RED_CIRCLE, "claims": {"color": "red"}}] * 3
    everything = image_ceiling(meta, k=10)
    # Only the shape may vary, between two of its four values: each input's normalised
    # entropy is at most log 2 / log 4 for the shape and 0 for the other three attributes.
    two = [RED_CIRCLE, {**RED_CIRCLE, "shape": "square"}]
    restricted = image_ceiling(meta, k=10, combinations=two)
    assert restricted["accuracy"] == 1.0
    assert 0 < restricted["unstated_entropy"] <= 0.5 / 4 + 1e-9
    assert everything["unstated_entropy"] > 0.5


def test_reconstruction_helpers():
    images = _images({}, {"shape": "triangle", "horizontal": "right"})
    same = image_reconstruction(images, images)
    assert same == {"mse": 0.0, "psnr": math.inf, "attributes_kept": 1.0}
    # mirrored left-right: every object changes side
    flipped = image_reconstruction(images, [i.flip(-1) for i in images])
    assert flipped["attributes_kept"] == 0.0 and flipped["mse"] > 0
    assert flipped["psnr"] == pytest.approx(10 * math.log10(1 / flipped["mse"]))
    got = caption_reconstruction(["a red circle", "a big box"], ["a crimson circle", "a big box"])
    assert got == {"exact": 0.5, "claims_kept": 1.0}
    # What cannot be read is not kept, even where its reconstruction is unreadable alike: a
    # blank image rebuilt blank, a caption without claims rebuilt word for word.
    blank = torch.zeros(3, 32, 32)
    assert image_reconstruction([blank, images[0]], [blank, images[0]])["attributes_kept"] == 0.5
    assert attributes_kept([None, {"shape": "circle"}], [None, {"shape": "circle"}]) == 0.5
    unparsed = caption_reconstruction(
        ["hello there", "a red circle"], ["hello there", "a red circle"]
    )
    assert unparsed == {"exact": 1.0, "claims_kept": 0.5}
    with pytest.raises(ValueError, match="as many reconstructions"):
        caption_reconstruction(["a"], [])


def test_one_pair_per_image():
    meta = [{"image": 0}, {"image": 0}, {"image": 1}, {"image": 2}, {"image": 1}]
    assert one_pair_per_image(meta) == [0, 2, 3]


def test_bad_input_is_explained():
    with pytest.raises(ValueError, match="1 inputs but meta has 2"):
        caption_metrics([["a red circle"]], [META, META])
    with pytest.raises(ValueError, match="non-empty list"):
        caption_metrics([[]], [META])
    with pytest.raises(ValueError, match="'claims'"):
        image_metrics([_images({})], [{"image": 0}])
    with pytest.raises(TypeError, match="one list of K samples"):
        caption_metrics("a red circle", [META])
