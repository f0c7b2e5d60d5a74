"""The topaz picker's fused scoring (BatchNorm folded into the convolutions) equals the unfused model."""

import numpy as np
import torch

from cryopick_topaz.models import build_backbone, score_map


def test_fused_scoring_equals_unfused():
    torch.manual_seed(0)
    model = build_backbone("resnet8", 4)
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
    model.train()
    image = np.random.default_rng(0).normal(size=(61, 45)).astype(np.float32)
    fused = score_map(model, image, tile=32, batch=2)
    plain = score_map(model, image, tile=32, batch=2, fuse=False)
    np.testing.assert_allclose(fused, plain, rtol=1e-4, atol=1e-4)
    assert model.training and not model._fill  # the caller's model is untouched
    assert all(isinstance(m.bn, torch.nn.BatchNorm2d) for m in model.features if hasattr(m, "bn"))
