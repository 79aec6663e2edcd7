"""``flowbridge check-domain NAME``: one line per contract check, and the exit status."""

from __future__ import annotations

import pytest
from test_plugins import make_plugin
from toy_domains import CriticVectorDomain, VectorDomain

from flowbridge import plugins
from flowbridge.cli import main
from flowbridge.testing import CHECKS


class Narrow(VectorDomain):
    """Decodes one column too few."""

    name = "narrow"

    def build_decoder(self, spec):
        decoder = super().build_decoder(spec)
        forward = decoder.forward
        decoder.forward = lambda shared, residual, x=None: forward(shared, residual)[:, :-1]
        return decoder


def check(capsys, *args: str) -> tuple[int, list[str], str]:
    """Exit status, stdout lines and stderr of ``flowbridge check-domain ARGS`` with the toy
    domains registered."""
    toy = make_plugin("toy", [VectorDomain, CriticVectorDomain, Narrow])
    with plugins.isolated(toy):
        code = main(["check-domain", *args])
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def rows(lines: list[str]) -> dict[str, tuple[str, str]]:
    """The check lines: ``{check: (status, note)}``."""
    found = {}
    for line in lines[1:-1]:
        status, rest = line.split(maxsplit=1)
        check = next(c for c in CHECKS if rest.startswith(c))
        found[check] = (status, rest[len(check) :].strip())
    return found


def test_a_domain_that_keeps_the_contract_passes_with_one_line_per_check(capsys):
    code, lines, err = check(capsys, "vector")
    assert (code, err) == (0, "")
    assert (
        lines[0] == "checking domain 'vector' (toy_domains:VectorDomain) with its default options"
    )
    assert list(rows(lines)) == list(CHECKS)
    assert rows(lines)["discriminator"] == (
        "skipped",
        "build_discriminator returned None (no critic)",
    )
    assert rows(lines)["read_item"] == ("skipped", "no sources given to read")
    assert all(
        rows(lines)[c] == ("passed", "") for c in CHECKS if c not in ("discriminator", "read_item")
    )
    assert lines[-1] == "13 passed, 2 skipped"


def test_options_build_the_domain_and_sources_are_read(capsys, tmp_path):
    code, lines, err = check(capsys, "critic-vector", "--option", "features=3", "--source", "1,2,3")
    assert (code, err) == (0, "")
    assert lines[0].endswith('with options {"features": 3}')
    assert rows(lines)["discriminator"] == ("passed", "")
    assert rows(lines)["read_item"] == ("passed", "")  # three numbers: features=3 was used
    assert lines[-1] == "15 passed"


def test_a_failed_check_is_named_with_its_spec_and_its_message_and_exits_1(capsys):
    code, lines, err = check(capsys, "narrow")
    assert code == 1
    found = rows(lines)
    assert found["build"] == ("passed", "for 1 of 3 latent specs (the others not run)")
    assert found["reconstruction loss"] == (
        "FAILED",
        "with LatentSpec(shared=4, residual=2, learned_variance=False)",
    )
    after = CHECKS[CHECKS.index("reconstruction loss") + 1 :]
    assert all(found[c] == ("skipped", "not run after the failure") for c in after)
    assert lines[-1] == "5 passed, 1 failed, 9 skipped"
    assert err.startswith(
        "flowbridge check-domain: error: domain 'narrow' (Narrow) failed check 'reconstruction "
        "loss' with LatentSpec(shared=4, residual=2, learned_variance=False): RuntimeError: "
    )
    assert err.count("\n") == 1


def test_the_traceback_of_a_failed_check_with_flowbridge_debug(capsys, monkeypatch):
    monkeypatch.setenv("FLOWBRIDGE_DEBUG", "1")
    with pytest.raises(AssertionError, match="failed check 'reconstruction loss'") as info:
        check(capsys, "narrow")
    assert isinstance(info.value.__cause__, RuntimeError)  # the decoder's own error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["vectr"],
            "unknown domain 'vectr' (did you mean 'vector'?); registered: critic-vector, "
            "narrow, vector",
        ),
        (
            ["vector", "--option", "featurs=3"],
            "domain 'vector' has no option 'featurs' (did you mean 'features'?); its options "
            "are: features, hidden.",
        ),
        (
            ["vector", "--option", "hidden=8", "--option", "hidden=9"],
            "--option hidden is given twice",
        ),
    ],
)
def test_a_name_or_an_option_the_registry_refuses_exits_2_saying_why(capsys, args, message):
    code, lines, err = check(capsys, *args)
    assert (code, lines) == (2, [])
    assert err.startswith(f"flowbridge check-domain: error: {message}"), err


def test_an_option_not_of_the_form_key_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        check(capsys, "vector", "--option", "features")
    assert info.value.code == 2
    assert "expected KEY=VALUE with KEY a Python name, got 'features'" in capsys.readouterr().err
