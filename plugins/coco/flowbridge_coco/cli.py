"""``flowbridge-coco``: evaluate a trained COCO bridge as LNFMM did, or score feature files.

Training needs nothing COCO-specific: ``flowbridge train examples/coco/captioning.toml``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from flowbridge.commands import positive_int, run_main

__all__ = ["main", "build_parser", "load_extractor"]

EXAMPLES = """\
examples:
  flowbridge-coco evaluate runs/coco-captioning/checkpoint.pt --out results/captioning
  flowbridge-coco evaluate runs/coco-captioning/checkpoint.pt --samples 20 --no-meteor \\
      --max-images 500 --out results/quick
  flowbridge-coco evaluate runs/coco-t2i/checkpoint.pt --task text-to-image \\
      --extractor my_features:inception_pool --out results/t2i
  flowbridge-coco fid real_features.npy generated_features.npy
  flowbridge-coco prepare examples/coco/captioning.toml   check files, build image caches
  flowbridge-coco tiny data/tiny-coco     a synthetic 18-image COCO for a smoke test

The dataset settings come from the run configuration saved in the checkpoint (use --config
for a checkpoint without one, --data-root when the data has moved). Results: results.json,
results.md (the tables) and, for captioning, captions.json (each image's samples, best
consensus score first); text-to-image also writes grids/ and generated.pt. Those of an earlier
evaluation into the same folder that this one does not rewrite are deleted.
"""


class _EvaluateHelp(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except ``None``: those options say what they default to."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowbridge-coco",
        description="Evaluate flowbridge models on COCO captioning and text-to-image.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    evaluate = commands.add_parser(
        "evaluate",
        help="caption or synthesise a split K times and score it",
        epilog=EXAMPLES,
        formatter_class=_EvaluateHelp,
    )
    evaluate.add_argument("checkpoint", help="a checkpoint of flowbridge train")
    evaluate.add_argument(
        "--task", choices=("captioning", "text-to-image"), default="captioning", help="what to do"
    )
    evaluate.add_argument("--split", default="test", help="the split to evaluate")
    evaluate.add_argument(
        "--out", default="results", metavar="DIR", help="results folder (an earlier evaluation's "
        "files in it are replaced)"
    )  # fmt: skip
    evaluate.add_argument(
        "--samples", type=positive_int, help="K per input (default: 100 captions / 10 images)"
    )
    evaluate.add_argument("--temperature", type=float, default=1.0, help="residual noise scale")
    evaluate.add_argument("--beam-size", type=positive_int, default=2, help="captioning beam")
    evaluate.add_argument(
        "--neighbours", type=positive_int, default=60, help="consensus k (at most the training "
        "images)"
    )  # fmt: skip
    evaluate.add_argument(
        "--consensus-top", type=positive_int, default=125, help="consensus m (at most the "
        "neighbours' references)"
    )  # fmt: skip
    evaluate.add_argument(
        "--diversity-top", type=_non_negative, default=5, help="best captions per image for "
        "the diversity metrics (0 = all K)"
    )  # fmt: skip
    evaluate.add_argument("--no-meteor", action="store_true", help="skip METEOR (Java)")
    evaluate.add_argument(
        "--max-images", type=_non_negative, default=0, help="first N images only (0 = all)"
    )
    evaluate.add_argument("--batch-size", type=positive_int, default=16, help="inputs per batch")
    evaluate.add_argument("--seed", type=_non_negative, default=0, help="residual noise seed")
    evaluate.add_argument(
        "--extractor", metavar="MODULE:CALLABLE", help="text-to-image: image feature extractor"
    )
    evaluate.add_argument(
        "--real-features", metavar="FILE", help="text-to-image: features of real images"
    )
    evaluate.add_argument("--grid-rows", type=positive_int, default=16, help="captions per grid")
    evaluate.add_argument(
        "--pr-neighbours", type=positive_int, default=3, help="text-to-image: precision/recall k"
    )
    evaluate.add_argument("--config", metavar="RUN.toml", help="data settings, if not saved")
    evaluate.add_argument("--data-root", metavar="DIR", help="override the dataset's root")
    evaluate.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(func=run_evaluate)

    fid = commands.add_parser("fid", help="FID, precision and recall of two feature files")
    fid.add_argument("real", help="features of real images, .npy or .pt [n, d]")
    fid.add_argument("generated", help="features of generated images, .npy or .pt [m, d]")
    fid.add_argument("--k", type=positive_int, default=3, help="precision/recall neighbours (3)")
    fid.set_defaults(func=run_fid)

    prepare = commands.add_parser(
        "prepare",
        help="read a run's COCO data once: check the files, build the image caches",
        description="Check a run's COCO files and build its image caches before training "
        "(do this once before a multi-process run, so that the processes do not all build them).",
    )
    prepare.add_argument("config", metavar="RUN.toml", help="a run configuration using coco")
    prepare.add_argument(
        "--splits",
        nargs="+",
        help="splits to prepare (default: the run's training and validation splits, and every "
        "other split the data has images for, e.g. test)",
    )
    prepare.set_defaults(func=run_prepare)

    tiny = commands.add_parser(
        "tiny", help="write a tiny synthetic COCO (18 images) to smoke-test a set-up"
    )
    tiny.add_argument(
        "folder", help="where to write it (a new or empty folder), e.g. data/tiny-coco"
    )
    tiny.add_argument(
        "--force", action="store_true", help="write into a folder that already holds files"
    )
    tiny.set_defaults(func=run_tiny)
    return parser


def load_extractor(spec: str) -> Callable:
    """Import ``"package.module:name"`` and return that callable.

    Raises:
        ValueError: the spec is malformed, the module cannot be imported, or the object is
            not callable.
    """
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(
            f"--extractor must look like package.module:function, got {spec!r}; the function "
            f"maps images [n, C, H, W] in [0, 1] to features [n, d]"
        )
    # As `python -m` would: a module in the current folder (my_features.py) is found too,
    # which the flowbridge-coco script alone does not put on the path.
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.append(here)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--extractor: cannot import {module_name!r}: {exc}") from None
    finally:
        if added:
            sys.path.remove(here)
    extractor = getattr(module, name, None)
    if not callable(extractor):
        raise ValueError(f"--extractor: {module_name} has no callable {name!r}")
    return extractor


def _coco_options(data: dict[str, Any] | None, source: str) -> dict[str, Any]:
    """The ``coco`` dataset options of a run's ``[data]`` table (as a plain dict)."""
    if not data or data.get("dataset") != "coco":
        found = data.get("dataset") if data else None
        raise ValueError(
            f"{source} does not use the coco dataset (its data: {found!r}); give a run "
            f"configuration whose [data] dataset = 'coco' (--config)"
        )
    return dict(data.get("options") or {})


def _data_options(checkpoint: dict[str, Any], args) -> dict[str, Any]:
    """The run's ``coco`` dataset options (``--config`` wins), ``--data-root`` applied."""
    from flowbridge.config import load_run_config, to_dict

    if args.config:
        options = _coco_options(to_dict(load_run_config(args.config).data), args.config)
    else:
        options = _coco_options((checkpoint.get("run") or {}).get("data"), args.checkpoint)
    if args.data_root:
        options["root"] = args.data_root
    return options


def run_evaluate(args) -> int:
    from flowbridge.checkpoint import load_bridge, load_checkpoint
    from flowbridge.distributed import resolve_device
    from flowbridge.progress import watched

    from .dataset import CocoDataset
    from .evaluation import (
        CaptioningSettings,
        TextToImageSettings,
        evaluate_captioning,
        evaluate_text_to_image,
    )
    from .features import read_features
    from .report import markdown, write_results

    dataset = CocoDataset(**_data_options(load_checkpoint(args.checkpoint), args))
    bridge = load_bridge(args.checkpoint, map_location=resolve_device(args.device))
    progress = not args.no_progress and watched()
    common = dict(temperature=args.temperature, batch_size=args.batch_size, seed=args.seed)
    if args.task == "captioning":
        settings = CaptioningSettings(
            samples=args.samples or 100,
            beam_size=args.beam_size,
            neighbours=args.neighbours,
            consensus_top=args.consensus_top,
            diversity_top=args.diversity_top,
            meteor=not args.no_meteor,
            max_images=args.max_images,
            **common,
        )
        result = evaluate_captioning(bridge, dataset, args.split, settings, progress)
        metrics = result.metrics
        extra = {"captions.json": {str(k): v for k, v in result.captions.items()}}
    else:
        settings = TextToImageSettings(
            samples=args.samples or 10,
            max_captions=args.max_images,
            grid_rows=args.grid_rows,
            k=args.pr_neighbours,
            **common,
        )
        extractor = load_extractor(args.extractor) if args.extractor else None
        real = read_features(args.real_features, "--real-features") if args.real_features else None
        metrics = evaluate_text_to_image(
            bridge, dataset, args.out, args.split, extractor, real, settings, progress
        )
        extra = {}
    for path in write_results(metrics, args.out, extra):
        print(f"wrote {path}", file=sys.stderr)
    print(markdown(metrics), end="")
    return 0


def run_fid(args) -> int:
    from .features import read_features
    from .image_metrics import image_feature_scores

    real = read_features(args.real, "argument real")
    generated = read_features(args.generated, "argument generated")
    scores = image_feature_scores(real, generated, args.k)
    print(json.dumps(scores, indent=2))
    return 0


def run_prepare(args) -> int:
    from contextlib import nullcontext

    from flowbridge.checks import noted
    from flowbridge.config import load_run_config, to_dict
    from flowbridge.plugins import get_domain
    from flowbridge.training.data import validation_split_note

    from .dataset import CocoDataset

    run = load_run_config(args.config)
    dataset = CocoDataset(**_coco_options(to_dict(run.data), args.config))
    # As training will: a mismatch is named before a long cache build, not after.
    for domain in (run.domains.a, run.domains.b):
        if domain.name == "image":
            dataset.check_image_domain(get_domain("image", **domain.options))
    # The run's own splits must have images; another (test: evaluation's) is prepared if the
    # data has it, since COCO's own annotation files come as train and val only.
    used = [run.data.train_split, *([run.data.val_split] if run.data.val_split else [])]
    others = [split for split in dataset.splits if split not in used and dataset.annotated(split)]
    for split in args.splits or [*used, *others]:
        validation = split == run.data.val_split
        with noted(lambda s=split: validation_split_note(s)) if validation else nullcontext():
            images, pairs = len(dataset.images(split)), len(dataset.split(split))
        print(f"{split}: {images} images, {pairs} caption pairs")
    return 0


def run_tiny(args) -> int:
    from pathlib import Path

    from .testing import write_tiny_coco

    coco = write_tiny_coco(Path(args.folder), force=args.force)
    print(f"wrote a tiny COCO of {len(coco.ids)} images to {coco.root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_main(lambda: _run(build_parser().parse_args(argv)))


def _run(args: argparse.Namespace) -> int:
    from flowbridge.commands._errors import USER_ERRORS, one_line_warnings, report

    # Warnings as one line each, as flowbridge's own commands show them (a few real images
    # for FID, say), not Python's source line of the plugin's code.
    with one_line_warnings(args.command, program="flowbridge-coco"):
        try:
            return int(args.func(args) or 0)
        except USER_ERRORS as exc:
            return report(args.command, exc, program="flowbridge-coco")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
