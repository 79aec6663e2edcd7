"""Meta-tests: every hook is documented with its exact signature and has tests, and the plugin
tutorial shows real code and real output."""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path

import pytest
import test_plugins

from flowbridge import hookspecs, plugins
from flowbridge.cli import main
from flowbridge.testing import CHECKS

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
HOOKS = {
    name: function
    for name, function in vars(hookspecs).items()
    if callable(function) and hasattr(function, f"{hookspecs.PROJECT}_spec")
}
# ```lang\n<body>``` blocks of the docs, with their language.
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```$", DOCS, flags=re.MULTILINE | re.DOTALL)


def signature(function) -> str:
    """``def name(arg: Annotation, ...) -> Return`` as written in the source."""
    sig = inspect.signature(function)  # annotations stay strings: hookspecs uses __future__
    params = ", ".join(f"{p.name}: {p.annotation}" for p in sig.parameters.values())
    return f"def {function.__name__}({params}) -> {sig.return_annotation}"


def test_the_hooks_are_found():
    assert sorted(HOOKS) == ["flowbridge_register_datasets", "flowbridge_register_domains"]
    assert set(HOOKS) <= set(hookspecs.__all__)


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_is_documented_with_its_exact_signature(hook):
    assert f"### `{hook}`" in DOCS
    assert signature(HOOKS[hook]) in DOCS, signature(HOOKS[hook])
    first_line = inspect.getdoc(HOOKS[hook]).splitlines()[0].replace("``", "`")
    assert first_line in DOCS


@pytest.mark.parametrize("hook", sorted(HOOKS))
def test_every_hook_has_tests(hook):
    tests = test_plugins.HOOK_TESTS.get(hook, [])
    assert len(tests) >= 3, f"{hook} has too few tests: {tests}"
    for name in tests:
        assert name.startswith("test_") and callable(getattr(test_plugins, name))


def test_every_check_of_check_domain_is_documented_in_order():
    rows = re.findall(r"^\| `([^`]+)` \|", DOCS, flags=re.MULTILINE)
    assert [row for row in rows if row in CHECKS] == list(CHECKS)


def test_code_blocks_naming_a_file_are_verbatim_excerpts_of_it():
    excerpts = [body for _, body in BLOCKS if body.startswith("# examples/")]
    assert len(excerpts) >= 8
    for body in excerpts:
        first, _, code = body.partition("\n")
        source = (ROOT / first.removeprefix("# ")).read_text(encoding="utf-8")
        assert code in source, f"docs excerpt no longer in {first}:\n{code}"


def test_the_documented_plugins_output_is_what_the_command_prints(capsys, monkeypatch):
    pytest.importorskip("flowbridge_signals")
    (documented,) = [json.loads(body) for lang, body in BLOCKS if lang == "json"]
    monkeypatch.setenv(plugins.ENV_VAR, "signals")
    with plugins.isolated(entry_points=True):
        assert main(["plugins"]) == 0
    assert json.loads(capsys.readouterr().out) == documented


def test_the_documented_check_domain_output_is_what_the_command_prints(capsys, monkeypatch):
    pytest.importorskip("flowbridge_signals")
    (documented,) = [body for lang, body in BLOCKS if body.startswith("$ flowbridge check-domain")]
    command, _, printed = documented.partition("\n")
    monkeypatch.setenv(plugins.ENV_VAR, "signals")
    with plugins.isolated(entry_points=True):
        assert main(shlex.split(command.removeprefix("$ flowbridge "))) == 0
    assert capsys.readouterr().out == printed


def test_the_documented_training_example_runs(tmp_path, monkeypatch):
    flowbridge_signals = pytest.importorskip("flowbridge_signals")
    (example,) = [body for lang, body in BLOCKS if lang == "python" and "load_bridge(" in body]
    # Two steps instead of the documented run: the calls are under test, not the model.
    assert '"steps": 200,' in example
    example = example.replace('"steps": 200,', '"steps": 2,')
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    with plugins.isolated(flowbridge_signals):
        exec(compile(example, "docs/plugins.md", "exec"), namespace)
    assert namespace["signal_b"] is namespace["bridge"].domains["b"]
    assert [len(row) for row in namespace["translations"]] == [3, 3, 3, 3]
    with pytest.raises(ValueError, match="give the side instead: 'a' or 'b'"):
        namespace["bridge"].translate(namespace["test"].a[:1], source="signal")
