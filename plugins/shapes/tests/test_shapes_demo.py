"""The demo end to end at toy scale: it trains every variant and writes a complete report."""

import functools
import json
import math
import multiprocessing
import shutil

import pytest
import torch

import flowbridge.plugins as plugins
from flowbridge import train
from flowbridge.checkpoint import load_checkpoint
from flowbridge.provenance import source_commit
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import demo
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.demo import main
from flowbridge_shapes.experiment import TEMPERATURES
from flowbridge_text import plugin as text_plugin


@pytest.fixture
def registered():
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        yield


def _strict(text):
    """JSON as a strict parser reads it: a bare NaN or Infinity is an error."""

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_demo_writes_a_report_a_person_can_read(tmp_path, registered, capsys):
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
    # What it prints reads on Windows too, whose pipes and files are cp1252 (the table's
    # arrows are not in it).
    printed = capsys.readouterr().out
    assert "| model | image->text accuracy |" in printed
    printed.encode("cp1252")
    report = (out / "report.md").read_text(encoding="utf-8")
    pictures = ("text_to_image", "image_inputs", "reconstructions", "loss_curves", "tradeoff")
    for name in (f"{picture}.png" for picture in pictures):
        assert (out / name).stat().st_size > 0
        assert f"({name})" in report
    # The same page for a browser: the table rendered, the images linked by name.
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<table>" in html
    for name in ("text_to_image.png", "loss_curves.png"):
        assert f'src="{name}"' in html
    metrics = _strict((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["models"]) == {"lnfmm", "gaussian", "deterministic"}
    # The settings and the code that made the numbers, so that two runs can be told apart: the
    # commit of the tree the demo's code lives in (None where it is an installed wheel).
    assert metrics["commit"] == source_commit(demo.__file__)
    assert metrics["torch"] == torch.__version__
    settings = {"seed": 0, "steps": 3, "train_size": 40, "inputs": 4, "samples": 3}
    assert {key: metrics[key] for key in settings} == settings
    assert metrics["variants"] == ["lnfmm", "gaussian", "deterministic"]
    assert metrics["threads"] == 1 and metrics["device"] == "cpu"
    assert "scored on 4 test images and" in report
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
    # The captioning literature's diversity metrics, the data's own beside them.
    assert "| model | Div-1 ↑ | Div-2 ↑ | mBLEU-4 ↓ | unique ↑ | novel ↑ | self-CIDEr ↑ |" in report
    for i2t in [m["image_to_text"] for m in metrics["models"].values()] + [
        metrics["ceiling"]["image_to_text"]
    ]:
        assert 0 <= i2t["self_cider"] <= 1 and 0 <= i2t["novel"] <= 1
        assert f"| {i2t['div_1']:.3f} | {i2t['div_2']:.3f} | {i2t['mbleu_4']:.3f} |" in report
    # Generalisation: every model scored on the held-out split too, against its own ceiling.
    assert "**Generalisation**" in report
    assert set(metrics["held_out"]) == set(metrics["models"])
    held_out = ShapesDataset(train_size=40).held_out
    novel_ceiling = metrics["held_out_ceiling"]["text_to_image"]
    assert novel_ceiling["accuracy"] >= 0.99
    assert novel_ceiling != metrics["ceiling"]["text_to_image"]
    for model in metrics["held_out"].values():
        assert 0 <= model["image_to_text"]["accuracy"] <= 1
        assert f"| {model['text_to_image']['accuracy']:.3f} |" in report
    # Scored the way the test split is (experiment.scoring): its caption diversity too.
    for i2t in [m["image_to_text"] for m in metrics["held_out"].values()] + [
        metrics["held_out_ceiling"]["image_to_text"]
    ]:
        assert 0 <= i2t["novel"] <= 1 and 0 <= i2t["self_cider"] <= 1
    assert all(" ".join(reversed(pair)) in report for pair in held_out)
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


def _interrupt_when_training(variant):
    """demo.train, interrupted (as by Ctrl-C) when it starts to train ``variant``."""

    def interrupted(config, *args, **kwargs):
        if config.train.out.endswith(f"{variant}.partial"):
            raise KeyboardInterrupt
        return train(config, *args, **kwargs)

    return interrupted


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
    report = (out / "report.md").read_text(encoding="utf-8")
    (out / "notes.txt").write_text("mine", encoding="utf-8")

    # Interrupted before any model is trained again: the earlier demo stays whole.
    monkeypatch.setattr(demo, "train", _interrupt_when_training("lnfmm"))
    assert main([*argv, "--seed", "1"]) == 130
    assert "before any model was replaced" in capsys.readouterr().err
    assert (out / "report.md").read_text(encoding="utf-8") == report

    # Interrupted while the Gaussian prior trains again: its earlier run stays as it was, but
    # the earlier report, which no longer describes runs/lnfmm, is gone, and the message says so.
    monkeypatch.setattr(demo, "train", _interrupt_when_training("gaussian"))
    assert main([*argv, "--seed", "1"]) == 130
    message = capsys.readouterr().err
    assert "holds this run's runs/lnfmm; runs/gaussian still the earlier demo's" in message
    assert "and no report" in message
    runs = out / "runs"
    assert (runs / "gaussian" / "checkpoint.pt").read_bytes() == first["gaussian"]
    assert (runs / "lnfmm" / "checkpoint.pt").read_bytes() != first["lnfmm"]  # seed 1's
    for name in demo.REPORT:
        assert not (out / name).exists()
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"  # not the demo's to remove

    # And once more, uninterrupted and with LNFMM alone: its run replaced, the Gaussian
    # prior's (no model of this report) removed, nothing partial left behind.
    monkeypatch.setattr(demo, "train", train)
    before = (runs / "lnfmm").stat().st_ino
    assert main([*argv[:-1], "lnfmm"]) == 0
    assert sorted(path.name for path in runs.iterdir()) == ["lnfmm"]
    assert (runs / "lnfmm").stat().st_ino != before
    assert load_checkpoint(runs / "lnfmm" / "checkpoint.pt")["step"] == 2
    assert (out / "notes.txt").read_text(encoding="utf-8") == "mine"


def test_the_demo_takes_any_testbed_variant_and_reports_the_inputs_it_scored(
    tmp_path, registered, monkeypatch
):
    # A test split of 5 images: more inputs asked for than it has.
    monkeypatch.setattr(demo, "ShapesDataset", functools.partial(ShapesDataset, test_size=5))
    out = tmp_path / "out"
    argv = ["--out", str(out), "--steps", "2", "--inputs", "100", "--samples", "2"]
    assert main([*argv, "--train-size", "40", "--threads", "1", "--variants", "standard"]) == 0
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# flowbridge demo: standard on the shapes testbed")
    assert "1 model trained" in report and "| standard |" in report
    assert "scored on 5 test images (of 100 asked: all the test split has)" in report
    metrics = _strict((out / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["inputs"], metrics["inputs_asked"]) == (5, 100)
    assert metrics["models"]["standard"]["inputs"] == 5
    assert "nan" not in report.lower()


def _numbers(metrics):
    """The models' numbers in a demo's metrics.json, without the times."""
    if isinstance(metrics, dict):
        return {k: _numbers(v) for k, v in metrics.items() if k not in ("seconds", "total_seconds")}
    return metrics


def test_models_trained_side_by_side_score_as_one_after_another(
    tmp_path, registered, keep_threads, capsys, sigterm_when
):
    argv = ["--steps", "2", "--inputs", "3", "--samples", "2", "--train-size", "30"]
    argv += ["--variants", "lnfmm,gaussian"]
    alone = tmp_path / "alone"
    assert main([*argv, "--out", str(alone), "--threads", "1"]) == 0

    # Stopped (SIGTERM, as by `kill`) while the two train in their processes: nothing of the
    # earlier demo is replaced, and no process is left behind.
    out = tmp_path / "out"
    shutil.copytree(alone, out)
    report = (out / "report.md").read_text(encoding="utf-8")

    sigterm_when((out / "runs" / "lnfmm.partial").exists)
    assert main([*argv[2:], "--steps", "500", "--out", str(out), "--threads", "2"]) == 130
    assert "before any model was replaced" in capsys.readouterr().err
    assert (out / "report.md").read_text(encoding="utf-8") == report
    assert not multiprocessing.active_children()

    # Two processes of one thread each: the numbers of one model after another, on one thread.
    assert main([*argv, "--out", str(out), "--threads", "2"]) == 0
    assert "side by side, 1 thread each, 2 steps" in capsys.readouterr().out
    first, second = (
        _strict((path / "metrics.json").read_text(encoding="utf-8")) for path in (alone, out)
    )
    assert (first["jobs"], second["jobs"]) == (1, 2)
    for key in ("models", "held_out", "text_to_image_tradeoff", "ceiling"):
        assert _numbers(second[key]) == _numbers(first[key])
    assert "(LNFMM (conditional flow prior, mixture base) and conditional Gaussian prior " in (
        (out / "report.md").read_text(encoding="utf-8")
    )
    assert sorted(path.name for path in (out / "runs").iterdir()) == ["gaussian", "lnfmm"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--variants", "deterministic,lnfmmm"], "unknown name 'lnfmmm'; choose from: lnfmm, "),
        (["--variants", "deterministic,"], "empty entry in 'deterministic,'"),
        (["--variants", "gaussian,gaussian"], "names 'gaussian' twice"),
        (["--samples", "1"], "--samples must be at least 2"),
        (["--inputs", "-3"], "--inputs must be at least 1, got -3"),
        (["--steps", "0"], "--steps and --threads must be at least 1"),
        (["--jobs", "0"], "--jobs must be between 1 and --threads (2): each model trains"),
        (["--jobs", "2", "--threads", "1"], "--jobs must be between 1 and --threads (1)"),
    ],
)
def test_bad_arguments_are_refused_before_any_training(
    argv, message, tmp_path, registered, monkeypatch, capsys
):
    monkeypatch.setattr(demo, "train", _interrupt_when_training(""))  # must not be reached
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_out_that_is_a_file_is_refused_before_any_training(tmp_path, registered, capsys):
    (tmp_path / "afile").write_text("mine", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "afile")])
    assert exit_info.value.code == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text(encoding="utf-8") == "mine"


def test_the_help_shows_the_defaults_and_every_variant(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # one line per option: no name broken at a hyphen
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "K outputs per input (at least 2: diversity) (default: 10)" in text
    assert "(default: 200)" in text and "(default: lnfmm,gaussian,deterministic)" in text
    for name in ("lnfmm-single", "standard", "lnfmm-fade"):
        assert name in text


def test_a_number_that_could_not_be_measured_reads_n_a():
    def result(entropy):
        return {
            "image_to_text": {"accuracy": 0.5, "distinct_valid": 0.4},
            "text_to_image": {"accuracy": 0.0, "unstated_entropy": entropy},
        }

    ceiling = {
        "image_to_text": {"accuracy": 1.0, "distinct_valid": 0.5},
        "text_to_image": {"accuracy": 1.0, "unstated_entropy": 0.8},
    }
    table = demo._table({"deterministic": result(math.nan)}, ceiling, {"deterministic": 2.0}, 4)
    assert "| 0.000 | n/a | 2 s (2.0 steps/s) |" in table and "nan" not in table
    assert "| 0.400 (80% of data) |" in table
