"""Fixtures of the COCO plugin's tests: the tiny COCO of :mod:`flowbridge_coco.testing` in a
temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from flowbridge_coco.testing import TinyCoco, write_tiny_coco


@pytest.fixture
def tiny_coco(tmp_path: Path) -> TinyCoco:
    return write_tiny_coco(tmp_path / "coco")
