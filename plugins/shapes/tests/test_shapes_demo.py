"""The demo end to end at toy scale: it trains every variant and writes a complete report."""

import json

import pytest
import torch

import flowbridge.plugins as plugins
from flowbridge import train
from flowbridge.checkpoint import load_checkpoint
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import demo
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.demo import main
from flowbridge_shapes.experiment import TEMPERATURES
from flowbridge_text import plugin as text_plugin


@pytest.fixture
def registered():
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        yield


def test_demo_writes_a_report_a_person_can_read(tmp_path, registered):
    out = tmp_path / "out"
    assert (
        main(
            [
                "--out",
                str(out),
                "--steps",
                "3",
                "--inputs",
                "4",
                "--samples",
                "3",
                "--train-size",
                "40",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    report = (out / "report.md").read_text()
    pictures = ("text_to_image", "image_inputs", "reconstructions", "loss_curves", "tradeoff")
    for name in (f"{picture}.png" for picture in pictures):
        assert (out / name).stat().st_size > 0
        assert f"({name})" in report
    # The same page for a browser: the table rendered, the images linked by name.
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html
    for name in ("text_to_image.png", "loss_curves.png"):
        assert f'src="{name}"' in html
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["models"]) == {"lnfmm", "gaussian", "deterministic"}
    for model in metrics["models"].values():
        assert 0 <= model["image_to_text"]["accuracy"] <= 1
        assert 0 <= model["text_to_image"]["accuracy"] <= 1
        # Every model's own reconstructions are scored too (they bound its translations).
        assert 0 <= model["reconstruction"]["image"]["attributes_kept"] <= 1
        assert model["reconstruction"]["image"]["mse"] > 0
        assert 0 <= model["reconstruction"]["text"]["claims_kept"] <= 1
    assert (out / "runs" / "lnfmm" / "checkpoint.pt").exists()
    assert "the data itself (ceiling)" in report
    # Each training time with its speed, which the time depends on.
    for seconds in metrics["train_seconds"].values():
        assert f"| {seconds:.0f} s ({3 / seconds:.1f} steps/s) |" in report
    # LNFMM and the Gaussian prior at equal diversity: a temperature sweep each.
    assert "At equal diversity" in report
    for curve in metrics["text_to_image_tradeoff"].values():
        assert [row["temperature"] for row in curve] == list(TEMPERATURES)


def test_an_unusable_device_is_refused_before_any_training(tmp_path, registered, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), "--device", "tpu"])
    assert exit_info.value.code == 2
    assert "device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got 'tpu'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            main(["--out", str(tmp_path / "out"), "--device", "cuda"])
        assert "torch.cuda.is_available() is False" in capsys.readouterr().err


def test_running_the_demo_again_replaces_each_run_only_once_it_is_trained(
    tmp_path, registered, monkeypatch, capsys
):
    out = tmp_path / "out"
    argv = ["--out", str(out), "--steps", "2", "--inputs", "3", "--samples", "2"]
    argv += ["--train-size", "30", "--threads", "1", "--variants", "lnfmm,gaussian"]
    assert main(argv) == 0
    first = {
        name: (out / "runs" / name / "checkpoint.pt").read_bytes() for name in ("lnfmm", "gaussian")
    }

    # Interrupted while the Gaussian prior trains again: its earlier run stays as it was.
    def interrupted(config, *args, **kwargs):
        if config.train.out.endswith("gaussian.partial"):
            raise KeyboardInterrupt
        return train(config, *args, **kwargs)

    monkeypatch.setattr(demo, "train", interrupted)
    assert main([*argv, "--seed", "1"]) == 130
    assert "keeps what an earlier complete demo wrote" in capsys.readouterr().err
    runs = out / "runs"
    assert (runs / "gaussian" / "checkpoint.pt").read_bytes() == first["gaussian"]
    assert (runs / "lnfmm" / "checkpoint.pt").read_bytes() != first["lnfmm"]  # seed 1's

    # And once more, uninterrupted: every run replaced, nothing partial left behind.
    monkeypatch.setattr(demo, "train", train)
    before = {name: (runs / name).stat().st_ino for name in first}
    assert main(argv) == 0
    assert sorted(path.name for path in runs.iterdir()) == ["gaussian", "lnfmm"]
    for name in first:
        assert (runs / name).stat().st_ino != before[name]
        assert load_checkpoint(runs / name / "checkpoint.pt")["step"] == 2
