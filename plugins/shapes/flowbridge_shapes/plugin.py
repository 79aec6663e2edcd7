"""flowbridge plugin entry point: registers the "shapes" dataset."""

from __future__ import annotations

from flowbridge import hookimpl

from .dataset import ShapesDataset

__all__ = ["flowbridge_register_datasets"]


@hookimpl
def flowbridge_register_datasets(register):
    """Register :class:`ShapesDataset` as "shapes"."""
    register(ShapesDataset)
