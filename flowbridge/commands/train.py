"""``flowbridge train CONFIG.toml``: train a bridge as a run configuration says."""

from __future__ import annotations

import dataclasses
import os
import shlex
import sys

from . import add_command, non_negative_float, positive_int

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """\
examples:
  flowbridge train run.toml                      train as run.toml says
  flowbridge train run.toml --preset small       the small CPU preset, run.toml on top
  flowbridge train run.toml --steps 500 --out runs/try
  flowbridge train run.toml --max-seconds 180    at most 3 minutes of training
  flowbridge train run.toml --resume             continue the run in its out directory
  torchrun --nproc_per_node 2 -m flowbridge train run.toml   data-parallel on 2 processes

a minimal run.toml:
  preset = "small"
  [data]
  dataset = "shapes"
  [domains.a]
  name = "text"
  [domains.b]
  name = "image"
  [train]
  steps = 2000
  out = "runs/shapes"

The run directory gets checkpoint.pt (flowbridge translate --checkpoint), log.jsonl (every
loss term, training and validation) and config.json.
"""


def add_parser(subparsers) -> None:
    parser = add_command(
        subparsers,
        "train",
        help="train a bridge from a TOML run configuration",
        description="Train a bridge between two domains from a TOML run configuration.",
        examples=EXAMPLES,
    )
    parser.add_argument(
        "config",
        metavar="CONFIG.toml",
        help="the run configuration (or a run directory's config.json, to resume that run)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run whose checkpoint is in --out"
    )
    parser.add_argument("--steps", type=positive_int, help="train up to this many steps in total")
    parser.add_argument(
        "--max-seconds",
        type=non_negative_float,
        metavar="SECONDS",
        help="stop after this much training time of this invocation (wall clock), checkpoint "
        "included; 0: no limit (lifts the one a resumed run's config.json holds)",
    )
    parser.add_argument("--out", metavar="DIR", help="run directory (overrides train.out)")
    parser.add_argument(
        "--preset", metavar="NAME", help="start from this preset (small, captioning, ...)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (overrides train.device)")
    parser.add_argument(
        "--threads",
        type=positive_int,
        help="torch CPU threads of this process (default: torch's, one per core; fewer leaves "
        "cores to others on a shared machine)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args) -> int:
    from ._errors import one_line_warnings

    with one_line_warnings("train"):
        return _train(args)


def _train(args) -> int:
    import torch

    from ..config import load_run_config
    from ..training import NonFiniteLossError, Trainer, TrainingInterrupted
    from ._errors import USER_ERRORS

    trainer = None
    try:
        config = load_run_config(args.config, preset=args.preset)
        overrides = {
            key: value
            for key, value in (
                ("steps", args.steps),
                ("max_seconds", args.max_seconds),
                ("out", args.out),
                ("device", args.device),
            )
            if value is not None
        }
        if args.no_progress:
            overrides["progress"] = False
        if args.threads:
            torch.set_num_threads(args.threads)
        config.train = dataclasses.replace(config.train, **overrides)
        trainer = Trainer(config, resume=args.resume)
        start = trainer.step
        if trainer.retuned and trainer.dist.is_main:  # meant or not, say so before training
            print(f"resuming at step {start} with: {'; '.join(trainer.retuned)}")
        result = trainer.run()
    except NonFiniteLossError as exc:
        return _failed(trainer, exc, 1)
    except KeyboardInterrupt as exc:
        stopped = exc if isinstance(exc, TrainingInterrupted) else None
        if trainer is None:  # while reading the config, the data or the checkpoint
            print("interrupted before training started; nothing was written", file=sys.stderr)
        elif trainer.dist.is_main:
            print(_interrupted(trainer, stopped), file=sys.stderr)
        return stopped.exit_code if stopped else 130
    except USER_ERRORS as exc:
        if args.resume and str(exc).startswith("nothing to resume"):  # config was read
            _note_the_configs_own_run(exc, args, config.train.out)
        return _failed(trainer, exc, 2)
    except OSError as exc:  # the machine's (a full disk, a read-only mount), not the user's
        return _failed(trainer, exc, 1)
    if result.checkpoint is None:  # not the main process of a data-parallel run
        return 0
    if not result.terms:  # a finished run resumed: it said so, and trained nothing
        print(f"checkpoint: {result.checkpoint} (step {result.step})\nlog: {result.log}")
        return 0
    shown = {"train": result.terms, "val": result.val_terms or {}}
    totals = ", ".join(
        f"{split} total {terms['total']:.4g}" for split, terms in shown.items() if "total" in terms
    )
    trained = (
        f"steps {start + 1}-{result.step}"
        if start
        else f"{result.step} step{'s' * (result.step != 1)}"
    )
    print(
        f"trained {trained} in {result.wall_time:.1f} s{'; ' + totals if totals else ''}\n"
        f"checkpoint: {result.checkpoint}\nlog: {result.log}"
    )
    if result.step < config.train.steps:  # the time budget ran out first
        print(
            f"stopped by train.max_seconds ({config.train.max_seconds:g} s) at step "
            f"{result.step} of train.steps ({config.train.steps}); continue with: "
            f"{_resume_command(trainer)}\n(which trains for at most {config.train.max_seconds:g} "
            f"s more: add --max-seconds 0 for no limit, or another budget)"
        )
    return 0


def _note_the_configs_own_run(exc: FileNotFoundError, args, out: str) -> None:
    """Where ``--resume`` found no checkpoint in ``out`` because a run's ``config.json`` names
    its ``train.out`` relative to the folder the run started in, and the config's own folder
    holds that run's checkpoint: say how to resume it from here."""
    from ..checkpoint import CHECKPOINT_NAME

    folder = os.path.dirname(os.path.abspath(args.config))
    if os.path.abspath(out) != folder and os.path.isfile(os.path.join(folder, CHECKPOINT_NAME)):
        from ..checks import add_note

        add_note(exc, f"(the config's own folder holds a checkpoint: add --out {_quote(folder)})")


def _resume_command(trainer) -> str:
    """The command that continues ``trainer``'s run: its run directory's config.json holds
    the settings in use, command-line overrides (--steps, --preset, --device...) included.
    Absolute paths, and ``--out``: the config's ``train.out`` is relative to where the run
    started, and the directory may be moved. Where the data's options name a relative path
    that exists from here (a dataset's ``root``), the command first goes back here: from
    another folder the data would not be found."""
    from ..training.rundir import CONFIG_NAME

    out = trainer.out.resolve()
    config, folder = _quote(str(out / CONFIG_NAME)), _quote(str(out))
    command = f"{_launcher(trainer.dist.world_size)} train {config} --resume --out {folder}"
    if _names_a_relative_path(trainer.config.data.options):
        # cmd's cd stays on the current drive (C:) when given another's folder; pushd does not.
        cd = "pushd" if sys.platform == "win32" else "cd"
        command = f"{cd} {_quote(os.getcwd())} && {command}"
    return command


def _quote(text: str) -> str:
    """``text`` as one word of a command to paste: quoted for a POSIX shell, or on Windows
    in double quotes (cmd keeps single quotes as part of the word, and splits an unquoted one
    at ``&``, ``(`` or ``^``; no Windows path holds a double quote)."""
    if sys.platform == "win32":
        return f'"{text}"'
    return shlex.quote(text)


def _names_a_relative_path(value) -> bool:
    """Whether ``value`` (options: strings, numbers, tables, lists) holds a relative path
    to a file or folder that exists from the current folder."""
    if isinstance(value, dict):
        return any(_names_a_relative_path(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_names_a_relative_path(item) for item in value)
    return (
        isinstance(value, str)
        and bool(value)
        and not os.path.isabs(value)
        and os.path.exists(value)
    )


def _launcher(world: int) -> str:
    """``flowbridge``, or the torchrun command line of this many processes (torchrun sets
    ``LOCAL_WORLD_SIZE``, the processes of one node)."""
    if world == 1:
        return "flowbridge"
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    nodes = f"--nnodes {world // local} (and your rendezvous options) " if local < world else ""
    return f"torchrun {nodes}--nproc_per_node {local} -m flowbridge"


def _failed(trainer, exc: BaseException, code: int) -> int:
    """Report ``exc``; if it stopped a run under way, also what the run kept."""
    from ..training.rundir import RunDirectoryInUse
    from ._errors import report

    code = report("train", exc, code)
    # Built and started (not refused by another run's directory): the run itself failed.
    if trainer is not None and trainer.dist.is_main and not isinstance(exc, RunDirectoryInUse):
        saved = trainer.last_checkpoint_step
        print(
            f"the run stopped at step {trainer.step}; "
            + (
                f"its last checkpoint is of step {saved} ({trainer.checkpoint_path}). Once "
                f"this is fixed, continue with: {_resume_command(trainer)}"
                if saved is not None
                else "no checkpoint was written, so there is nothing to resume"
            ),
            file=sys.stderr,
        )
    return code


def _interrupted(trainer, stopped) -> str:
    """What an interrupted run left, and the command that continues it."""
    resume = _resume_command(trainer)
    saved = trainer.last_checkpoint_step
    nothing = "no checkpoint was written, so there is nothing to resume"
    if stopped is not None and not stopped.checkpoint:
        where = f"{stopped.signal.name}: stopped at once after step {stopped.step}"
        if saved is None:
            return f"{where}; {nothing}"
        return f"{where}; the last checkpoint is of step {saved}. Continue from it with: {resume}"
    how = f"{stopped.signal.name}: stopped" if stopped is not None else "interrupted"
    if saved is None:  # before the first step ended
        return f"{how} at step {trainer.step}; {nothing}"
    return (
        f"{how} after step {trainer.step}; checkpoint {trainer.checkpoint_path}. "
        f"Continue with: {resume}"
    )
