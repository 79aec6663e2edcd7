"""The flowbridge plugin entry point: registers :class:`~flowbridge_text.domain.TextDomain`."""

from __future__ import annotations

import flowbridge

from .domain import TextDomain

__all__ = ["flowbridge_register_domains"]


@flowbridge.hookimpl
def flowbridge_register_domains(register):
    """Register the ``"text"`` domain."""
    register(TextDomain)
