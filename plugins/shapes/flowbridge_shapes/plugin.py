"""flowbridge plugin entry point: registers the "shapes" dataset."""

from __future__ import annotations

from flowbridge import hookimpl

from .dataset import ShapesDataset


@hookimpl
def flowbridge_register_datasets(register):
    register(ShapesDataset)
