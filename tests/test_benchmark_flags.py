"""The benchmark and example scripts check their flags before minutes of work, not after, write
where ``--out`` says, show the defaults in ``--help``, and name a child process's own error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from script_support import load_script


def _refused(main, argv: list[str], capsys) -> str:
    """The usage error ``main(argv)`` stops with (argparse exits with status 2)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("script", "defaults"),
    [
        ("benchmarks/bridge_speed.py", ["(default: 8)", "bridge_speed.json)"]),
        ("benchmarks/flows_speed.py", ["(default: 30)", "(default: 1000, or 20 with --tiny)"]),
        ("examples/flows_2d.py", ["(default: 512)", "(default: out/flows_2d.png)"]),
    ],
)
def test_help_shows_the_defaults(script, defaults, capsys):
    with pytest.raises(SystemExit):
        load_script(script).main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for default in defaults:
        assert default in help_text


# --- bridge_speed.py ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--steps", "4"], "--steps must be >= 5 (2 warm-up steps are not timed"),
        (["--threads", "0"], "argument --threads: must be >= 1"),
        (["--device", "gpu"], "device must be 'cpu', 'cuda', 'cuda:N' or 'auto'"),
    ],
)
def test_bridge_speed_refuses_bad_flags_before_timing(argv, message, tmp_path, capsys):
    bench = load_script("benchmarks/bridge_speed.py")
    assert message in _refused(bench.main, [*argv, "--out", str(tmp_path / "b.json")], capsys)


def test_bridge_speed_refuses_an_out_it_cannot_write(tmp_path, capsys):
    bench = load_script("benchmarks/bridge_speed.py")
    assert "is a folder" in _refused(bench.main, ["--out", str(tmp_path)], capsys)
    (tmp_path / "file").write_text("", encoding="utf-8")
    out = tmp_path / "file" / "b.json"
    assert "is a file, not a directory" in _refused(bench.main, ["--out", str(out)], capsys)


def test_bridge_speed_writes_its_results_to_out(tmp_path, monkeypatch, keep_threads):
    bench = load_script("benchmarks/bridge_speed.py")
    # The measurements themselves take minutes; what is checked here is where they go.
    monkeypatch.setattr(bench, "measure_translation", lambda **_: {"speedup": 2.0})
    monkeypatch.setattr(bench, "measure_in_child", lambda scale, *_: {"scale": scale})
    out = tmp_path / "new" / "bridge.json"
    results = bench.main(["--skip-paper", "--steps", "6", "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(
        json.dumps(results)
    )  # tuples as lists
    assert results["training"] == [{"scale": "small"}] and results["steps"] == 6
    assert results["date_utc"] and results["threads"] == 1


def test_bridge_speed_shows_the_error_of_a_failed_child():
    bench = load_script("benchmarks/bridge_speed.py")
    with pytest.raises(SystemExit) as stop:
        bench.measure_in_child("no-such-scale", 5, "cpu", 1)
    message = str(stop.value.code)
    assert message.startswith("the no-such-scale-scale training measurement failed")
    assert "KeyError: 'no-such-scale'" in message  # the child's traceback, not just its status


# --- flows_speed.py -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--repeats", "1", "--repeats must be >= 2"),
        ("--repeats", "0", "argument --repeats: must be >= 1"),
        ("--quality-seeds", "0", "argument --quality-seeds: must be >= 1"),
        ("--quality-steps", "0", "argument --quality-steps: must be >= 1"),
        ("--paper-steps", "0", "argument --paper-steps: must be >= 1"),
        ("--paper-batch", "-1", "argument --paper-batch: must be >= 1"),
        ("--threads", "0", "argument --threads: must be >= 1"),
    ],
)
def test_flows_speed_refuses_bad_counts_before_timing(flag, value, message, tmp_path, capsys):
    bench = load_script("benchmarks/flows_speed.py")
    argv = ["--tiny", "--skip-paper", "--skip-quality", "--out", str(tmp_path), flag, value]
    assert message in _refused(bench.main, argv, capsys)
    assert not list(tmp_path.iterdir())


def test_flows_speed_refuses_an_out_it_cannot_write(tmp_path, capsys):
    bench = load_script("benchmarks/flows_speed.py")
    (tmp_path / "taken.json").mkdir()
    (tmp_path / "file").write_text("", encoding="utf-8")
    argv = ["--tiny", "--skip-paper", "--skip-quality", "--out"]
    err = _refused(bench.main, [*argv, str(tmp_path / "taken.json")], capsys)
    assert "is a folder; name a new .json file" in err
    err = _refused(bench.main, [*argv, str(tmp_path / "file")], capsys)
    assert "file' is a file, not a folder" in err
    err = _refused(bench.main, [*argv, str(tmp_path / "file" / "x.json")], capsys)
    assert "is a file, not a directory" in err


def test_flows_speed_writes_a_json_out_as_that_file_and_keeps_explicit_quality_steps(
    tmp_path, keep_threads
):
    bench = load_script("benchmarks/flows_speed.py")
    out = tmp_path / "speed.json"
    # --tiny alone trains 20 steps; asked for 3 it trains 3 (fewer than 4: no step-0 checkpoint).
    argv = ["--tiny", "--repeats", "2", "--skip-paper", "--threads", "1", "--out", str(out)]
    report = bench.main([*argv, "--quality-steps", "3", "--quality-seeds", "1"])
    assert out.is_file()
    assert json.loads(out.read_text(encoding="utf-8"), parse_constant=pytest.fail) == json.loads(
        json.dumps(report)
    )
    quality = report["scale_quality"]
    assert "3 Adam steps" in quality["setup"]
    assert list(quality["softplus"]["test_nll_at_steps"]) == ["1", "3"]
    assert quality["softplus"]["stdev"] is None  # one seed: no spread, and no NaN in the JSON


def test_flows_speed_still_names_its_file_in_a_folder_out():
    bench = load_script("benchmarks/flows_speed.py")
    folder = Path("results")
    path = bench.output_path(folder, "20260101T000000Z", "2threads-wall")
    assert path == folder / "flows_speed-20260101T000000Z-2threads-wall.json"
    assert bench.output_path(Path("x.json"), "stamp", "mode") == Path("x.json")
    assert bench.parse_args(["--tiny", "--out", "x.json"]).quality_steps == 20
    assert bench.parse_args(["--out", "x.json"]).quality_steps == 1000


# --- examples/flows_2d.py -------------------------------------------------------------------


@pytest.fixture
def flows_2d(monkeypatch):
    """The example, with training replaced by a failure: a refusal must come before it."""
    demo = load_script("examples/flows_2d.py")

    def train(*_):
        raise AssertionError("training started before the flags were checked")

    monkeypatch.setattr(demo, "train", train)
    return demo


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--batch", "0"], "argument --batch: must be >= 1, got 0"),
        (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["--threads", "0"], "argument --threads: must be >= 1, got 0"),
    ],
)
def test_flows_2d_refuses_bad_counts_before_training(flows_2d, argv, message, tmp_path, capsys):
    out = str(tmp_path / "f.png")
    assert message in _refused(flows_2d.main, [*argv, "--out", out], capsys)


def test_flows_2d_refuses_an_out_it_cannot_write_before_training(flows_2d, tmp_path, capsys):
    err = _refused(flows_2d.main, ["--out", str(tmp_path)], capsys)
    assert f"is a folder; name the PNG, e.g. {str(tmp_path / 'flows_2d.png')!r}" in err
    (tmp_path / "file").write_text("", encoding="utf-8")
    err = _refused(flows_2d.main, ["--out", str(tmp_path / "file" / "f.png")], capsys)
    assert "is a file, not a directory" in err


# --- image_autoencoder.py, residual_diagnostics.py ------------------------------------------


def _no_data(*_, **__):
    raise AssertionError("the data were built before the flags were checked")


@pytest.mark.parametrize(
    ("script", "argv", "message"),
    [
        ("image_autoencoder", ["--threads", "0"], "argument --threads: must be >= 1, got 0"),
        ("residual_diagnostics", ["--inputs", "0"], "argument --inputs: must be >= 1, got 0"),
        # quality.py's semi-supervised settings are no testbed variant: refused by name.
        ("residual_diagnostics", ["--variant", "paired-10"], "invalid choice: 'paired-10'"),
        ("residual_diagnostics", ["--checkpoint", "missing.pt"], "'missing.pt' does not exist"),
    ],
)
def test_the_testbed_benchmarks_refuse_bad_flags_before_the_data(
    script, argv, message, tmp_path, monkeypatch, capsys
):
    bench = load_script(f"benchmarks/{script}.py")
    monkeypatch.setattr(bench, "ShapesDataset", _no_data)
    monkeypatch.chdir(tmp_path)
    assert message in _refused(bench.main, [*argv, "--out", "r.json"], capsys)


@pytest.mark.parametrize("script", ["image_autoencoder", "residual_diagnostics"])
def test_the_testbed_benchmarks_refuse_an_out_they_cannot_write_before_training(
    script, tmp_path, monkeypatch, capsys
):
    # The JSON was written after minutes of training: a folder named by mistake lost them.
    bench = load_script(f"benchmarks/{script}.py")
    monkeypatch.setattr(bench, "ShapesDataset", _no_data)
    assert "is a folder, not a JSON file" in _refused(bench.main, ["--out", str(tmp_path)], capsys)
    (tmp_path / "file").write_text("", encoding="utf-8")
    out = str(tmp_path / "file" / "r.json")
    assert "is a file, not a directory" in _refused(bench.main, ["--out", out], capsys)
