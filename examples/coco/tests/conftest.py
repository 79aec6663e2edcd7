"""Fixtures of the COCO example's tests: the registry its run configurations need."""

from __future__ import annotations

import pytest

import flowbridge.plugins
import flowbridge_coco.plugin
import flowbridge_image.plugin
import flowbridge_text.plugin


@pytest.fixture(autouse=True)
def plugins():
    """The image, text and coco plugins registered in a fresh registry (the configurations name
    their domains and dataset), whatever entry points are installed."""
    with flowbridge.plugins.isolated(
        flowbridge_image.plugin, flowbridge_text.plugin, flowbridge_coco.plugin
    ) as registry:
        yield registry
