"""flowbridge-signals: a flowbridge plugin for 1-D signals (the tutorial in docs/plugins.md).

This module is the plugin: the ``flowbridge`` entry point in ``pyproject.toml`` names it, and
flowbridge calls its ``@flowbridge.hookimpl`` functions to learn what it provides.
"""

import flowbridge

from .dataset import ChordsDataset
from .domain import SignalDomain

__all__ = ["SignalDomain", "ChordsDataset"]


@flowbridge.hookimpl
def flowbridge_register_domains(register):
    register(SignalDomain)


@flowbridge.hookimpl
def flowbridge_register_datasets(register):
    register(ChordsDataset)
