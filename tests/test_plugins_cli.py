"""``flowbridge plugins [--all]``: the JSON it prints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from importlib import metadata

import pytest
from test_plugins import FakeDistribution, FakeEntryPoint, PairsDataset, make_plugin
from toy_domains import VectorDomain

from flowbridge import plugins
from flowbridge.cli import main


def run_cli(capsys, *args: str) -> list[dict]:
    assert main(["plugins", *args]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return json.loads(out)


class Waves(VectorDomain):
    """Waves for the command-line test.

    Not this line.
    """

    name = "waves"
    default_residual_features = 5

    def __init__(self, features: int = 3, hidden: int = 8, *, tag: str = "x"):
        super().__init__(features, hidden)


def test_lists_each_plugin_with_hooks_and_what_it_registers(capsys):
    with plugins.isolated(make_plugin("toy", [Waves], [PairsDataset]), make_plugin("zero")):
        rows = run_cli(capsys)
    hooks = ["flowbridge_register_datasets", "flowbridge_register_domains"]
    assert rows == [
        {
            "name": "toy",
            "version": None,
            "hooks": hooks,
            "domains": ["waves"],
            "datasets": ["pairs"],
        },
        {"name": "zero", "version": None, "hooks": hooks, "domains": [], "datasets": []},
    ]


def test_all_describes_every_registered_class(capsys):
    with plugins.isolated(make_plugin("toy", [Waves], [PairsDataset])):
        (row,) = run_cli(capsys, "--all")
    assert (row["distribution"], row["module"]) == (None, "toy")
    assert row["classes"] == [
        {
            "kind": "domain",
            "name": "waves",
            "class": "test_plugins_cli:Waves",
            "doc": "Waves for the command-line test.",
            "options": {"features": 3, "hidden": 8, "tag": "x"},
            "default_residual_features": 5,
        },
        {
            "kind": "dataset",
            "name": "pairs",
            "class": "test_plugins:PairsDataset",
            "doc": "Vectors paired with themselves.",
            "options": {"size": 4},
            "domains": ["vector", "vector-b"],
            "splits": ["train", "val", "test"],
        },
    ]


def test_no_plugins_prints_an_empty_list(capsys):
    with plugins.isolated():
        assert run_cli(capsys) == []


def test_version_comes_from_the_installed_distribution(capsys, monkeypatch):
    pytest.importorskip("flowbridge_signals")
    monkeypatch.setenv(plugins.ENV_VAR, "signals")
    with plugins.isolated(entry_points=True):
        (row,) = run_cli(capsys, "--all")
    assert row["version"] == metadata.version("flowbridge-signals")
    assert (row["distribution"], row["module"]) == ("flowbridge-signals", "flowbridge_signals")
    assert (row["domains"], row["datasets"]) == (["signal"], ["chords"])


def test_a_plugin_registered_in_code_finds_its_distribution(capsys):
    flowbridge_signals = pytest.importorskip("flowbridge_signals")
    with plugins.isolated(flowbridge_signals):
        (row,) = run_cli(capsys)
    assert row["name"] == "flowbridge_signals"
    assert row["version"] == metadata.version("flowbridge-signals")


def test_a_broken_plugin_is_listed_with_its_error_next_to_the_good_ones(capsys, monkeypatch):
    broken = FakeEntryPoint("broken", error=ImportError("no module named 'scipy'"))
    broken.dist = FakeDistribution("flowbridge-broken", "0.2")
    good = FakeEntryPoint("toy", make_plugin("toy", [Waves]))
    monkeypatch.setattr(plugins, "_entry_points", lambda: [good, broken])
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    with plugins.isolated(entry_points=True):
        assert main(["plugins", "--all"]) == 1
    out, err = capsys.readouterr()
    error = (
        "plugin 'broken' (module 'fake_broken') failed to import: ImportError: no module "
        "named 'scipy' (installed by flowbridge-broken)"
    )
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["broken"] == {
        "name": "broken",
        "version": "0.2",
        "hooks": [],
        "domains": [],
        "datasets": [],
        "distribution": "flowbridge-broken",
        "module": None,
        "classes": [],
        "error": error,
    }
    assert rows["toy"]["domains"] == ["waves"] and "error" not in rows["toy"]
    assert err == f"flowbridge plugins: {error}\n"


def test_a_reader_that_closes_the_output_early_ends_the_command_quietly():
    """``flowbridge plugins | head``: no BrokenPipeError traceback, the shell's SIGPIPE code."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes
    try:
        done = subprocess.run(
            [sys.executable, "-m", "flowbridge", "plugins"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


@pytest.mark.skipif(sys.platform == "win32", reason="a socket is no standard output there")
def test_a_reader_that_hangs_up_ends_the_command_quietly_too():
    """macOS and the BSDs poll a pipe whose reader has gone as a hang-up (POLLHUP), not as
    Linux's error; a socket whose peer closed polls so on Linux too."""
    ours, theirs = socket.socketpair()
    theirs.close()
    with ours:
        done = subprocess.run(
            [sys.executable, "-m", "flowbridge", "plugins"],
            stdout=ours.fileno(),
            stderr=subprocess.PIPE,
            text=True,
        )
    assert (done.returncode, done.stderr) == (141, "")


def test_an_error_of_a_plugins_own_code_points_to_its_traceback(capsys, monkeypatch):
    """One line on the command line; where the plugin's own code raised (not only the
    registry's checks), the line says how to see where."""
    from flowbridge.commands._errors import report

    def raised(error, cause):
        try:
            raise error from cause
        except plugins.PluginError as exc:
            return exc

    monkeypatch.delenv("FLOWBRIDGE_DEBUG", raising=False)
    hook = raised(plugins.PluginError("plugin 'p' failed in a hook: KeyError"), KeyError("x"))
    wrapped = raised(plugins.PluginError("1 installed plugin failed"), hook)
    own_check = raised(plugins.PluginError("plugin 'p' registered domain 'x' twice"), None)
    for error, hint in ((hook, True), (wrapped, True), (own_check, False)):
        assert report("train", error) == 2
        said = capsys.readouterr().err
        assert said.endswith(" (FLOWBRIDGE_DEBUG=1 shows the traceback)\n") == hint
    monkeypatch.setenv("FLOWBRIDGE_DEBUG", "1")
    with pytest.raises(plugins.PluginError) as again:
        report("train", hook)
    assert again.value is hook


def test_a_broken_pipe_of_the_commands_own_is_an_error_not_a_quiet_exit():
    """Only a closed standard output ends a command quietly; a pipe the command itself
    wrote to (a plugin's subprocess that died) keeps its traceback."""
    code = (
        "import sys; from flowbridge.commands import run_main\n"
        "def main():\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "sys.exit(run_main(main))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 1 and "BrokenPipeError" in done.stderr
