"""Compare two result files of these benchmarks: what made each run, and which numbers moved.

    python benchmarks/compare.py OLD.json NEW.json
    python benchmarks/compare.py old/quality.json benchmarks/results/quality.json --only summary
    python benchmarks/compare.py a.json b.json --min-change 0.01 --all

Every benchmark here writes one JSON file with its numbers next to the commit, versions,
threads and settings that made them (``benchmarks/README.md``). This prints, as Markdown:

1. **What differs in how the two were made**: every entry that is not a number (commit,
   versions, device, the variants run...) and every number that is a setting (the seed,
   threads, steps, inputs... :func:`is_setting`) where the two files differ, whatever
   ``--only`` and ``--min-change`` say. Two runs that differ there are different
   experiments, not the same one at two commits. When each ran and the machine's load
   (:data:`CONTEXT`) come last, apart: they differ every run and are neither.
2. **The numbers**: one row per number whose value differs (``--all``: every number), with
   its dotted path, the two values, the difference and the relative change. A list of records
   (a temperature sweep, the ``--at`` steps) is matched by the first field, a string or a
   setting, whose values name each record once
   (``text_to_image_tradeoff[temperature=0.5].accuracy``), so a sweep with one temperature
   more still lines up; other lists by position. Numbers only one file has
   are listed apart (as are those null in one file: not measured there).

Which way is better is the reader's call (a time should fall, an accuracy rise): the sign is
new minus old.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["flatten", "is_setting", "compare", "main"]

Number = int | float

#: Numbers that are flags or sizes, not measurements, wherever they sit in the benchmarks'
#: files: at the top (quality.py's, bridge_speed.py's, residual_diagnostics.py's,
#: flows_speed.py's flags) and below it (a quality.py variant's inputs scored, threads and the
#: component temperature or candidates of its sweeps; a sweep record's temperature or step;
#: bridge_speed.py's translation inputs and samples and each scale's batch size;
#: flows_speed.py's paper-scale batch; the demo's models' samples).
SETTINGS = frozenset(
    {
        "seed",
        "threads",
        "jobs",
        "samples",
        "inputs",
        "inputs_asked",
        "held_out_inputs",
        "train_size",
        "temperatures",
        "temperature",
        "component_temperature",
        "candidates",
        "step",
        "batch_size",
        "batch",
        "repeats",
        "paper_batch",
        "paper_steps",
        "quality_steps",
        "quality_seeds",
        "bank",
        "cpu_count",
    }
)
#: Settings at a file's top only: the budget asked for. Below it the same names are what a
#: part reached or took (a quality.py variant's steps within ``--seconds``, the seconds
#: :func:`flowbridge_shapes.experiment.evaluate` took in the demo's metrics): results.
TOP_SETTINGS = frozenset({"steps", "seconds"})
#: When and on how busy a machine a file was measured (:func:`flowbridge.provenance.measured`):
#: context to read the timings by, neither a setting nor a result (they differ every run);
#: flows_speed.py, minutes long, takes the load again at its end.
CONTEXT = frozenset({"date_utc", "load_average", "load_average_at_end"})
#: Groups of settings wherever they are: image_autoencoder.py's flags, flows_speed.py's sizes.
SETTING_GROUPS = ("settings.", "peers.sizes.")


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _record_key(records: Sequence[dict]) -> str | None:
    """The first field (in the first record's order) that every record has, holding a string
    or a number that no other record repeats: what names a record of the list. A number names
    records only as a setting (a step, a temperature): a measured one (image_autoencoder.py's
    points hold theirs before their step) differs in every run, and no two would line up."""
    for field in records[0]:
        values = [record.get(field, None) for record in records]
        named = all(isinstance(v, str) or (_is_number(v) and field in SETTINGS) for v in values)
        if named and len(set(values)) == len(values):
            return field
    return None


def flatten(data: Any, path: str = "") -> dict[str, Any]:
    """``data`` as ``{dotted path: scalar}``. A list of records is keyed by
    :func:`_record_key` where one names every record, any other list by position.

    >>> rows = [{"temperature": 0.5, "acc": 0.9}, {"temperature": 1, "acc": 0.8}]
    >>> flatten({"a": {"b": 1}, "rows": rows})
    {'a.b': 1, 'rows[temperature=0.5].acc': 0.9, 'rows[temperature=1].acc': 0.8}
    >>> flatten({"load": [1.5, 1.25]})
    {'load[0]': 1.5, 'load[1]': 1.25}
    """
    if isinstance(data, dict):
        flat: dict[str, Any] = {}
        for key, value in data.items():
            flat.update(flatten(value, f"{path}.{key}" if path else str(key)))
        return flat
    if isinstance(data, list):
        key = None
        if data and all(isinstance(item, dict) and item for item in data):
            key = _record_key(data)
        flat = {}
        for index, item in enumerate(data):
            if key is None:
                flat.update(flatten(item, f"{path}[{index}]"))
            else:  # the record's name is in its path: not a number of its own
                rest = {field: value for field, value in item.items() if field != key}
                flat.update(flatten(rest, f"{path}[{key}={_label(item[key])}]"))
        return flat
    return {path: data}


def is_setting(path: str) -> bool:
    """Whether the number at ``path`` (of :func:`flatten`) says how the run was made rather
    than what it measured: a seed or a thread count that differs makes two experiments, and
    must not pass as a result that moved (nor be hidden by ``--only summary``).

    A name of :data:`SETTINGS` is a setting at any depth, one of :data:`TOP_SETTINGS` at
    the top only:

    >>> [is_setting(p) for p in ("seed", "temperatures[0]", "variants.lnfmm.threads")]
    [True, True, True]
    >>> is_setting("variants.lnfmm.candidates_tradeoff.candidates")
    True
    >>> [is_setting(p) for p in ("steps", "variants.lnfmm.steps", "models.lnfmm.seconds")]
    [True, False, False]
    >>> [is_setting(p) for p in ("residual_scale", "load_average[0]", "rows[t=0.5].acc")]
    [False, False, False]
    """
    names = re.sub(r"\[[^\]]*\]", "", path).split(".")
    return (
        names[-1] in SETTINGS
        or (len(names) == 1 and names[0] in TOP_SETTINGS)
        or path.startswith(SETTING_GROUPS)
    )


def _label(value: str | Number) -> str:
    """A record's name in a path; 1 and 1.0 (as two writers may give a step) read alike."""
    if isinstance(value, str):
        return value
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _format(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _change(old: Number, new: Number) -> tuple[str, str]:
    """The difference and the relative change, as table cells."""
    difference = new - old
    relative = f"{100 * difference / abs(old):+.1f}%" if old else ("n/a" if new else "")
    if isinstance(difference, int):
        return f"{difference:+d}", relative
    return f"{difference:+.4g}", relative


def _changed_enough(old: Number, new: Number, min_change: float) -> bool:
    if old == new or (isinstance(old, float) and math.isnan(old) and math.isnan(new)):
        return False
    if old == 0:
        return True
    return abs(new - old) / abs(old) >= min_change


def compare(
    old: dict[str, Any],
    new: dict[str, Any],
    only: Sequence[str] = (),
    min_change: float = 0.0,
    every: bool = False,
) -> str:
    """The Markdown report of ``new`` against ``old`` (both as the benchmarks wrote them).

    Args:
        only: keep the numbers whose path contains one of these strings (all when empty).
        min_change: hide numbers whose relative change is below this (0.01: 1%).
        every: list unchanged numbers too.
    """
    flat_old, flat_new = flatten(old), flatten(new)
    paths = list(dict.fromkeys([*flat_old, *flat_new]))
    settings, numbers, one_sided, context = [], [], [], []
    for path in paths:
        a, b = flat_old.get(path), flat_new.get(path)
        if a is None and b is None:  # null in both: measured in neither
            continue
        if path.split("[", 1)[0] in CONTEXT:
            context.append(f"| {path} | {_format(a)} | {_format(b)} |")
            continue
        numeric = (a is None or _is_number(a)) and (b is None or _is_number(b))
        if not numeric or is_setting(path):
            if a != b:
                settings.append(f"| {path} | {_format(a)} | {_format(b)} |")
            continue
        if only and not any(part in path for part in only):
            continue
        if a is None or b is None:
            one_sided.append(f"| {path} | {_format(a)} | {_format(b)} |")
        elif every or _changed_enough(a, b, min_change):
            difference, relative = _change(a, b)
            numbers.append(f"| {path} | {_format(a)} | {_format(b)} | {difference} | {relative} |")
    lines = ["## How the two runs were made", ""]
    if settings:
        lines += ["| setting | old | new |", "| --- | --- | --- |", *settings]
    else:
        lines.append("The same in both files.")
    lines += ["", "## Numbers", ""]
    if numbers:
        lines += [
            "| number | old | new | new − old | relative |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += numbers
    else:
        lines.append("No number differs" + (" by as much as --min-change." if min_change else "."))
    if one_sided:
        lines += ["", "## Numbers one file lacks (absent, or null: not measured)", ""]
        lines += ["| number | old | new |"]
        lines += ["| --- | --- | --- |", *one_sided]
    if context:
        lines += ["", "## When they ran, and how busy the machine was", ""]
        lines += ["| context | old | new |", "| --- | --- | --- |", *context]
    for name, data in (("old", old), ("new", new)):
        if data.get("complete") is False:
            lines += ["", f"Note: the {name} file is marked incomplete (its run stopped early)."]
    return "\n".join(lines) + "\n"


def _read(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"compare.py: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"compare.py: cannot read {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise SystemExit(
            f"compare.py: {path} is not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            f"give the files the benchmarks write"
        ) from None
    if not isinstance(data, dict):
        raise SystemExit(f"compare.py: {path} holds a JSON {type(data).__name__}, not an object")
    return data


#: A key only each benchmark's file has at its top: which script wrote a file.
SIGNATURES = {
    "requested_variants": "quality.py",
    "translation": "bridge_speed.py",
    "peers": "flows_speed.py",
    "points": "image_autoencoder.py",
    "prior_mass": "residual_diagnostics.py",
}


def written_by(data: dict[str, Any]) -> str | None:
    """The benchmark script that wrote ``data``, by a key only its files have; ``None`` for
    another file (the demo's metrics, say), compared as it is."""
    return next((script for key, script in SIGNATURES.items() if key in data), None)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/compare.py",
        description="Compare two benchmark result files: how each run was made, and which "
        "numbers changed (Markdown on stdout).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("old", help="the earlier result file (JSON)")
    parser.add_argument("new", help="the later result file (JSON)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="keep numbers whose dotted path contains TEXT (repeatable)",
    )
    parser.add_argument(
        "--min-change",
        type=float,
        default=0.0,
        help="hide numbers whose relative change is smaller (0.01 = 1%%)",
    )
    parser.add_argument("--all", action="store_true", help="list unchanged numbers too")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.min_change >= 0:
        parser.error(f"--min-change must be a number >= 0, got {args.min_change}")
    old, new = _read(args.old), _read(args.new)
    # Two scripts' files share hardly a number: the report would be a list of everything.
    scripts = written_by(old), written_by(new)
    if None not in scripts and scripts[0] != scripts[1]:
        raise SystemExit(
            f"compare.py: {args.old} was written by {scripts[0]} and {args.new} by "
            f"{scripts[1]}; compare two files of the same benchmark"
        )
    sys.stdout.write(compare(old, new, args.only, args.min_change, args.all))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
