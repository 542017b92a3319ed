import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny tensors: one thread avoids the synchronisation cost of a thread pool on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
