import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread in tests: deterministic, and immune to OpenMP slow-downs on a busy 2-core machine."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
