"""The pluggy entry point: registers :class:`~flowbridge_coco.CocoDataset` as ``"coco"``."""

from __future__ import annotations

import flowbridge

from .dataset import CocoDataset

__all__ = ["flowbridge_register_datasets"]


@flowbridge.hookimpl
def flowbridge_register_datasets(register):
    """Register the ``"coco"`` dataset."""
    register(CocoDataset)
