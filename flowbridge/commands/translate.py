"""``flowbridge translate``: K outputs in one domain for each input of the other."""

from __future__ import annotations

from pathlib import Path

from . import add_command, add_option_argument, non_negative_float, option_dict, positive_int

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """\
examples:
  flowbridge translate --checkpoint runs/shapes/checkpoint.pt --from text --to image \\
      --samples 8 --out red_circles "a red circle" "a small square on the left"
  flowbridge translate --checkpoint runs/shapes/checkpoint.pt --from image --to text \\
      --samples 5 photo1.png photo2.png
  flowbridge translate --checkpoint runs/shapes --from image --to text \\
      --option method=beam --option beam_size=5 photo1.png

Inputs are read by the source domain (text: the argument itself; image: a file path).
Outputs are written by the target domain to --out plus its suffix (images: a PNG grid, one row
per input; text: Markdown); text outputs are also printed. --seed makes the samples repeatable.
"""


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "translate",
        help="translate inputs of one domain into K samples of the other",
        description="Translate each input into K samples of the other domain.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "--checkpoint",
        required=True,
        metavar="C",
        help="a checkpoint file, or the run directory holding it",
    )
    parser.add_argument("--from", dest="source", required=True, metavar="A", help="input domain")
    parser.add_argument("--to", dest="target", required=True, metavar="B", help="output domain")
    parser.add_argument("--samples", type=positive_int, default=1, metavar="K", help="per input")
    parser.add_argument(
        "--temperature",
        type=non_negative_float,
        default=1.0,
        metavar="T",
        help="residual noise scale",
    )
    parser.add_argument(
        "--component-temperature",
        type=non_negative_float,
        metavar="TC",
        help="temper only the choice of mixture component (a residual prior over a mixture); "
        "default: T. With T < 1 and TC = 1 each mode keeps its share",
    )
    parser.add_argument(
        "--candidates",
        type=positive_int,
        default=1,
        metavar="M",
        help="keep each sample the best of M draws: the one whose encoding rebuilds its input "
        "best (more accurate, a little less diverse; M times the work)",
    )
    add_option_argument(
        parser,
        "an option of the output domain's generate, repeatable (text: method=greedy, beam or "
        "sample; beam_size=5; word_temperature=0.7 with sample; max_length=20); VALUE is read "
        "as JSON where it parses",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="output file, the domain adding its suffix (default: 'translations' for outputs "
        "that are not text; text outputs are printed, and written only with --out)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the residual samples")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="items of the input domain")
    parser.set_defaults(func=run)


def _generate_options(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """``--option`` pairs as keyword arguments of the target domain's ``generate``; a key that
    names one of ``Bridge.translate``'s own arguments is refused (its flag sets it)."""
    import inspect

    from ..bridge import Bridge

    own = set(inspect.signature(Bridge.translate).parameters) - {"self", "generate_options"}
    for key, _ in pairs:
        if key in own:
            raise ValueError(
                f"--option {key}: {key!r} is an argument of translate itself, not of the "
                f"output domain's generate; set it with its own flag (flowbridge translate "
                f"--help)"
            )
    return option_dict(pairs)


def run(args) -> int:
    from ._errors import one_line_warnings

    with one_line_warnings("translate"):
        return _translate(args)


def _translate(args) -> int:
    import torch

    from ..checkpoint import load_bridge
    from ..distributed import resolve_device
    from ..files import check_parent
    from ._errors import USER_ERRORS, report

    try:
        if args.out:  # before the work, and for plugins that write their files themselves
            check_parent(args.out)
        bridge = load_bridge(args.checkpoint, map_location=resolve_device(args.device))
        source, target = bridge.side(args.source), bridge.side(args.target)
        if source == target:
            raise ValueError(
                f"--from and --to name the same domain ({args.source!r}); this checkpoint maps "
                f"{bridge.domains['a'].name!r} <-> {bridge.domains['b'].name!r}"
            )
        items = [bridge.domains[source].read_item(text) for text in args.inputs]
        # A CPU generator on any device: --seed gives the same samples on a CPU and a GPU.
        generator = torch.Generator().manual_seed(args.seed)
        outputs = bridge.translate(
            items,
            source,
            target,
            samples=args.samples,
            temperature=args.temperature,
            generator=generator,
            component_temperature=args.component_temperature,
            candidates=args.candidates,
            **_generate_options(args.option),
        )
        is_text = all(isinstance(item, str) for row in outputs for item in row)
        out = args.out or (None if is_text else "translations")
        written = bridge.domains[target].write_items(outputs, Path(out)) if out else None
    except USER_ERRORS as exc:
        return report("translate", exc)
    if is_text:
        for text, row in zip(args.inputs, outputs, strict=True):
            print(f"[{args.source}] {text}")
            for k, item in enumerate(row, 1):
                print(f"  {k}. {item}")
    if written is not None:
        print(f"wrote {written}")
    return 0
