"""The captioning and text-to-image evaluation on the tiny COCO with a tiny bridge: what it
measures must obey the definitions (best-of-K bounds the re-ranked and mean scores), files
are written, and the Markdown table reads like the paper's."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

from flowbridge import Bridge, BridgeConfig
from flowbridge.metrics import caption_scores
from flowbridge_coco import CocoDataError, CocoDataset, evaluation
from flowbridge_coco.evaluation import (
    CaptioningSettings,
    TextToImageSettings,
    evaluate_captioning,
    evaluate_text_to_image,
)
from flowbridge_coco.report import CAPTION_COLUMNS, markdown, write_results
from flowbridge_coco.sampling import sample_images
from flowbridge_image import ImageDomain
from flowbridge_text import TextDomain

TINY_TEXT = dict(embedding=8, hidden=8, decoder_hidden=16, layers=1, min_count=1, max_length=8)
TINY_MODEL = dict(
    shared_features=4,
    residual_a=2,
    residual_b=2,
    shared_steps=1,
    shared_hidden=8,
    residual_steps=1,
    residual_hidden=8,
)


def _bridge(dataset: CocoDataset, **image_options) -> Bridge:
    text = TextDomain(**TINY_TEXT)
    text.fit(dataset.split("train").b)
    torch.manual_seed(0)
    return Bridge(text, ImageDomain(**image_options), BridgeConfig(**TINY_MODEL))


def _features_dataset(tiny_coco) -> CocoDataset:
    """The tiny COCO in features mode (the paper's VGG-vector layout)."""
    return CocoDataset(
        root=str(tiny_coco.root),
        mode="features",
        features="features.npy",
        feature_ids="feature_ids.txt",
    )


SETTINGS = CaptioningSettings(
    samples=3, neighbours=2, consensus_top=4, diversity_top=2, meteor=False, batch_size=2
)


@pytest.mark.parametrize("mode", ["images", "features"])
def test_captioning_scores_obey_their_definitions(tiny_coco, mode):
    if mode == "images":
        dataset = CocoDataset(root=str(tiny_coco.root), size=16)
        bridge = _bridge(dataset, size=16, hidden=4)
    else:
        dataset = _features_dataset(tiny_coco)
        bridge = _bridge(dataset, encoder="features", feature_dim=8, hidden=8)
    result = evaluate_captioning(bridge, dataset, "test", SETTINGS)
    metrics = result.metrics
    test_ids = dataset.images("test").ids
    assert metrics["images"] == 3 and list(result.captions) == test_ids
    assert all(len(samples) == 3 for samples in result.captions.values())
    assert set(metrics["oracle"]) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr-D"}
    for metric, best in metrics["oracle"].items():
        assert best >= metrics["consensus"][metric] - 1e-12
        assert best >= metrics["mean_of_k"][metric] - 1e-12
    # The consensus caption also at corpus level (COCO's numbers): BLEU pools its n-gram
    # counts over the images; ROUGE-L and CIDEr-D are means either way.
    corpus = metrics["consensus_corpus"]
    assert set(corpus) == set(metrics["consensus"])
    for metric in ("ROUGE-L", "CIDEr-D"):
        assert corpus[metric] == pytest.approx(metrics["consensus"][metric])
    diversity = metrics["diversity"]
    assert diversity["captions_per_image"] == 2
    assert 0 <= diversity["Div-1"] <= 1 and 0.5 <= diversity["unique"] <= 1
    # flowbridge.metrics.caption_diversity's keys as results.json has always named them
    names = ["captions_per_image", "unique", "novel", "Div-1", "Div-2", "mBLEU-4", "self-CIDEr"]
    assert list(diversity) == names
    assert "SPICE" in metrics["skipped"] and "METEOR" in metrics["skipped"]
    json.dumps(metrics)

    # The same seed gives the same captions.
    again = evaluate_captioning(bridge, dataset, "test", SETTINGS)
    assert again.captions == result.captions


def test_consensus_scores_are_those_of_each_images_top_ranked_caption(tiny_coco, monkeypatch):
    # Distinct candidates (an untrained bridge's samples are alike), so which one re-ranking
    # puts first decides the consensus scores.
    dataset = _features_dataset(tiny_coco)
    bridge = _bridge(dataset, encoder="features", feature_dim=8, hidden=8)
    samples = ["purple hexagon dancing", dataset.split("train").b[0], "zzz"]
    monkeypatch.setattr(
        evaluation, "sample_captions", lambda bridge, items, k, **_: [samples] * len(items)
    )
    result = evaluate_captioning(bridge, dataset, "test", SETTINGS)
    ranked = list(result.captions.values())
    assert all(sorted(row) == sorted(samples) for row in ranked)
    references = dataset.images("test").references
    top = caption_scores([row[:1] for row in ranked], references, meteor=False)
    assert result.metrics["consensus"] == top["mean"]
    assert result.metrics["consensus_corpus"] == top["corpus"]
    assert result.metrics["consensus"] != result.metrics["mean_of_k"]  # the pick matters here


def test_text_to_image_writes_grids_and_scores_with_an_extractor(tiny_coco, tmp_path):
    dataset = CocoDataset(root=str(tiny_coco.root), size=16)
    bridge = _bridge(dataset, size=16, hidden=4)
    settings = TextToImageSettings(samples=4, grid_rows=2, k=2)

    def colour_means(images: torch.Tensor) -> torch.Tensor:
        return images.mean(dim=(2, 3))

    with pytest.warns(UserWarning, match="FID from 3 real and 12 generated"):
        result = evaluate_text_to_image(
            bridge, dataset, tmp_path / "t2i", extractor=colour_means, settings=settings
        )
    grids = tmp_path / "t2i" / "grids"
    assert sorted(p.name for p in grids.iterdir()) == ["grid_000.png", "grid_001.png", "grids.md"]
    index = (grids / "grids.md").read_text(encoding="utf-8")
    for references in dataset.images("test").references:
        assert references[0] in index
    generated = torch.load(tmp_path / "t2i" / "generated.pt", weights_only=True)
    assert generated.dtype == torch.uint8 and generated.shape == (3, 4, 3, 16, 16)
    scores = result["scores"]
    assert scores["real"] == 3 and scores["generated"] == 12
    assert scores["FID"] >= 0 and 0 <= scores["precision"] <= 1 and 0 <= scores["recall"] <= 1

    no_extractor = evaluate_text_to_image(bridge, dataset, tmp_path / "plain", settings=settings)
    assert "scores" not in no_extractor and "FID" in no_extractor["skipped"]


def test_sampled_images_quantized_are_the_floats_rounded_to_8_bits(tiny_coco):
    # A COCO test split's 50,000 images at 256 px are 39 GB as floats: evaluation asks for
    # the 8-bit images it saves, and no float copy of them all is made.
    dataset = CocoDataset(root=str(tiny_coco.root), size=16)
    bridge = _bridge(dataset, size=16, hidden=4)
    captions = [references[0] for references in dataset.images("test").references]
    floats = sample_images(bridge, captions, 3, batch_size=2, seed=1)
    assert floats.dtype == torch.float32 and floats.shape == (3, 3, 3, 16, 16)
    eight_bit = sample_images(bridge, captions, 3, batch_size=2, seed=1, quantize=True)
    assert eight_bit.dtype == torch.uint8
    assert torch.equal(eight_bit, (floats * 255).round().to(torch.uint8))
    with pytest.raises(ValueError, match="at least one caption"):
        sample_images(bridge, [], 3)


def test_data_that_does_not_fit_the_image_domain_names_both_settings(tiny_coco, tmp_path):
    dataset = CocoDataset(root=str(tiny_coco.root), size=16)
    bridge = _bridge(dataset, size=32, hidden=4)
    message = r"coco option size \(\[data.options\]\) is 16 but the image domain's size is 32"
    with pytest.raises(CocoDataError, match=message):
        evaluate_captioning(bridge, dataset, "test", SETTINGS)
    with pytest.raises(CocoDataError, match=message):
        evaluate_text_to_image(bridge, dataset, tmp_path / "t2i")
    with pytest.raises(
        CocoDataError, match="channels .* is 3 but the image domain's channels is 1"
    ):
        dataset.check_image_domain(ImageDomain(size=16, channels=1))
    message = "mode .* is 'images' but the image domain's encoder is 'features', which takes"
    with pytest.raises(CocoDataError, match=message):
        dataset.check_image_domain(ImageDomain(encoder="features", feature_dim=8))
    features = CocoDataset(
        root=str(tiny_coco.root), mode="features", features="f.npy", feature_ids="i.txt"
    )
    with pytest.raises(CocoDataError, match="mode .* is 'features' but .* encoder is 'conv'"):
        features.check_image_domain(ImageDomain(size=16))


def test_report_table_and_files(tiny_coco, tmp_path):
    metrics = {
        "task": "captioning",
        "split": "test",
        "images": 5000,
        "settings": {
            "samples": 100,
            "beam_size": 2,
            "temperature": 1.0,
            "seed": 0,
            "neighbours": 60,
            "consensus_top": 125,
        },
        "oracle": {"BLEU-4": 0.5974, "CIDEr-D": 1.7051, "METEOR": 0.4023},
        "consensus": {"BLEU-4": 0.318},
        "mean_of_k": {},
        "diversity": {"captions_per_image": 5, "unique": 0.992, "novel": 0.8, "Div-1": 0.4},
        "skipped": {"SPICE": "needs CoreNLP"},
    }
    text = markdown(metrics)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("|  | B4"))
    assert header == "|  | " + " | ".join(CAPTION_COLUMNS.values()) + " |"
    assert "| oracle (best of 100) | 0.597 | – | – | – | 1.705 | – | 0.402 | – |" in lines
    assert "| consensus re-ranking | 0.318 |" in text
    # Results written before the corpus-level scores were kept: no such row.
    assert "corpus-level (as COCO tables) |" not in text
    with_corpus = markdown({**metrics, "consensus_corpus": {"BLEU-4": 0.335}})
    assert "| consensus re-ranking, corpus-level (as COCO tables) | 0.335 |" in with_corpus
    assert "| best 5 | 99.2% | 80.0% | – | 0.400 | – | – |" in lines
    assert "- SPICE: needs CoreNLP" in lines
    paths = write_results(metrics, tmp_path / "out", {"captions.json": {"1": ["a dog"]}})
    assert sorted(p.name for p in paths) == ["captions.json", "results.json", "results.md"]
    assert json.loads((tmp_path / "out" / "results.json").read_text(encoding="utf-8")) == metrics
    with pytest.raises(ValueError, match="must come from a coco evaluation"):
        markdown({"task": "shapes"})


def test_bad_settings():
    with pytest.raises(ValueError, match="samples must be >= 1"):
        CaptioningSettings(samples=0)
    with pytest.raises(ValueError, match="temperature must be a number > 0"):
        TextToImageSettings(temperature=0.0)


def test_consensus_reports_the_neighbours_it_used_not_those_asked_for(tiny_coco):
    dataset = _features_dataset(tiny_coco)
    bridge = _bridge(dataset, encoder="features", feature_dim=8, hidden=8)
    train = dataset.images("train")
    references = sum(len(r) for r in train.references)
    assert len(train) < 60 and references < 125  # the tiny COCO has fewer than asked for

    metrics = evaluate_captioning(
        bridge, dataset, "test", replace(SETTINGS, neighbours=60, consensus_top=125)
    ).metrics
    assert metrics["settings"]["neighbours"] == 60
    # Every image's neighbours are the whole training split: all its references are summed.
    assert metrics["used"] == {"neighbours": len(train), "consensus_top": [references] * 2}
    text = markdown(metrics)
    assert f"the {len(train)} nearest training images, top {references} CIDEr-D" in text
    assert f"60 neighbours asked for, but the training split has {len(train)} images" in text
    assert "60 nearest" not in text and "top 125 CIDEr-D" not in text

    metrics = evaluate_captioning(bridge, dataset, "test", SETTINGS).metrics
    assert metrics["used"] == {"neighbours": 2, "consensus_top": [4, 4]}
    assert "the 2 nearest training images, top 4 CIDEr-D similarities summed." in markdown(metrics)


def test_an_empty_caption_is_not_novel(tiny_coco, monkeypatch):
    dataset = _features_dataset(tiny_coco)
    bridge = _bridge(dataset, encoder="features", feature_dim=8, hidden=8)
    # Nothing decoded, punctuation only, and one caption no training image has.
    samples = ["", " . ", "a purple hexagon dancing"]
    monkeypatch.setattr(
        evaluation, "sample_captions", lambda bridge, items, k, **_: [samples] * len(items)
    )
    settings = replace(SETTINGS, diversity_top=0)
    metrics = evaluate_captioning(bridge, dataset, "test", settings).metrics
    assert metrics["diversity"]["captions_per_image"] == 3
    assert metrics["diversity"]["novel"] == pytest.approx(1 / 3)
    assert "novel: neither empty nor a training caption" in markdown(metrics)


def test_one_caption_per_image_has_no_pairwise_diversity(tiny_coco):
    dataset = _features_dataset(tiny_coco)
    bridge = _bridge(dataset, encoder="features", feature_dim=8, hidden=8)
    settings = replace(SETTINGS, diversity_top=1)
    diversity = evaluate_captioning(bridge, dataset, "test", settings).metrics["diversity"]
    # mBLEU-4 and self-CIDEr compare an image's captions with each other: none to compare.
    assert list(diversity) == ["captions_per_image", "unique", "novel", "Div-1", "Div-2"]


def test_a_rerun_into_the_same_folder_leaves_no_file_of_the_earlier_run(tiny_coco, tmp_path):
    dataset = CocoDataset(root=str(tiny_coco.root), size=16)
    bridge = _bridge(dataset, size=16, hidden=4)
    out, grids = tmp_path / "out", tmp_path / "out" / "grids"
    grids.mkdir(parents=True)
    mine = [out / "notes.txt", grids / "mine.png", grids / "grid_1.png"]
    for path in mine:
        path.write_text("the user's own", encoding="utf-8")

    def text_to_image(captions: int) -> None:
        settings = TextToImageSettings(samples=2, grid_rows=1, max_captions=captions)
        write_results(evaluate_text_to_image(bridge, dataset, out, settings=settings), out)

    text_to_image(3)
    assert {p.name for p in grids.glob("grid_???.png")} == {f"grid_00{i}.png" for i in range(3)}
    text_to_image(1)  # fewer captions: fewer grids, and none of the earlier three stays
    assert {p.name for p in grids.glob("grid_???.png")} == {"grid_000.png"}
    assert len((grids / "grids.md").read_text(encoding="utf-8").split("## grid_")) == 2

    result = evaluate_captioning(bridge, dataset, "test", SETTINGS)
    write_results(result.metrics, out, {"captions.json": {"1": ["a dog"]}})
    assert not (out / "generated.pt").exists() and not (grids / "grids.md").exists()
    assert not list(grids.glob("grid_???.png"))
    text_to_image(1)
    assert not (out / "captions.json").exists()
    assert all(path.read_text(encoding="utf-8") == "the user's own" for path in mine)
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["task"] == "text-to-image"


def test_features_of_another_width_than_the_domains_feature_dim_are_named(tiny_coco):
    # prepare calls check_image_domain: it passed 8-dim features to a domain of 4096 (the
    # captioning-features.toml default), and training then failed on the first batch.
    dataset = CocoDataset(
        root=str(tiny_coco.root),
        mode="features",
        features="features.npy",
        feature_ids="feature_ids.txt",
    )
    dataset.check_image_domain(ImageDomain(encoder="features", feature_dim=8))
    message = "holds vectors of 8 dims but the image domain's feature_dim is 4096"
    with pytest.raises(CocoDataError, match=message):
        dataset.check_image_domain(ImageDomain(encoder="features", feature_dim=4096))
