"""Settings for the image plugin's tests when they run on their own (``pytest plugins/image``),
where the suite's ``tests/conftest.py`` is not loaded."""

from __future__ import annotations

import os

import pytest
import torch

# Register plugins in code only, as the rest of the suite does.
os.environ.setdefault("FLOWBRIDGE_LOAD_PLUGINS", "")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
