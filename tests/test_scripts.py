"""The example and benchmark scripts run end to end on toy sizes (they are scripts, not
package modules, and would otherwise rot unnoticed)."""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from script_support import ROOT, load_script

import flowbridge.plugins as plugins
from flowbridge.provenance import measured, source_commit, versions
from flowbridge_image import plugin as image_plugin
from flowbridge_shapes import plugin as shapes_plugin
from flowbridge_shapes.dataset import ShapesDataset
from flowbridge_shapes.metrics import attributes_kept
from flowbridge_shapes.oracle import read_images
from flowbridge_shapes.render import render
from flowbridge_text import plugin as text_plugin


def test_the_demo_rings_and_their_coverage_metric():
    demo = load_script("examples/flows_2d.py")
    generator = torch.Generator().manual_seed(0)
    modes, angle = torch.full((20_000,), 4.0), torch.full((20_000,), 0.3)
    points = demo.sample_rings(modes, angle, generator)
    radius = points.norm(dim=1)
    assert abs(radius.mean().item() - demo.RADIUS) < 0.05
    # A 2-D Gaussian puts 1 - exp(-4.5) = 98.9% of its mass within 3 standard deviations.
    near, shares = demo.mode_coverage(points, 4, 0.3)
    assert abs(near - (1 - math.exp(-4.5))) < 0.005
    assert all(abs(share - 0.25) < 0.02 for share in shares)
    # Rotated by one mode spacing, the same ring: the context must not change.
    turned = angle + 2 * math.pi / 4
    torch.testing.assert_close(demo.context_of(modes, angle), demo.context_of(modes, turned))


def test_the_demo_trains_and_writes_its_figure(tmp_path, keep_threads):
    demo = load_script("examples/flows_2d.py")
    out = tmp_path / "flows_2d.png"
    result = demo.main(["--steps", "40", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    losses = result["losses"]
    assert sum(losses[-5:]) / 5 < losses[0] - 0.3
    assert len(result["coverage"]) == 4
    for numbers in result["coverage"].values():
        assert 0 <= numbers["near_a_mode"] <= 1 and len(numbers["mode_shares"]) >= 2


def test_the_speed_benchmark_runs_on_toy_sizes(tmp_path, keep_threads):
    bench = load_script("benchmarks/flows_speed.py")
    report = bench.main(["--tiny", "--repeats", "2", "--skip-paper", "--out", str(tmp_path)])
    written = json.loads(next(tmp_path.glob("flows_speed-*-tiny.json")).read_text(encoding="utf-8"))
    assert written["peers"]["flowbridge"]["median_ms"] == report["peers"]["flowbridge"]["median_ms"]
    assert written["torch"] == torch.__version__
    # The contenders are the same flow: equal parameter counts.
    counts = {written["peers"][name]["parameters"] for name in bench.CONTENDERS}
    assert len(counts) == 1
    sizes = bench.Sizes()
    assert sum(p.numel() for p in bench.build_flowbridge(sizes).module.parameters()) == 791_040
    assert {"softplus", "sigmoid", "best_possible_nll"} <= set(written["scale_quality"])


def test_the_speed_benchmark_says_how_it_was_made_as_the_other_benchmarks_do(
    tmp_path, keep_threads
):
    # The keys of flowbridge.provenance at the top and the options beside them: compare.py
    # then tells two experiments apart, and when and how busy from both.
    bench = load_script("benchmarks/flows_speed.py")
    compare = load_script("benchmarks/compare.py")
    argv = ["--tiny", "--repeats", "2", "--skip-paper", "--skip-quality", "--threads", "1"]
    old = bench.main([*argv, "--out", str(tmp_path / "old.json")])
    new = bench.main([*argv, "--repeats", "3", "--clock", "cpu", "--out", str(tmp_path / "n.json")])
    assert set(versions()) | set(measured()) <= set(new)
    assert new["commit"] == source_commit(ROOT / "benchmarks")
    assert (new["threads"], new["clock"], new["repeats"]) == (1, "cpu", 3)
    report = compare.compare(old, new)
    made = report.split("## How the two runs were made", 1)[1].split("## Numbers", 1)[0]
    assert "| clock | wall | cpu |" in made and "| repeats | 2 | 3 |" in made
    every = report.split("## Numbers", 1)[1].split("## When they ran", 1)[0]
    assert "load_average" not in every and "cpu_count" not in every
    when = report.split("## When they ran, and how busy the machine was", 1)[1]
    assert "| date_utc |" in when and "| load_average_at_end[0] |" in when


def test_a_paper_scale_module_says_its_peak_memory_before_and_after_training():
    bench = load_script("benchmarks/flows_speed.py")
    name = next(iter(bench.paper_modules(tiny=True)))
    result = bench.measure_paper_module(name, True, batch=4, steps=2, clock=bench.CLOCKS["wall"])
    assert 0 < result["peak_rss_before_first_step_mib"] <= result["peak_rss_mib"]
    assert result["peak_minus_before_mib"] >= 0


def test_the_quality_dataset_entropy_matches_a_monte_carlo_estimate():
    bench = load_script("benchmarks/flows_speed.py")
    # E[log std] of the wide half is log(1/2): checked against the data's own construction.
    x, context = bench.quality_dataset(200_000, torch.Generator().manual_seed(0))
    wide_std = torch.exp(context / 2) / 2
    entropy = 4 * (0.5 * math.log(2 * math.pi * math.e) + math.log(0.05))
    entropy += (0.5 * math.log(2 * math.pi * math.e) + wide_std.log()).sum(dim=1).mean().item()
    assert abs(entropy - bench.QUALITY_ENTROPY) < 0.02


def test_the_autoencoder_benchmark_names_each_misreading_by_size():
    bench = load_script("benchmarks/image_autoencoder.py")
    keys = ("shape", "color", "size", "horizontal", "vertical")
    truth = [
        dict(zip(keys, values, strict=True))
        for values in (
            ("diamond", "red", "small", "left", "top"),
            ("square", "blue", "large", "right", "top"),
            ("circle", "green", "large", "left", "bottom"),
        )
    ]
    originals = render(truth, np.random.default_rng(0))
    # The first drawn round, the second blank gray (nothing to read), the third kept.
    rounded = render([{**truth[0], "shape": "circle"}], np.random.default_rng(0))
    rebuilt = torch.cat((rounded, torch.full_like(originals[1:2], 0.3), originals[2:]))
    meta = [{"attributes": attributes} for attributes in truth]
    truths, reads = read_images(originals), read_images(rebuilt)
    assert bench.misreadings(truths, reads, meta) == {
        "small: shape diamond->circle": 1,
        "large: unreadable": 1,
    }
    assert bench.misreadings(truths, truths, meta) == {}
    # An original the oracle cannot read is no reconstruction's fault, but is not kept either.
    assert attributes_kept([None, *truths[1:]], truths) == pytest.approx(2 / 3)
    assert bench.misreadings([None, *truths[1:]], truths, meta) == {"small: original unreadable": 1}


def test_the_autoencoder_benchmark_runs_on_toy_sizes(tmp_path, keep_threads):
    bench = load_script("benchmarks/image_autoencoder.py")
    out = tmp_path / "ae.json"
    argv = ["--steps", "4", "--at", "2,4", "--train-size", "20", "--inputs", "6", "--hidden", "8"]
    argv += ["--edge-weight", "2"]
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        report = bench.main([*argv, "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text(encoding="utf-8")) == report
    assert [point["step"] for point in report["points"]] == [2, 4]
    for point in report["points"]:
        assert 0 <= point["attributes_kept"] <= 1 and point["mse"] > 0
        # Every image is either kept whole or has at least one misreading counted.
        assert sum(point["misread"].values()) >= round(6 * (1 - point["attributes_kept"]))
    assert report["points"][0]["train_seconds"] <= report["points"][1]["train_seconds"]
    assert report["settings"]["latent"] == [16, 8] and report["settings"]["hidden"] == 8
    assert report["settings"]["edge_weight"] == 2


@pytest.mark.parametrize("at", ["5", "0,2", "two"])
def test_the_autoencoder_benchmark_refuses_steps_it_will_not_reach(at, capsys):
    bench = load_script("benchmarks/image_autoencoder.py")
    with pytest.raises(SystemExit):
        bench.main(["--steps", "4", "--at", at])
    assert "--at" in capsys.readouterr().err


def test_the_quality_benchmark_compares_each_extra_sweep_with_its_variant_and_references():
    bench = load_script("benchmarks/quality.py")

    def curve(accuracy):
        return [
            {"temperature": t, "unstated_entropy": e, "accuracy": accuracy - e / 4}
            for t, e in ((0.5, 0.6), (1.0, 0.8))
        ]

    lnfmm = {
        "text_to_image_tradeoff": curve(0.9),
        "component_tradeoff": {"component_temperature": 1.0, "curve": curve(0.92)},
        "candidates_tradeoff": {"candidates": 3, "curve": curve(0.95)},
    }
    read = bench._equal_diversity(
        {"lnfmm": lnfmm, "gaussian": {"text_to_image_tradeoff": curve(0.6)}}
    )
    assert set(read) == {
        "lnfmm_vs_gaussian",
        "lnfmm@tc_vs_lnfmm",
        "lnfmm@tc_vs_gaussian",
        "lnfmm@c3_vs_lnfmm",
        "lnfmm@c3_vs_gaussian",
    }
    assert read["lnfmm@c3_vs_lnfmm"]["mean"] == pytest.approx(0.05)
    assert read["lnfmm@c3_vs_gaussian"]["mean"] == pytest.approx(0.35)
    assert read["lnfmm@tc_vs_lnfmm"]["mean"] == pytest.approx(0.02)


def _strict(text):
    """JSON as a strict parser reads it: a bare NaN or Infinity is an error."""

    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def _no_training(config, *args, **kwargs):
    raise AssertionError(f"trained {config.train.out} before the arguments were checked")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        # Every name it takes is listed, its own semi-supervised settings included.
        (["--variants", "deterministic,lnfmmm"], "'lnfmmm'; choose from: lnfmm, lnfmm-single"),
        (["--variants", "deterministic,lnfmmm"], "paired-10, semi-10, semi-10-warm, semi-10-back"),
        (["--variants", "deterministic,"], "--variants has an empty entry"),
        (["--variants", "paired-10,paired-10"], "--variants names 'paired-10' twice"),
        (["--temperatures=-1,1"], "--temperatures must be finite numbers >= 0"),
        (["--temperatures", "nan,1"], "--temperatures must be finite numbers >= 0"),
        (["--temperatures", "inf,1"], "--temperatures must be finite numbers >= 0"),
        (["--temperatures", "1.0,abc"], "--temperatures takes a comma list of numbers"),
        (["--temperatures", "1,1,0.5"], "--temperatures names a temperature twice"),
        (
            ["--steps", "3", "--at", "2,50"],
            "--at steps must lie in 1..3 (the steps trained), got [50]",
        ),
        (["--steps", "3", "--at", "0"], "--at steps must lie in 1..3"),
        (["--samples", "1"], "--samples must be at least 2"),
        (["--inputs", "-3"], "--inputs must be at least 1, got -3"),
        (["--jobs", "3"], "--jobs must be between 1 and --threads (2)"),
        (["--jobs", "0"], "--jobs must be between 1 and --threads (2)"),
        (["--jobs", "2", "--seconds", "60"], "--jobs trains variants side by side: use it with"),
    ],
)
def test_the_quality_benchmark_refuses_bad_arguments_before_any_training(
    argv, message, tmp_path, monkeypatch, capsys
):
    bench = load_script("benchmarks/quality.py")
    monkeypatch.setattr(bench, "train", _no_training)
    with pytest.raises(SystemExit) as exit_info:
        bench.main([*argv, "--out", str(tmp_path / "q.json")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "q.json").exists()


def test_the_quality_benchmark_refuses_an_out_it_cannot_write(tmp_path, monkeypatch, capsys):
    bench = load_script("benchmarks/quality.py")
    monkeypatch.setattr(bench, "train", _no_training)
    (tmp_path / "afile").write_text("mine", encoding="utf-8")
    for out, message in [
        (tmp_path, "is a directory; name the JSON file to write"),
        (tmp_path / "afile" / "q.json", "is a file, not a directory"),
    ]:
        with pytest.raises(SystemExit):
            bench.main(["--out", str(out)])
        assert message in capsys.readouterr().err


def test_the_quality_benchmark_marks_a_run_that_stopped_early(tmp_path, monkeypatch, keep_threads):
    bench = load_script("benchmarks/quality.py")
    # A test split of 5 images: more inputs asked for than it has.
    monkeypatch.setattr(bench, "ShapesDataset", functools.partial(ShapesDataset, test_size=5))
    train = bench.train

    def interrupted(config, *args, **kwargs):
        if "-gaussian-" in config.train.out:
            raise KeyboardInterrupt
        return train(config, *args, **kwargs)

    out = tmp_path / "q.json"
    argv = ["--steps", "2", "--train-size", "40", "--inputs", "100", "--samples", "2"]
    argv += ["--temperatures", "", "--threads", "1", "--out", str(out)]
    monkeypatch.setattr(bench, "train", interrupted)
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        with pytest.raises(SystemExit) as stop:
            bench.main([*argv, "--variants", "deterministic,gaussian"])
        # One line that says what is kept, not training's note offering to resume from a
        # run directory already deleted.
        assert str(stop.value.code) == (
            f"quality.py: interrupted while training gaussian; {out} holds deterministic with "
            "complete: false. Runs do not resume: train the rest again with --variants "
            "gaussian and another --out"
        )
        partial = _strict(out.read_text(encoding="utf-8"))
        assert partial["complete"] is False
        assert partial["requested_variants"] == ["deterministic", "gaussian"]
        assert list(partial["variants"]) == ["deterministic"]
        assert (partial["inputs"], partial["inputs_asked"]) == (5, 100)
        assert partial["variants"]["deterministic"]["inputs"] == 5
        assert partial["commit"] == source_commit(bench.__file__) and partial["steps"] == 2
        # When and where: the timings, and the steps a --seconds run reaches, depend on them.
        assert partial["date_utc"] and partial["cpu_count"] == os.cpu_count()
        # The held-out split is scored too, against its own ceilings, and image->text by the
        # captioning literature's diversity metrics next to the data's.
        assert partial["held_out_inputs"] == 100
        held_out = partial["variants"]["deterministic"]["held_out"]
        assert {"image_to_text", "text_to_image", "summary"} <= set(held_out)
        assert partial["held_out_ceiling"]["text_to_image"]["accuracy"] >= 0.99
        for i2t in (
            partial["variants"]["deterministic"]["image_to_text"],
            partial["ceiling"]["image_to_text"],
        ):
            assert {"div_1", "div_2", "mbleu_4", "unique", "novel", "self_cider"} <= set(i2t)

        # Trained for a time instead: the steps each variant reached, and no made-up cap.
        monkeypatch.setattr(bench, "train", train)
        argv[:2] = ["--seconds", "0.5"]
        report = bench.main([*argv, "--variants", "deterministic"])
    written = _strict(out.read_text(encoding="utf-8"))
    assert written["complete"] is True and report["complete"] is True
    assert written["steps"] is None
    assert written["variants"]["deterministic"]["steps"] >= 1


def _without_timings(report):
    """A quality JSON without what depends on the machine and the threads: its timings, when
    it ran and how busy the machine was, and how many threads and jobs trained each variant."""
    if isinstance(report, dict):
        skip = {"train_seconds", "total_seconds", "seconds", "threads", "jobs"}
        skip |= {"date_utc", "load_average"}
        return {key: _without_timings(value) for key, value in report.items() if key not in skip}
    if isinstance(report, list):
        return [_without_timings(value) for value in report]
    return report


def test_the_quality_benchmark_trains_variants_side_by_side_to_the_same_numbers(
    tmp_path, keep_threads
):
    """``--jobs 2``: two variants at once, one thread each, score exactly as one after the
    other on one thread. A subprocess: the jobs' spawned processes import the script's
    function by the name it has when run as a script, which a test's import of it is not."""
    argv = ["--variants", "deterministic,gaussian", "--steps", "3", "--train-size", "40"]
    argv += ["--inputs", "5", "--samples", "2", "--temperatures", "0.5,1"]
    together = tmp_path / "together.json"
    warnings = ["-W", "error::DeprecationWarning", "-W", "error::FutureWarning"]
    # The suite loads no installed plugin by itself; the script loads these three.
    environment = {**os.environ, "FLOWBRIDGE_LOAD_PLUGINS": "image,text,shapes"}
    ran = subprocess.run(
        [sys.executable, *warnings, str(ROOT / "benchmarks/quality.py"), *argv]
        + ["--threads", "2", "--jobs", "2", "--out", str(together)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    bench = load_script("benchmarks/quality.py")
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        bench.main([*argv, "--threads", "1", "--out", str(tmp_path / "alone.json")])
    # Both as written: a model of 3 steps may draw no readable image, whose entropy is NaN in
    # the returned report and null in the file (and NaN equals nothing, not even itself).
    alone = _strict((tmp_path / "alone.json").read_text(encoding="utf-8"))
    side_by_side = _strict(together.read_text(encoding="utf-8"))
    assert side_by_side["complete"] and side_by_side["jobs"] == 2
    assert [v["threads"] for v in side_by_side["variants"].values()] == [1, 1]
    assert "text_to_image_tradeoff" in side_by_side["variants"]["gaussian"]
    assert _without_timings(side_by_side) == _without_timings(alone)


def _attributes(**changes):
    base = {"shape": "circle", "color": "red", "size": "large", "horizontal": "left"}
    return {**base, "vertical": "top", **changes}


def test_the_residual_diagnostics_probe_and_prior_mass_on_hand_made_codes():
    bench = load_script("benchmarks/residual_diagnostics.py")
    bank = torch.tensor([[0.0], [0.1], [0.2], [10.0], [10.1], [10.2]])
    labels = [_attributes()] * 3 + [_attributes(shape="square")] * 3
    queries = torch.tensor([[0.05], [10.05], [5.3]])  # the last lies nearer the squares
    truths = [_attributes(), _attributes(shape="square"), _attributes()]
    probe = bench.knn_probe(bank, labels, queries, truths, k=3)
    assert probe["shape"] == pytest.approx(2 / 3) and probe["color"] == 1.0

    rows = [_attributes(), _attributes(shape="square"), _attributes(color="blue")]
    log_prob = torch.tensor([[0.5, 0.25, 0.25], [0.2, 0.2, 0.6]]).log()
    mass = bench.prior_mass(log_prob, [{"shape": "circle"}, {"color": "red"}], rows)
    assert mass["fitting"] == pytest.approx((0.75 + 0.4) / 2)
    assert mass["fitting rows"] == pytest.approx(2 / 3)
    assert mass["shape"] == pytest.approx(0.25) and mass["color"] == pytest.approx(0.6)
    assert math.isnan(mass["size"])


def test_the_residual_diagnostics_critic_weights_on_hand_made_codes():
    bench = load_script("benchmarks/residual_diagnostics.py")
    caption = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    carried = torch.tensor([[3.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # cosines 1, 0, -1 to row 0
    weights = bench.critic_weights(caption, carried, temperature=0.5, sharpness=1.0)
    by_hand = torch.tensor([[2.0, 0.0, -2.0], [0.0, 2.0, 0.0]]).softmax(dim=1)
    torch.testing.assert_close(weights, by_hand)
    sharper = bench.critic_weights(caption, carried, temperature=0.5, sharpness=2.0)
    torch.testing.assert_close(sharper, (2 * by_hand.log()).softmax(dim=1))
    assert sharper[0, 0] > weights[0, 0] and sharper[1, 1] > weights[1, 1]


def test_the_residual_diagnostics_conflicts_on_hand_made_rows():
    bench = load_script("benchmarks/residual_diagnostics.py")
    bank = [
        _attributes(),
        _attributes(shape="square"),
        _attributes(shape="square", color="blue"),
        _attributes(shape="diamond"),
    ]
    claims = [{"shape": "circle", "color": "red"}, {"color": "red"}, {"shape": "square"}]
    rows = bench.conflicting_rows(claims, bank, "shape", 4, np.random.default_rng(0))
    # Caption 0: another shape, red (rows 1 and 3; row 2 breaks the colour claim); caption 1
    # does not state the shape; caption 2: any row but the squares.
    assert set(rows) == {0, 2}
    assert set(rows[0].tolist()) <= {1, 3} and set(rows[2].tolist()) <= {0, 3}
    assert len(rows[0]) == 4  # fewer rows than samples: drawn with replacement
    two = bench.conflicting_rows(claims, bank, "shape", 2, np.random.default_rng(0))
    assert sorted(two[0].tolist()) == [1, 3]  # as many as samples: each once
    # A blue square fails caption 0 on the colour, which is not the attribute in question.
    assert bench.conflicting_rows(claims[:1], bank[2:3], "shape", 2, np.random.default_rng(0)) == {}

    stated = ["circle", "circle", "circle", "square"]
    residual = ["square", "diamond", "square", "circle"]
    readings = ["circle", "diamond", None, "triangle"]
    won = bench.winners(readings, stated, residual)
    assert won == {"caption": pytest.approx(1 / 3), "residual": pytest.approx(1 / 3), "images": 3}
    assert math.isnan(bench.winners([None], ["circle"], ["square"])["caption"])


def test_the_residual_diagnostics_tally_what_captions_leave_open_by_hand():
    bench = load_script("benchmarks/residual_diagnostics.py")
    truths = [_attributes(), _attributes(shape="square"), _attributes(color="blue")]
    claims = [{"color": "red"}, {"color": "red", "shape": "square"}, {"shape": "circle"}]
    readings = [_attributes(), None, _attributes(shape=None)]
    report = bench.open_attributes(readings, claims, truths)
    # The shape is open in row 0 only (drawn right); the colour in row 2 (red where the image
    # is blue), the size in all three: right, unreadable, undecided shape but right size.
    assert report["shape"] == {"right": 1.0, "undecided": 0.0, "captions": 1}
    assert report["color"] == {"right": 0.0, "undecided": 0.0, "captions": 1}
    assert report["size"] == {
        "right": pytest.approx(2 / 3),
        "undecided": pytest.approx(1 / 3),
        "captions": 3,
    }
    nothing_open = bench.open_attributes([None], [_attributes()], [_attributes()])
    assert math.isnan(nothing_open["shape"]["right"]) and nothing_open["shape"]["captions"] == 0


def test_the_residual_diagnostics_run_on_toy_sizes(tmp_path, keep_threads):
    bench = load_script("benchmarks/residual_diagnostics.py")
    out = tmp_path / "diagnostics.json"
    argv = ["--steps", "3", "--train-size", "400", "--inputs", "3", "--samples", "2"]
    with plugins.isolated(image_plugin, text_plugin, shapes_plugin):
        report = bench.main([*argv, "--threads", "1", "--out", str(out)])
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["prior_mass"]["fitting"] == report["prior_mass"]["fitting"]
    assert report["ceiling"]["accuracy"] == 1.0 and report["bank"] > 300
    assert set(report["critic_exemplars"]) == {"k=1", "k=2"}
    for part in ("text_to_image", "fitting_residuals"):
        assert set(report[part]["by_attribute"]) == {
            "shape",
            "color",
            "size",
            "horizontal",
            "vertical",
        }
    assert 0 <= report["prior_mass"]["fitting"] <= 1
    assert set(report["probe"]) == {"residual", "shared"}
    assert set(report["conflicts"]) == set(report["probe"]["residual"])
    assert set(report["own_residual"]) == set(report["probe"]["residual"])
    assert sum(row["captions"] for row in report["own_residual"].values()) > 0
    for won in report["conflicts"].values():
        assert won["images"] == 0 or 0 <= won["caption"] + won["residual"] <= 1
