"""The topaz picker's fast disk NMS and fused scoring equal the reference computations."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from cryopick.nms import disk_footprint
from cryopick.nms import peak_local_max as core_peak_local_max
from cryopick_topaz.models import build_backbone, score_map
from cryopick_topaz.nms import disk_maximum_filter, peak_local_max


@pytest.mark.parametrize("radius", [1.0, 1.5, 2.9, 3.0, 7.5, 15.0, 15.7])
def test_disk_maximum_equals_footprint_filter(radius):
    rng = np.random.default_rng(int(radius * 10))
    s = ndimage.gaussian_filter(rng.normal(size=(97, 83)).astype(np.float32), 2)
    ref = ndimage.maximum_filter(s, footprint=disk_footprint(radius), mode="constant", cval=-np.inf)
    np.testing.assert_array_equal(disk_maximum_filter(s, radius), ref)
    a, b = core_peak_local_max(s, radius), peak_local_max(s, radius)
    np.testing.assert_array_equal(a.xy, b.xy)
    np.testing.assert_array_equal(a.score, b.score)


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
