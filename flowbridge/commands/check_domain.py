"""``flowbridge check-domain NAME``: the domain contract checks of a registered domain.

Builds the domain registered as ``NAME`` from its ``--option`` values (as a run config's
``domains.a.options`` would) and runs :func:`flowbridge.testing.check_domain` on it, for the
latent specs of :func:`flowbridge.testing.default_specs`. Prints one line per check of
:data:`flowbridge.testing.CHECKS`: passed, failed (with the latent spec it failed for) or
skipped (why). A failed check's message follows on stderr.

Exit status: 0 when no check failed, 1 when one did, 2 when the registry refuses the name or
an option (the message lists the registered names, or the domain's options).

Like every command module, this one imports torch (through the plugins) only when it runs, so
that ``flowbridge --help`` does not wait for it.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from . import add_command, add_option_argument, option_dict

if TYPE_CHECKING:
    from ..testing import CheckResult

__all__ = ["EXAMPLES", "add_parser", "run"]

EXAMPLES = """\
examples:
  flowbridge check-domain signal                       a default-constructed domain
  flowbridge check-domain signal --option length=16 --option channels=2
  flowbridge check-domain image --source photo.png     read_item must read photo.png too

Options are the domain's constructor options (flowbridge plugins --all lists them); VALUE is
read as JSON where it parses. Set FLOWBRIDGE_DEBUG=1 for the traceback of a failed check.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(
        subparsers,
        "check-domain",
        help="run the contract checks of flowbridge.testing.check_domain on a domain",
        description="Check that a registered domain keeps the contract the bridge relies on.",
        examples=EXAMPLES,
    )
    parser.add_argument("name", metavar="NAME", help="the domain's registered name")
    add_option_argument(parser, "a constructor option of the domain, repeatable")
    parser.add_argument(
        "--source",
        action="append",
        default=[],
        help="an input read_item must read (a file path, or the text itself), repeatable; "
        "without one the read_item check is skipped",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._errors import one_line_warnings

    with one_line_warnings("check-domain"):
        return _check(args)


def _check(args: argparse.Namespace) -> int:
    from ..plugins import current
    from ..testing import check_domain, default_specs
    from ._errors import USER_ERRORS, report

    try:
        options = option_dict(args.option)
        domain = current().get_domain(args.name, **options)
    except USER_ERRORS as exc:
        return report("check-domain", exc)
    cls = type(domain)
    given = f"options {json.dumps(options, default=repr)}" if options else "its default options"
    print(f"checking domain {args.name!r} ({cls.__module__}:{cls.__qualname__}) with {given}")
    specs = default_specs(domain)
    results: list[CheckResult] = []
    failure = None
    try:
        check_domain(domain, specs, sources=args.source, on_result=results.append)
    except AssertionError as exc:
        failure = exc
    counts = {"passed": 0, "FAILED": 0, "skipped": 0}
    for status, check, note in _rows(results, len(specs)):
        counts[status] += 1
        print(f"  {status:<8} {check:<23}  {note}".rstrip())
    print(", ".join(f"{n} {status.lower()}" for status, n in counts.items() if n))
    return 0 if failure is None else report("check-domain", failure, 1)


def _rows(results: list[CheckResult], specs: int) -> list[tuple[str, str, str]]:
    """``(status, check, note)`` for each of CHECKS from the results ``check_domain``
    reported (a check of the model, once per latent spec, is summed up in one row)."""
    from ..testing import CHECKS

    failed = next((r for r in results if r.status == "failed"), None)
    rows = []
    for check in CHECKS:
        mine = [r for r in results if r.check == check]
        passed = sum(r.status == "passed" for r in mine)
        skipped = [r for r in mine if r.status == "skipped"]
        per_spec = any(r.spec is not None for r in mine)
        if failed is not None and failed.check == check:
            rows.append(("FAILED", check, f"with {failed.spec}" if failed.spec else ""))
        elif passed:
            note = ""
            if per_spec and passed < specs:
                others = f"skipped: {skipped[0].detail}" if skipped else "not run"
                note = f"for {passed} of {specs} latent specs (the others {others})"
            rows.append(("passed", check, note))
        elif skipped:
            rows.append(("skipped", check, skipped[0].detail))
        else:  # reported neither way: the checks after a failure do not run
            rows.append(("skipped", check, "not run after the failure"))
    return rows
