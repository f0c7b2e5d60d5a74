"""vit-mae: masking ratio, reconstruction of masked patches only, shapes, position embeddings."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryopick_mae.model import MaskedAutoencoderViT, sincos_2d  # noqa: E402

from .conftest import TINY  # noqa: E402


@pytest.fixture
def model():
    torch.manual_seed(0)
    return MaskedAutoencoderViT(**TINY)


def test_masking_ratio_and_per_sample_shuffle(model):
    x = torch.randn(8, 1, 16, 16)
    latent, mask, restore = model.encode(x, 0.75)
    n = model.num_patches  # 16 patches
    assert mask.shape == (8, n)
    assert torch.all(mask.sum(dim=1) == 12)  # 75 % masked in every sample
    assert latent.shape == (8, 1 + 4, 32)  # CLS + the 4 visible patches only
    assert len({tuple(m.tolist()) for m in mask}) > 1  # each sample has its own random mask
    pred = model.decode(latent, restore)
    assert pred.shape == (8, n, 16)


def test_loss_counts_only_masked_patches(model):
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        latent, mask, restore = model.encode(x, 0.75)
        pred = model.decode(latent, restore)
        loss = model.reconstruction_loss(x, pred, mask)
        # Change the target inside the visible patches only: the loss must not move.
        patches = model.patchify(x)
        changed = patches + 100.0 * (1 - mask)[:, :, None]
        assert float(model.reconstruction_loss(model.unpatchify(changed), pred, mask)) == pytest.approx(float(loss))
        # Changing a masked patch does move it.
        changed = patches + 1.0 * mask[:, :, None]
        assert float(model.reconstruction_loss(model.unpatchify(changed), pred, mask)) != pytest.approx(float(loss))
        # Hand computation: mean over masked patches of the per-patch MSE.
        per_patch = ((pred - patches) ** 2).mean(-1)
        assert float(loss) == pytest.approx(float(per_patch[mask.bool()].mean()), rel=1e-5)


def test_patchify_round_trip(model):
    x = torch.randn(2, 1, 16, 16)
    assert torch.equal(model.unpatchify(model.patchify(x)), x)


def test_features_unmasked_shape_and_determinism(model):
    x = torch.randn(3, 1, 16, 16)
    model.eval()
    with torch.inference_mode():
        a, b = model.features(x), model.features(x)
    assert a.shape == (3, 32) and torch.equal(a, b)


def test_sincos_position_embedding():
    emb = sincos_2d(16, 4)
    assert emb.shape == (17, 16)
    assert np.all(emb[0] == 0)  # CLS
    assert len({tuple(r) for r in emb[1:].round(6)}) == 16  # every patch position distinct


def test_freezing_first_blocks(model):
    model.freeze_encoder_blocks(1)
    assert not any(p.requires_grad for p in model.blocks[0].parameters())
    assert all(p.requires_grad for p in model.blocks[1].parameters())
    assert not model.patch_embed.weight.requires_grad
