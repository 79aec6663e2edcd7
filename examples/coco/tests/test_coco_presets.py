"""The COCO run configurations in examples/coco: they load, agree with the paper presets of
flowbridge.presets, keep the dataset and the image domain at one size, and the one-GPU model
trains on the tiny COCO."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from flowbridge.config import load_run_config, to_dict
from flowbridge.presets import VOLUME_WEIGHT, bits_per_dim_weight
from flowbridge.training import Trainer
from flowbridge_coco import CocoDataset
from flowbridge_coco.testing import write_tiny_coco

HERE = Path(__file__).resolve().parents[1]
CONFIGS = sorted(HERE.glob("*.toml"))


def test_the_configs_the_readme_lists():
    names = [path.stem for path in CONFIGS]
    assert sorted(names) == ["captioning", "captioning-features", "small", "text-to-image", "tiny"]
    readme = (HERE / "README.md").read_text(encoding="utf-8")
    assert all(f"`{path.name}`" in readme for path in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_its_dataset_and_domains(path, plugins):
    config = load_run_config(path)
    assert config.data.dataset == "coco"
    dataset = CocoDataset(**config.data.options)
    assert (config.domains.a.name, config.domains.b.name) == ("text", "image")
    text = plugins.get_domain("text", **config.domains.a.options)
    image = plugins.get_domain("image", **config.domains.b.options)
    assert text.min_count == (1 if path.stem == "tiny" else 5)  # tiny: a handful of captions
    if dataset.config.mode == "images":
        assert image.config.size == dataset.config.size  # collate needs the cache's size
    else:
        assert image.features_mode
    assert not config.train.collate_upfront  # 566k pairs: never stack them all as floats
    assert config.train.out == f"runs/coco-{path.stem}"


def test_captioning_is_the_paper_preset():
    paper = load_run_config({"preset": "captioning"})
    config = load_run_config(HERE / "captioning.toml")
    assert config.model == paper.model
    assert config.domains.b == paper.domains.b  # 64x64 RGB, L1
    assert config.domains.a.options == {**paper.domains.a.options, "min_count": 5}
    assert to_dict(config.train) == {
        **to_dict(paper.train),
        "collate_upfront": False,
        "val_size": 5000,
        "out": "runs/coco-captioning",
    }


def test_features_config_is_the_captioning_preset_written_out():
    features = load_run_config(HERE / "captioning-features.toml")
    pixels = load_run_config(HERE / "captioning.toml")
    assert features.model == pixels.model
    assert features.domains.a == pixels.domains.a
    assert to_dict(features.train) == {**to_dict(pixels.train), "out": features.train.out}
    assert features.domains.b.options["encoder"] == "features"
    assert features.data.options["mode"] == "features"


def test_text_to_image_is_the_paper_preset_at_256_pixels():
    paper = load_run_config({"preset": "text-to-image"})
    config = load_run_config(HERE / "text-to-image.toml")
    assert config.model == paper.model
    assert config.domains.b.options["size"] == config.data.options["size"] == 256


def test_small_weights_are_the_paper_weights_at_its_sizes():
    model = load_run_config(HERE / "small.toml").model
    weights = model.weights
    assert weights.prior_a == pytest.approx(bits_per_dim_weight(5000, model.residual_a))
    assert weights.prior_b == pytest.approx(bits_per_dim_weight(200, model.residual_b))
    assert weights.shared == pytest.approx(VOLUME_WEIGHT * 992 / model.shared_features)
    assert weights.shared == pytest.approx(1000 / (model.shared_features * math.log(2)))


def test_small_config_trains_on_the_tiny_coco(tmp_path):
    tiny = write_tiny_coco(tmp_path / "coco")
    config = load_run_config(HERE / "small.toml")
    config.data.options["root"] = str(tiny.root)
    config.data.val_split = ""
    config.domains.a.options["min_count"] = 1  # the tiny COCO has few words
    config.train = dataclasses.replace(
        config.train, steps=1, batch_size=8, device="cpu", out=str(tmp_path / "run")
    )
    result = Trainer(config).run()
    assert result.step == 1 and math.isfinite(result.terms["total"])
    assert result.bridge.config.shared_features == 256
