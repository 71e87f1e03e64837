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
