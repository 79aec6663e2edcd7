"""The hooks a flowbridge plugin can implement (pluggy project name ``"flowbridge"``)."""

from __future__ import annotations

import pluggy

__all__ = ["hookspec", "hookimpl"]

hookspec = pluggy.HookspecMarker("flowbridge")
hookimpl = pluggy.HookimplMarker("flowbridge")


@hookspec
def flowbridge_register_domains(register):
    """Register domain classes: call ``register(DomainSubclass)`` once per domain."""


@hookspec
def flowbridge_register_datasets(register):
    """Register paired-dataset classes: call ``register(PairedDatasetSubclass)`` once each."""
