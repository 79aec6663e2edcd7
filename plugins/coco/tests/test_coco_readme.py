"""The project README's run configuration for "images and captions of your own" works as
printed: made-up images in one folder, one COCO captions file per split, then
``flowbridge train`` (2 steps instead of the printed 2,000) and ``flowbridge translate``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import flowbridge.plugins
import flowbridge_coco.plugin
import flowbridge_image.plugin
import flowbridge_text.plugin
from flowbridge.checkpoint import load_checkpoint
from flowbridge.cli import main
from flowbridge.config import load_run_config

README = (Path(__file__).resolve().parents[3] / "README.md").read_text(encoding="utf-8")
TOML_BLOCKS = re.findall(r"^```toml\n(.*?)^```$", README, flags=re.MULTILINE | re.DOTALL)
COLOURS = {"red": (220, 30, 30), "blue": (30, 60, 220)}


@pytest.fixture(autouse=True)
def plugins():
    with flowbridge.plugins.isolated(
        flowbridge_image.plugin, flowbridge_text.plugin, flowbridge_coco.plugin
    ):
        yield


def _own_data(root: Path, annotations: dict[str, str]) -> list[Path]:
    """Plain images of one colour each (odd sizes: loading crops and resizes them), two
    captions per image, written where the configuration says; returns the image files."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    files, next_id = [], 0
    for split, name in annotations.items():
        images, captions = [], []
        for _ in range(8 if split == "train" else 3):
            colour = str(rng.choice(list(COLOURS)))
            file = root / "images" / f"photo-{next_id}.png"
            Image.new("RGB", (45, 37), COLOURS[colour]).save(file)
            images.append({"id": next_id, "file_name": file.name})
            captions += [
                {"id": 2 * next_id + k, "image_id": next_id, "caption": text}
                for k, text in enumerate((f"a {colour} photo", f"something {colour}"))
            ]
            files.append(file)
            next_id += 1
        (root / name).write_text(
            json.dumps({"images": images, "annotations": captions}), encoding="utf-8"
        )
    return files


def test_the_readme_configuration_trains_on_a_folder_of_images_and_captions_files(
    tmp_path, monkeypatch, capsys
):
    [block] = [block for block in TOML_BLOCKS if 'dataset = "coco"' in block]
    monkeypatch.chdir(tmp_path)  # the configuration's paths are relative
    Path("run.toml").write_text(block, encoding="utf-8")
    config = load_run_config("run.toml")
    # Collated up front, 100k images with 5 captions each at 32 px would be 6 GB of floats.
    assert not config.train.collate_upfront
    files = _own_data(Path(config.data.options["root"]), config.data.options["annotations"])

    assert main(["train", "run.toml", "--steps", "2", "--no-progress"]) == 0
    checkpoint = Path(config.train.out) / "checkpoint.pt"
    assert load_checkpoint(checkpoint)["step"] == 2

    capsys.readouterr()
    argv = ["translate", "--checkpoint", str(checkpoint), "--samples", "2"]
    assert main([*argv, "--from", "image", "--to", "text", str(files[0])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"[image] {files[0]}" and len(lines) == 3


def test_training_names_an_image_size_that_differs_from_the_data(tmp_path, monkeypatch, capsys):
    [block] = [block for block in TOML_BLOCKS if 'dataset = "coco"' in block]
    monkeypatch.chdir(tmp_path)
    Path("run.toml").write_text(
        block.replace("options = {size = 32}", "options = {size = 16}"), encoding="utf-8"
    )
    config = load_run_config("run.toml")
    _own_data(Path(config.data.options["root"]), config.data.options["annotations"])

    assert main(["train", "run.toml", "--steps", "2", "--no-progress"]) != 0
    message = "coco option size ([data.options]) is 32 but the image domain's size is 16"
    assert message in capsys.readouterr().err
    assert not Path(config.train.out, "checkpoint.pt").exists()
