"""The pluggy entry point: registers :class:`~flowbridge_image.ImageDomain` as ``"image"``."""

from __future__ import annotations

from flowbridge import hookimpl

from .domain import ImageDomain

__all__ = ["flowbridge_register_domains"]


@hookimpl
def flowbridge_register_domains(register):
    """Register the ``"image"`` domain."""
    register(ImageDomain)
