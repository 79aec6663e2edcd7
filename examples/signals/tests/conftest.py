"""Settings for the signals plugin's tests (which also run alone, outside flowbridge's suite)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread_and_a_seed():
    # These models are tiny: intra-op threads only add overhead, and on a shared CPU they
    # cost several times the run time. The previous setting is restored afterwards.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(threads)
