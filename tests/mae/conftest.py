import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (cryopick.testing)."""


#: A tiny vit-mae for fast tests.
TINY = dict(image_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, decoder_dim=32, decoder_depth=1,
            decoder_heads=2)
