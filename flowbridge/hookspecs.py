"""The hooks a flowbridge plugin can implement (pluggy project name ``"flowbridge"``).

A plugin is a module (or any object) whose hook functions carry ``@flowbridge.hookimpl``. Both
hooks follow the register-callback pattern: the plugin calls ``register(cls)`` once per class,
and ``register`` validates the class at once, so a mistake fails when the plugin loads, with
an error that names the plugin. ``docs/plugins.md`` has a reference entry and an example for
every hook here.
"""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from .domain import Domain, PairedDataset

__all__ = [
    "PROJECT",
    "hookspec",
    "hookimpl",
    "flowbridge_register_domains",
    "flowbridge_register_datasets",
]

PROJECT = "flowbridge"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def flowbridge_register_domains(register: Callable[[type[Domain]], None]) -> None:
    """Register domain classes: call ``register(DomainSubclass)`` once per domain.

    Example::

        @flowbridge.hookimpl
        def flowbridge_register_domains(register):
            register(SignalDomain)
    """


@hookspec
def flowbridge_register_datasets(register: Callable[[type[PairedDataset]], None]) -> None:
    """Register paired-dataset classes: call ``register(PairedDatasetSubclass)`` once each.

    Example::

        @flowbridge.hookimpl
        def flowbridge_register_datasets(register):
            register(ChordsDataset)
    """
