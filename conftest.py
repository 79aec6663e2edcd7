"""Test settings shared by the whole suite (the core's tests, the plugins' and the examples').

* Hypothesis runs derandomized (the same examples every run) with a profile sized for CI;
  ``HYPOTHESIS_PROFILE=dev`` runs fewer examples, ``thorough`` many more.
* Plugins are never auto-loaded from entry points: tests register what they need in code.
* One torch thread: the test models are tiny, where intra-op threads only add overhead (and
  on a shared CPU they made small recurrent and conv steps 4-15x slower).
* Every test starts from the same torch seed.
* SIGINT is Python's KeyboardInterrupt in every test, however the suite was started: a shell
  starts a background job with SIGINT ignored, and training rightly keeps an ignored signal
  ignored, which would fail the tests that interrupt a run.
"""

from __future__ import annotations

import os
import signal

import pytest
import torch
from hypothesis import HealthCheck, settings

os.environ.setdefault("FLOWBRIDGE_LOAD_PLUGINS", "")
torch.set_num_threads(1)

_common = dict(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", max_examples=200, **_common)
settings.register_profile("dev", max_examples=25, **_common)
settings.register_profile("thorough", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _interruptible():
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


@pytest.fixture
def keep_threads():
    """Restore torch's thread count, a process-wide setting, after a test of a script that
    sets it (the benchmarks' and examples' ``--threads``)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
