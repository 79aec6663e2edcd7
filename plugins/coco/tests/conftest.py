"""Fixtures of the COCO plugin's tests: the tiny COCO of :mod:`flowbridge_coco.testing` in a
temporary folder, one thread and a seed per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from flowbridge_coco.testing import TinyCoco, write_tiny_coco

# Plugins are registered in code, never loaded from whatever happens to be installed.
os.environ.setdefault("FLOWBRIDGE_LOAD_PLUGINS", "")


@pytest.fixture
def tiny_coco(tmp_path: Path) -> TinyCoco:
    return write_tiny_coco(tmp_path / "coco")


@pytest.fixture(autouse=True)
def _one_thread_and_a_seed():
    # Tiny models: intra-op threads only add overhead on a shared CPU. Restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
