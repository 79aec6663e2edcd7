"""Fixtures of the shapes plugin's tests."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest


@pytest.fixture
def sigterm_when():
    """``sigterm_when(ready)``: a thread that sends this process SIGTERM (as ``kill`` would)
    as soon as ``ready()`` is true, to stop a run midway. It gives up after 60 s (the run ended
    otherwise: the test's assertions say how) and is joined before the test ends."""
    threads = []

    def start(ready) -> None:
        def wait_then_terminate() -> None:
            deadline = time.monotonic() + 60
            while not ready():
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
            os.kill(os.getpid(), signal.SIGTERM)

        thread = threading.Thread(target=wait_then_terminate, daemon=True)
        thread.start()
        threads.append(thread)

    yield start
    for thread in threads:
        thread.join(timeout=60)
