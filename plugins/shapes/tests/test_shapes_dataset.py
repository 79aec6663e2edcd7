"""The "shapes" dataset: splits, pairing, meta, determinism, novel pairs, registration."""

from __future__ import annotations

import time
from importlib import metadata

import pytest
import torch

import flowbridge_shapes.plugin
from flowbridge import plugins
from flowbridge_shapes import ShapesDataset, claims_hold, parse_caption, read_images

SMALL = dict(train_size=40, val_size=10, test_size=10, novel_size=10)


@pytest.fixture(scope="module")
def dataset():
    return ShapesDataset(**SMALL)


@pytest.mark.parametrize("name", ShapesDataset.splits)
def test_split_pairs_and_meta(dataset, name):
    split = dataset.split(name)
    assert len(split) == dataset.sizes[name] * 3
    assert {m["image"] for m in split.meta} == set(range(dataset.sizes[name]))
    for image, caption, meta in zip(split.a, split.b, split.meta, strict=True):
        assert image.shape == (3, 32, 32) and image.dtype == torch.float32
        assert float(image.min()) >= 0 and float(image.max()) <= 1
        assert isinstance(caption, str) and caption == caption.lower()
        assert parse_caption(caption) == meta["claims"]
        assert claims_hold(meta["claims"], meta["attributes"])
    # the captions of one image are paired with the same image tensor
    first = {}
    for image, meta in zip(split.a, split.meta, strict=True):
        assert first.setdefault(meta["image"], image) is image
    # the oracle agrees with the attributes the images were drawn with
    images = [first[i] for i in sorted(first)]
    attrs = {m["image"]: m["attributes"] for m in split.meta}
    assert read_images(images) == [attrs[i] for i in sorted(first)]


def test_many_to_many(dataset):
    split = dataset.split("train")
    captions_per_image: dict[int, set] = {}
    images_per_claims: dict[tuple, set] = {}
    for caption, meta in zip(split.b, split.meta, strict=True):
        captions_per_image.setdefault(meta["image"], set()).add(caption)
        key = tuple(sorted(meta["claims"].items()))
        images_per_claims.setdefault(key, set()).add(tuple(sorted(meta["attributes"].items())))
    assert sum(len(c) == 3 for c in captions_per_image.values()) >= 0.9 * 40
    # some statements fit images of several different attribute combinations
    assert max(len(v) for v in images_per_claims.values()) >= 3


def test_novel_split_holds_out_shape_colour_pairs(dataset):
    held_out = set(dataset.held_out)
    assert len(held_out) == 4 and len({c for _, c in held_out}) == 4
    for name in ("train", "val", "test"):
        pairs = {
            (m["attributes"]["shape"], m["attributes"]["color"]) for m in dataset.split(name).meta
        }
        assert not pairs & held_out
    novel = {
        (m["attributes"]["shape"], m["attributes"]["color"]) for m in dataset.split("novel").meta
    }
    assert novel <= held_out
    # The pool each split draws from, as the ceilings need it: the held-out pairs only in
    # the novel split's, every other combination in the others'.
    for name in ("train", "val", "test"):
        pool = {(c["shape"], c["color"]) for c in dataset.combinations_of(name)}
        assert not pool & held_out and len(dataset.combinations_of(name)) == 192 - 4 * 8
    assert {(c["shape"], c["color"]) for c in dataset.combinations_of("novel")} == held_out


def test_deterministic_by_seed_and_independent_splits():
    a, b = ShapesDataset(**SMALL), ShapesDataset(**{**SMALL, "val_size": 3})
    assert a.split("train").b == b.split("train").b
    assert all(
        torch.equal(x, y) for x, y in zip(a.split("train").a, b.split("train").a, strict=True)
    )
    assert ShapesDataset(**SMALL, seed=1).split("train").b != a.split("train").b
    assert a.split("train") is a.split("train")  # cached


def test_default_dataset_is_quick():
    start = time.perf_counter()
    dataset = ShapesDataset()
    sizes = {name: len(dataset.split(name)) for name in dataset.splits}
    assert sizes == {"train": 6000, "val": 600, "test": 600, "novel": 600}
    assert time.perf_counter() - start < 30


def test_64_pixel_images():
    split = ShapesDataset(train_size=4, image_size=64, captions_per_image=1).split("train")
    assert split.a[0].shape == (3, 64, 64)
    assert read_images(split.a) == [m["attributes"] for m in split.meta]


def test_an_image_domain_of_another_size_is_named_before_training():
    from flowbridge_image import ImageDomain
    from flowbridge_text import TextDomain

    dataset = ShapesDataset(train_size=4, image_size=64)
    dataset.check_domains(ImageDomain(size=64), TextDomain())
    cases = [
        (ImageDomain(size=32), r"image domain's size = 64 \(shapes option image_size is 64, .* 32"),
        (ImageDomain(size=64, channels=1), "channels = 3 .* but it is 1"),
        (ImageDomain(encoder="features", feature_dim=8), "encoder = 'conv' .* 'features'"),
    ]
    for image, message in cases:
        with pytest.raises(ValueError, match=message):
            dataset.check_domains(image, TextDomain())


def test_registered_through_the_plugin_hook():
    # The suite registers plugins in code; run alone, the entry point may have loaded it.
    here = not plugins.get_plugin_manager().is_registered(flowbridge_shapes.plugin)
    if here:
        plugins.register(flowbridge_shapes.plugin, name="shapes")
    try:
        dataset = plugins.get_dataset("shapes", train_size=2)
        assert isinstance(dataset, ShapesDataset) and dataset.domains == ("image", "text")
        assert dataset.options["train_size"] == 2
    finally:
        if here:
            plugins.unregister("shapes")
    entry_points = metadata.entry_points(group="flowbridge")
    assert "flowbridge_shapes.plugin" in {ep.value for ep in entry_points if ep.name == "shapes"}


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        (dict(train_size=-1), ValueError, "train_size must be >= 0"),
        (dict(val_size="10"), TypeError, "val_size must be an int"),
        (dict(captions_per_image=0), ValueError, "captions_per_image must be >= 1"),
        (dict(image_size=8), ValueError, "at least 16 pixels"),
        (dict(novel_pairs=13), ValueError, "novel_pairs must be between 0 and 12"),
    ],
)
def test_bad_options_are_explained(options, error, match):
    with pytest.raises(error, match=match):
        ShapesDataset(**options)


def test_bad_split_is_explained():
    with pytest.raises(ValueError, match="unknown split 'training'"):
        ShapesDataset(**SMALL).combinations_of("training")
    with pytest.raises(ValueError, match="unknown split 'training'.*'novel'"):
        ShapesDataset(**SMALL).split("training")
    with pytest.raises(ValueError, match="novel_pairs >= 1"):
        ShapesDataset(**SMALL, novel_pairs=0).split("novel")
