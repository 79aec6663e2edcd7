"""Fixtures for the text plugin's tests: a handful of captions and a tiny fitted domain."""

from __future__ import annotations

import pytest
import torch

from flowbridge.domain import LatentSpec
from flowbridge_text import TextDomain

CAPTIONS = [
    "A red circle at the top left.",
    "a blue square at the bottom right",
    "Two green triangles, side by side!",
    "a small red square on the left",
    "the large blue circle is in the middle.",
    "a green circle and a red square",
]

TINY = dict(embedding=12, hidden=16, decoder_hidden=24, layers=1, min_count=1)


@pytest.fixture
def captions() -> list[str]:
    return list(CAPTIONS)


@pytest.fixture
def domain() -> TextDomain:
    """A tiny text domain fitted on :data:`CAPTIONS` (dropouts at their defaults)."""
    torch.manual_seed(0)
    domain = TextDomain(**TINY)
    domain.fit(CAPTIONS)
    return domain


@pytest.fixture
def spec() -> LatentSpec:
    return LatentSpec(shared=6, residual=3)
