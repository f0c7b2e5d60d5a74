import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: deterministic and immune to OpenMP slow-downs on a busy 2-core machine."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


#: A tiny vit-mae for fast tests.
TINY = dict(image_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1,
            decoder_heads=2)
