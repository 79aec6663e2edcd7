"""The pluggy entry point: registers :class:`~flowbridge_image.ImageDomain` as ``"image"``."""

from __future__ import annotations

from flowbridge import hookimpl

from .domain import ImageDomain


@hookimpl
def flowbridge_register_domains(register):
    register(ImageDomain)
