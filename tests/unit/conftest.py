import pytest
import torch


@pytest.fixture(scope="module")
def single_thread():
    """One torch thread for a module of tiny convolutions: fastest there, and no thread contention on a
    busy machine (use with ``pytestmark = pytest.mark.usefixtures("single_thread")``)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def restore_grad_mode():
    """The benchmarks' ``main`` turns autograd off for the process (they only sample); tests that call
    them in-process must not leak that into the next test."""
    enabled = torch.is_grad_enabled()
    yield
    torch.set_grad_enabled(enabled)
