"""benchmarks/compare.py: two result files' settings and numbers, side by side."""

from __future__ import annotations

import json

import pytest
from script_support import load_script

compare = load_script("benchmarks/compare.py")


def _run(temperatures, accuracies, **extra):
    return {
        "commit": extra.pop("commit", "aaa"),
        "torch": "2.13.0+cpu",
        "requested_variants": ["lnfmm"],
        "threads": 2,
        "variants": {
            "lnfmm": {
                "steps": extra.pop("steps", 1500),
                "summary": {"i2t_accuracy": extra.pop("i2t", 0.95), "t2i_accuracy": 0.85},
                "tradeoff": [
                    {"temperature": t, "accuracy": a}
                    for t, a in zip(temperatures, accuracies, strict=True)
                ],
            }
        },
        **extra,
    }


def _rows(report, section):
    """The table rows of one section of the report, as lists of cells."""
    text = report.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| ---")
    ][1:]  # without the header


def test_changed_numbers_are_listed_with_their_difference_and_sweeps_line_up_by_temperature():
    old = _run([0.5, 1.0], [0.94, 0.87])
    # A later run swept one temperature more, and wrote the step as a float.
    new = _run([0.5, 0.7, 1], [0.95, 0.92, 0.87], commit="bbb", steps=1800, i2t=0.95)
    report = compare.compare(old, new)
    assert _rows(report, "How the two runs were made") == [["commit", "aaa", "bbb"]]
    numbers = {row[0]: row[1:] for row in _rows(report, "Numbers")}
    assert numbers == {
        "variants.lnfmm.steps": ["1500", "1800", "+300", "+20.0%"],
        "variants.lnfmm.tradeoff[temperature=0.5].accuracy": ["0.94", "0.95", "+0.01", "+1.1%"],
    }  # temperature 1 and 1.0 are one record, unchanged; so is the summary
    lacking = _rows(report, "Numbers one file lacks (absent, or null: not measured)")
    assert lacking == [["variants.lnfmm.tradeoff[temperature=0.7].accuracy", "—", "0.92"]]

    every = {row[0] for row in _rows(compare.compare(old, new, every=True), "Numbers")}
    assert "variants.lnfmm.summary.i2t_accuracy" in every
    assert "threads" not in every  # a setting, not a measurement
    only = _rows(compare.compare(old, new, only=["tradeoff"]), "Numbers")
    assert [row[0] for row in only] == ["variants.lnfmm.tradeoff[temperature=0.5].accuracy"]
    # 1.1% is below a 5% threshold, 20% is not.
    large = _rows(compare.compare(old, new, min_change=0.05), "Numbers")
    assert [row[0] for row in large] == ["variants.lnfmm.steps"]


def test_numbers_that_are_settings_are_said_with_the_settings_whatever_the_filters():
    # Two seeds and thread counts: two experiments, not one result that moved. Filtered to
    # the summary, or to large changes, the report must still say so.
    old = _run([1.0], [0.8], seed=0)
    new = _run([1.0], [0.8], seed=1, i2t=0.5)
    new["threads"] = new["variants"]["lnfmm"]["threads"] = 1
    old["variants"]["lnfmm"]["threads"] = 2
    for filters in ({}, {"only": ["summary"]}, {"min_change": 0.9}):
        report = compare.compare(old, new, **filters)
        assert _rows(report, "How the two runs were made") == [
            ["threads", "2", "1"],
            ["variants.lnfmm.threads", "2", "1"],
            ["seed", "0", "1"],
        ]
        assert not any(row[0].endswith(("seed", "threads")) for row in _rows(report, "Numbers"))
    assert compare.is_setting("variants.lnfmm.steps") is False  # reached within --seconds


def test_nulls_zeros_and_incomplete_runs_are_said():
    old = _run([1.0], [0.8], entropy=None, zero=0, complete=False)
    new = _run([1.0], [0.8], entropy=None, zero=0.5, complete=True)
    report = compare.compare(old, new)
    assert "entropy" not in report  # null in both: measured in neither
    assert _rows(report, "Numbers") == [["zero", "0", "0.5", "+0.5", "n/a"]]
    assert _rows(report, "How the two runs were made") == [["complete", "False", "True"]]
    assert "the old file is marked incomplete" in report
    same = compare.compare(old, old)
    assert "The same in both files." in same and "No number differs." in same


def test_the_command_reads_two_files_and_refuses_what_is_not_a_result(tmp_path, capsys):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_run([1.0], [0.8])), encoding="utf-8")
    new.write_text(json.dumps(_run([1.0], [0.9])), encoding="utf-8")
    assert compare.main([str(old), str(new)]) == 0
    assert (
        "| variants.lnfmm.tradeoff[temperature=1].accuracy | 0.8 | 0.9 |" in capsys.readouterr().out
    )

    broken, array = tmp_path / "broken.json", tmp_path / "array.json"
    broken.write_text('{"steps": 3,\n "oops"}', encoding="utf-8")
    array.write_text("[1, 2]", encoding="utf-8")
    for path, message in [
        (tmp_path / "missing.json", "no such file"),
        (broken, r"is not JSON \(line 2, column"),
        (array, "holds a JSON list, not an object"),
    ]:
        with pytest.raises(SystemExit, match=message):
            compare.main([str(old), str(path)])
    # Another benchmark's file: refused, not compared as a list of everything either has.
    speed = tmp_path / "bridge_speed.json"
    speed.write_text(
        json.dumps({"commit": "aaa", "translation": {}, "training": []}), encoding="utf-8"
    )
    with pytest.raises(SystemExit, match=r"new.json was written by quality.py and .*bridge_spe"):
        compare.main([str(new), str(speed)])
    with pytest.raises(SystemExit):
        compare.main([str(old), str(new), "--min-change", "-1"])
    assert "--min-change must be a number >= 0" in capsys.readouterr().err


def test_the_examples_in_the_docstrings_hold():
    import doctest

    result = doctest.testmod(compare)
    assert result.attempted and not result.failed


def test_when_and_how_busy_come_apart_from_settings_and_results():
    # Two runs of the same experiment differ in their date and the machine's load, always:
    # neither a different experiment nor a result that moved.
    old = _run([1.0], [0.8], date_utc="2026-11-27T10:00:00+00:00", load_average=[1.0, 0.5, 0.2])
    new = _run([1.0], [0.8], date_utc="2026-11-28T10:00:00+00:00", load_average=[3.0, 0.9, 0.3])
    report = compare.compare(old, new, min_change=0.01)
    assert "The same in both files." in report and "No number differs" in report
    context = _rows(report, "When they ran, and how busy the machine was")
    assert context[0] == ["date_utc", "2026-11-27T10:00:00+00:00", "2026-11-28T10:00:00+00:00"]
    assert [row[0] for row in context[1:]] == [
        "load_average[0]",
        "load_average[1]",
        "load_average[2]",
    ]


def test_settings_below_the_top_are_settings_and_what_a_part_reached_is_a_result():
    # As the benchmarks nest them: quality.py's variant (its inputs scored, its sweeps' held
    # component temperature and candidates), bridge_speed.py's translation and training
    # records, and the demo's models (evaluate's samples, and the seconds it took).
    def run(inputs, tau_c, best_of, steps, seconds, batch):
        return {
            "requested_variants": ["lnfmm"],
            "steps": None,
            "seconds": 180.0,
            "variants": {
                "lnfmm": {
                    "steps": steps,  # reached within --seconds: a result
                    "inputs": inputs,
                    "component_tradeoff": {"component_temperature": tau_c, "curve": []},
                    "candidates_tradeoff": {"candidates": best_of, "curve": []},
                    # Two records at one temperature: matched by position, the temperature
                    # a number of each record.
                    "sweep": [{"temperature": tau_c, "accuracy": 0.5}] * 2,
                }
            },
            "translation": {"inputs": inputs, "samples": 10, "speedup": 30.0},
            "training": [{"scale": "small", "batch_size": batch, "peak_rss_mib": 400.0}],
            "models": {"lnfmm": {"samples": 10, "seconds": seconds}},
        }

    old, new = run(200, 1.0, 2, 1500, 12.5, 64), run(100, 0.5, 3, 1400, 14.0, 128)
    settings = [row[0] for row in _rows(compare.compare(old, new), "How the two runs were made")]
    assert settings == [
        "variants.lnfmm.inputs",
        "variants.lnfmm.component_tradeoff.component_temperature",
        "variants.lnfmm.candidates_tradeoff.candidates",
        "variants.lnfmm.sweep[0].temperature",
        "variants.lnfmm.sweep[1].temperature",
        "translation.inputs",
        "training[scale=small].batch_size",
    ]
    numbers = [row[0] for row in _rows(compare.compare(old, new, every=True), "Numbers")]
    assert numbers == [
        "variants.lnfmm.steps",
        "variants.lnfmm.sweep[0].accuracy",
        "variants.lnfmm.sweep[1].accuracy",
        "translation.speedup",
        "training[scale=small].peak_rss_mib",
        "models.lnfmm.seconds",  # evaluate's time: measured, unlike the top's --seconds
    ]
    assert compare.is_setting("seconds") and compare.is_setting("steps")


def test_records_are_named_by_their_step_not_by_a_number_they_measured():
    # image_autoencoder.py's points: the step comes last, after numbers that differ in every
    # record (and every run), which name nothing.
    def points(kept):
        return {
            "points": [
                {"attributes_kept": k, "mse": 0.01, "step": step, "train_seconds": 10.0 * step}
                for step, k in zip((100, 200), kept, strict=True)
            ]
        }

    report = compare.compare(points([0.5, 0.7]), points([0.6, 0.7]))
    assert [row[0] for row in _rows(report, "Numbers")] == ["points[step=100].attributes_kept"]
    assert "lacks" not in report
