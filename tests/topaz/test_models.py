"""Architectures: receptive fields, exact fully convolutional (fill-mode) scoring, tiling."""

import numpy as np
import pytest
import torch

from cryopick_topaz.models import BACKBONES, build_backbone, score_map


def _randomise_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    model.eval()
    return model


@pytest.mark.parametrize("name,rf,stride", [("resnet8", 71, 4), ("resnet16", 91, 4), ("conv31", 31, 4),
                                            ("conv63", 63, 8), ("conv127", 127, 16)])
def test_receptive_fields(name, rf, stride):
    model = build_backbone(name, 4)
    assert (model.receptive_field, model.stride) == (rf, stride)
    out = model(torch.zeros(2, 1, rf, rf))
    assert out.shape == (2, 1, 1, 1)
    assert set(BACKBONES) == {"resnet8", "resnet16", "conv31", "conv63", "conv127"}


@pytest.mark.parametrize("name", ["resnet8", "conv31"])
def test_fill_equals_patchwise(name):
    torch.manual_seed(0)
    model = _randomise_bn(build_backbone(name, 4))
    rng = np.random.default_rng(0)
    image = rng.normal(size=(23, 19)).astype(np.float32)
    logits = score_map(model, image)
    assert logits.shape == image.shape
    r = model.radius
    padded = np.pad(image, r)
    crops = np.stack([padded[y: y + 2 * r + 1, x: x + 2 * r + 1] for y in range(23) for x in range(19)])
    with torch.no_grad():
        patchwise = model(torch.from_numpy(crops)[:, None]).reshape(23, 19).numpy()
    np.testing.assert_allclose(logits, patchwise, rtol=1e-4, atol=1e-4)


def test_tiled_equals_untiled():
    torch.manual_seed(1)
    model = _randomise_bn(build_backbone("resnet8", 4), seed=1)
    image = np.random.default_rng(1).normal(size=(70, 53)).astype(np.float32)
    whole = score_map(model, image, tile=512)
    tiled = score_map(model, image, tile=16, batch=3)
    np.testing.assert_allclose(tiled, whole, rtol=1e-5, atol=1e-5)
    assert not model._fill  # left in crop mode


def test_tiles_are_split_evenly():
    """A side just over the tile size is cut into equal tiles, not padded out to whole tiles: a 70 x 53 image
    with 40 px tiles scores 4 tiles of 35 x 27 (not 4 of 40 x 40, 1.7x the pixels), and still exactly."""
    torch.manual_seed(2)
    model = _randomise_bn(build_backbone("resnet8", 4), seed=2)
    image = np.random.default_rng(2).normal(size=(70, 53)).astype(np.float32)
    shapes = []
    hook = model.register_forward_hook(lambda m, args, out: shapes.append(tuple(out.shape)))
    tiled = score_map(model, image, tile=40, batch=4, fuse=False)
    hook.remove()
    assert shapes == [(4, 1, 35, 27)]
    np.testing.assert_allclose(tiled, score_map(model, image, tile=512), rtol=1e-5, atol=1e-5)
