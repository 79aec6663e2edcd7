"""The whole COCO pipeline through the commands the README gives, on the tiny synthetic COCO:
``flowbridge-coco tiny``, ``flowbridge train examples/coco/tiny.toml``, ``flowbridge-coco
evaluate`` (captioning and text-to-image) and ``flowbridge-coco fid``; and the same in the
feature-file mode."""

from __future__ import annotations

import json
import shlex
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flowbridge.checkpoint import load_checkpoint
from flowbridge.cli import main as flowbridge_main
from flowbridge.config import load_run_config
from flowbridge.training import Trainer
from flowbridge_coco.cli import main as coco_main

TINY = Path(__file__).resolve().parents[1] / "tiny.toml"
QUICK = ["--samples", "3", "--no-meteor", "--batch-size", "2", "--device", "cpu", "--no-progress"]


@pytest.fixture
def trained(tmp_path, monkeypatch, capsys):
    """The README's smoke test up to training (4 steps instead of 500), run in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples" / "coco").mkdir(parents=True)
    shutil.copy(TINY, tmp_path / "examples" / "coco" / "tiny.toml")
    assert coco_main(["tiny", "data/tiny-coco"]) == 0
    assert coco_main(["prepare", "examples/coco/tiny.toml"]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == [
        "train: 12 images, 60 caption pairs",
        "val: 3 images, 15 caption pairs",
        "test: 3 images, 15 caption pairs",
    ]
    argv = ["train", "examples/coco/tiny.toml", "--steps", "4", "--no-progress"]
    assert flowbridge_main(argv) == 0
    assert "checkpoint: runs/coco-tiny/checkpoint.pt" in capsys.readouterr().out
    return Path("runs/coco-tiny/checkpoint.pt")


def colour_means(images: torch.Tensor) -> torch.Tensor:
    """A feature extractor for the tests: each channel's mean, ``[n, 3]``."""
    return images.mean(dim=(2, 3))


def _check_captioning(out: Path, table: str, images: int = 3, samples: int = 3) -> None:
    assert table == (out / "results.md").read_text(encoding="utf-8")
    assert f"| oracle (best of {samples}) |" in table and "| consensus re-ranking |" in table
    metrics = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert metrics["task"] == "captioning" and metrics["images"] == images
    captions = json.loads((out / "captions.json").read_text(encoding="utf-8"))
    assert len(captions) == images and all(len(c) == samples for c in captions.values())


def test_smoke_test_of_the_readme(trained, capsys):
    saved = load_checkpoint(trained)
    assert saved["step"] == 4 and saved["run"]["data"]["dataset"] == "coco"
    assert saved["domains"]["b"]["name"] == "image"  # a = text, b = image: the dataset flipped
    out = Path("results/coco-tiny")
    assert coco_main(["evaluate", str(trained), *QUICK, "--out", str(out)]) == 0
    _check_captioning(out, capsys.readouterr().out)


def test_feature_file_mode_end_to_end(tmp_path, capsys):
    coco = tmp_path / "coco"
    assert coco_main(["tiny", str(coco)]) == 0
    run = load_run_config(TINY)
    run.data.options = {
        "root": str(coco),
        "mode": "features",
        "features": "features.npy",
        "feature_ids": "feature_ids.txt",
    }
    run.domains.b.options = {"encoder": "features", "feature_dim": 8, "hidden": 8}
    run.train.steps, run.train.out, run.train.progress = 4, str(tmp_path / "run"), False
    result = Trainer(run).run()
    capsys.readouterr()
    out = tmp_path / "results"
    assert coco_main(["evaluate", str(result.checkpoint), *QUICK, "--out", str(out)]) == 0
    _check_captioning(out, capsys.readouterr().out)

    # The images-mode settings of tiny.toml do not fit this checkpoint's feature encoder.
    argv = ["evaluate", str(result.checkpoint), *QUICK, "--config", str(TINY)]
    assert coco_main([*argv, "--out", str(tmp_path / "other")]) == 2
    assert (
        "flowbridge-coco evaluate: error: coco option mode ([data.options]) is 'images' but the "
        "image domain's encoder is 'features'" in capsys.readouterr().err
    )


def test_tiny_refuses_a_folder_that_holds_files(tmp_path, capsys):
    karpathy = tmp_path / "coco" / "dataset_coco.json"
    karpathy.parent.mkdir()
    karpathy.write_text('{"images": []}', encoding="utf-8")
    assert coco_main(["tiny", str(karpathy.parent)]) == 2
    assert "is not empty (it holds dataset_coco.json); " in capsys.readouterr().err
    assert karpathy.read_text(encoding="utf-8") == '{"images": []}'
    assert coco_main(["tiny", str(karpathy.parent), "--force"]) == 0
    assert len(json.loads(karpathy.read_text(encoding="utf-8"))["images"]) == 18


def test_prepare_reads_the_run_s_splits_and_a_test_split_where_the_data_has_one(
    tmp_path, monkeypatch, capsys
):
    """COCO's own caption files come as train and val only: prepare does not ask for a test
    split such data lack, but one named with --splits must have images."""
    monkeypatch.chdir(tmp_path)
    assert coco_main(["tiny", "data/tiny-coco"]) == 0
    no_test = (
        '\n[data.options.splits]\ntrain = "train"\nrestval = "train"\nval = "val"\ntest = ""\n'
    )
    Path("no-test.toml").write_text(
        TINY.read_text(encoding="utf-8").replace("\n[domains.a]", no_test + "\n[domains.a]"),
        encoding="utf-8",
    )
    capsys.readouterr()
    assert coco_main(["prepare", "no-test.toml"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "train: 12 images, 60 caption pairs",
        "val: 3 images, 15 caption pairs",
    ]
    assert coco_main(["prepare", "no-test.toml", "--splits", "test"]) == 2
    assert "the test split has no images" in capsys.readouterr().err

    # No validation images either: training says how to go without validation, and that works.
    no_val = (
        Path("no-test.toml")
        .read_text(encoding="utf-8")
        .replace('val = "val"\ntest', 'val = ""\ntest')
    )
    Path("no-val.toml").write_text(no_val, encoding="utf-8")
    assert coco_main(["prepare", "no-val.toml"]) == 2
    assert 'validation split, data.val_split = "" trains without one)' in capsys.readouterr().err
    argv = ["--steps", "1", "--no-progress", "--out", "runs/no-val"]
    assert flowbridge_main(["train", "no-val.toml", *argv]) == 2
    err = capsys.readouterr().err
    assert "the val split has no images" in err
    assert "(reading the validation split, data.val_split = 'val'; if the data have no " in err
    assert 'validation split, data.val_split = "" trains without one)' in err
    Path("no-val.toml").write_text(
        no_val.replace('val_split = "val"', 'val_split = ""'), encoding="utf-8"
    )
    assert flowbridge_main(["train", "no-val.toml", *argv]) == 0

    # The data's root is relative to this folder: the command that continues a run that its
    # time budget stopped goes back here first, else from elsewhere it would not find them.
    budget = ["--steps", "50", "--max-seconds", "1e-6", "--no-progress", "--out", "runs/budget"]
    capsys.readouterr()
    assert flowbridge_main(["train", "no-test.toml", *budget]) == 0
    command = capsys.readouterr().out.split("continue with: ", 1)[1].strip()
    assert command.startswith(f"cd {shlex.quote(str(Path.cwd()))} && flowbridge train ")


def test_text_to_image_and_fid_commands(trained, capsys):
    out = Path("results/t2i")
    argv = ["evaluate", str(trained), "--task", "text-to-image", "--out", str(out)]
    argv += ["--samples", "4", "--grid-rows", "2", "--pr-neighbours", "2"]
    argv += ["--device", "cpu", "--no-progress"]
    assert coco_main([*argv, "--extractor", "test_coco_pipeline:colour_means"]) == 0
    printed = capsys.readouterr()
    assert "| FID | precision | recall |" in printed.out
    # Three real images of 3 feature dims: a singular covariance, said in one line.
    assert printed.err.startswith(
        "flowbridge-coco evaluate: warning: FID from 3 real and 12 generated feature vectors"
    )
    scores = json.loads((out / "results.json").read_text(encoding="utf-8"))["scores"]
    assert scores["generated"] == 12 and scores["real"] == 3
    # An extractor in a file of the current folder, as the README's my_features:extract, is
    # found (a console script's path does not hold the current folder) and gives the same.
    Path("here_features.py").write_text(
        "def extract(images):\n    return images.mean(dim=(2, 3))\n", encoding="utf-8"
    )
    assert coco_main([*argv, "--extractor", "here_features:extract"]) == 0
    capsys.readouterr()
    assert json.loads((out / "results.json").read_text(encoding="utf-8"))["scores"] == scores
    # Three real images cannot give each one 3 neighbours: said before any sampling.
    few = ["evaluate", str(trained), "--task", "text-to-image", "--out", "results/few"]
    few += ["--samples", "4", "--device", "cpu", "--no-progress", "--pr-neighbours", "3"]
    assert coco_main([*few, "--extractor", "here_features:extract"]) == 2
    assert "with k = 3 neighbours (--pr-neighbours) need at least 4 real and 4 generated " in (
        capsys.readouterr().err
    )
    assert not Path("results/few/generated.pt").exists()
    assert str(Path.cwd()) not in sys.path  # looked in for that import only
    assert (out / "grids" / "grid_001.png").is_file()

    # Features extracted elsewhere, scored by `fid`: the same numbers as in the evaluation.
    generated = torch.load(out / "generated.pt", weights_only=True)
    np.save("fake.npy", colour_means(generated.flatten(0, 1).float() / 255).numpy())
    real = torch.load("data/tiny-coco/cache/images-test-3-16px-3c.pt", weights_only=True)
    np.save("real.npy", colour_means(real["images"].float() / 255).numpy())
    assert coco_main(["fid", "real.npy", "fake.npy", "--k", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["FID"] == pytest.approx(scores["FID"], rel=1e-6)
    assert printed["precision"] == scores["precision"] and printed["recall"] == scores["recall"]


def test_evaluate_errors_are_one_line(trained, capsys):
    argv = ["evaluate", str(trained), "--out", "x", *QUICK]
    assert coco_main([*argv, "--data-root", "nowhere"]) == 2
    err = capsys.readouterr().err
    assert "dataset_coco.json: no such file" in err
    # A relative root: the message names the folder it was read from.
    assert f"(coco option 'annotations', read from the current folder {Path.cwd()})" in err
    assert coco_main([*argv, "--split", "dev"]) == 2
    assert "unknown split 'dev'" in capsys.readouterr().err
    t2i = ["evaluate", str(trained), "--task", "text-to-image", "--device", "cpu", "--out", "y"]
    t2i += ["--pr-neighbours", "2"]  # the tiny COCO's 3 test images
    assert coco_main([*t2i, "--extractor", "nope"]) == 2
    assert "--extractor must look like package.module:function" in capsys.readouterr().err
    assert coco_main([*t2i, "--samples", "2", "--real-features", "nothing.npy"]) == 2
    assert "nothing.npy: no such file (--real-features)" in capsys.readouterr().err
    assert coco_main([*t2i, "--samples", "2", "--extractor", "os:getcwd"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flowbridge-coco evaluate: error: the feature extractor ")
    assert "getcwd (--extractor) failed on images [" in err
    np.save("real.npy", np.zeros((3, 3), dtype=np.float32))
    assert coco_main([*t2i, "--samples", "2", "--real-features", "real.npy"]) == 2
    assert "(--real-features) need a feature extractor (--extractor)" in capsys.readouterr().err
    assert coco_main(["fid", "nothing.npy", "fake.npy"]) == 2
    assert "nothing.npy: no such file (argument real)" in capsys.readouterr().err
    # An image domain of another size than the data: prepare says so before training.
    text = TINY.read_text(encoding="utf-8").replace(
        "[domains.b.options]\nsize = 16", "[domains.b.options]\nsize = 32"
    )
    Path("mismatch.toml").write_text(text, encoding="utf-8")
    assert coco_main(["prepare", "mismatch.toml"]) == 2
    assert "coco option size ([data.options]) is 16 but the image domain's size is 32; set " in (
        capsys.readouterr().err
    )
    Path("other.toml").write_text('[data]\ndataset = "shapes"\n', encoding="utf-8")
    assert coco_main(["prepare", "other.toml"]) == 2
    assert "other.toml does not use the coco dataset (its data: 'shapes')" in (
        capsys.readouterr().err
    )
