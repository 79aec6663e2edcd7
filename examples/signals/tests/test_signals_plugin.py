"""The package is a flowbridge plugin: its entry point, its hooks, and the plugins command."""

from __future__ import annotations

import json
from importlib import metadata

import flowbridge_signals
from flowbridge import plugins
from flowbridge.cli import main


def test_the_entry_point_names_the_plugin_module():
    (entry_point,) = [
        ep for ep in metadata.entry_points(group="flowbridge") if ep.name == "signals"
    ]
    assert entry_point.load() is flowbridge_signals


def test_the_hooks_register_the_domain_and_the_dataset():
    with plugins.isolated(flowbridge_signals) as registry:
        assert registry.domains() == {"signal": flowbridge_signals.SignalDomain}
        assert registry.datasets() == {"chords": flowbridge_signals.ChordsDataset}
        dataset = registry.get_dataset("chords", size=10)
        assert all(name in registry.domains() for name in dataset.domains)


def test_flowbridge_plugins_lists_it(capsys, monkeypatch):
    monkeypatch.setenv(plugins.ENV_VAR, "signals")
    with plugins.isolated(entry_points=True):
        assert main(["plugins"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row == {
        "name": "signals",
        "version": metadata.version("flowbridge-signals"),
        "hooks": ["flowbridge_register_datasets", "flowbridge_register_domains"],
        "domains": ["signal"],
        "datasets": ["chords"],
    }
