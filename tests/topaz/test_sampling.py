"""pi from the true 2-D disk count, positive masks, crops and augmentation."""

import numpy as np
import pytest
import torch

from cryopick.particles import Particles
from cryopick_topaz.sampling import (
    CropSampler,
    augment,
    class_prior,
    disk_pixel_count,
    positive_mask,
    unlabelled_prior,
)


def test_disk_count_is_two_dimensional():
    assert [disk_pixel_count(r) for r in (0, 1, 2, 3)] == [1, 5, 13, 29]  # not 203 (3-D ball) for r=3
    assert disk_pixel_count(3) == positive_mask((20, 20), Particles([10], [10]), 3).sum()


def test_class_prior():
    assert class_prior(100, 3, 1000 * 1000) == pytest.approx(100 * 29 / 1e6)
    assert unlabelled_prior(0.01, 0.004) == pytest.approx(0.006 / 0.996)
    assert unlabelled_prior(0.01, 0.01) == pytest.approx(1e-3)  # floor when labels are complete


def test_positive_mask_edges():
    mask = positive_mask((10, 10), Particles([0, 9.4], [0, 5]), 2)
    assert mask[0, 0] and mask[0, 2] and mask[5, 9] and not mask[5, 6]
    assert mask.sum() == 6 + 9  # the parts of two 13-pixel disks inside the image


def test_crops_are_centred():
    image = np.zeros((40, 40), dtype=np.float32)
    image[20, 30] = 1.0
    mask = positive_mask(image.shape, Particles([30], [20]), 0)
    sampler = CropSampler([image], [mask], 7, np.random.default_rng(0))
    crops = sampler.positives(5)
    assert crops.shape == (5, 7, 7) and np.all(crops[:, 3, 3] == 1.0) and crops.sum() == 5
    unl = sampler.unlabelled(200)
    assert np.all(unl[:, 3, 3] == 0.0)


def test_augment_keeps_centre():
    x = torch.zeros(8, 1, 11, 11)
    x[:, :, 5, 5] = 1.0
    out = augment(x, 7, torch.Generator().manual_seed(0))
    assert out.shape == (8, 1, 7, 7)
    assert torch.allclose(out[:, 0, 3, 3], torch.ones(8), atol=1e-5)


@pytest.mark.parametrize("rotate", [True, False])
def test_augment_is_affine_grid_rotation_then_flips(rotate):
    """The same random rotation and flips as F.affine_grid + grid_sample, then flipping the output (what
    augment computes with one broadcast grid): equal to float rounding, for the same generator state."""
    import math

    import torch.nn.functional as F

    x = torch.randn(64, 1, 31, 31, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(7)
    b, out_size = x.shape[0], 21
    if rotate:
        theta = torch.rand(b, generator=g) * (2 * math.pi)
        k = out_size / x.shape[-1]
        mat = torch.zeros(b, 2, 3)
        mat[:, 0, 0], mat[:, 0, 1] = k * torch.cos(theta), -k * torch.sin(theta)
        mat[:, 1, 0], mat[:, 1, 1] = k * torch.sin(theta), k * torch.cos(theta)
        grid = F.affine_grid(mat, (b, 1, out_size, out_size), align_corners=False)
        ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    else:
        ref = x[:, :, 5:26, 5:26]
    flips = torch.rand(b, 2, generator=g) < 0.5
    ref = torch.where(flips[:, 0, None, None, None], ref.flip(-1), ref)
    ref = torch.where(flips[:, 1, None, None, None], ref.flip(-2), ref)
    assert flips[:, 0].any() and (~flips[:, 0]).any() and flips[:, 1].any()
    out = augment(x, out_size, torch.Generator().manual_seed(7), rotate=rotate)
    assert out.shape == ref.shape and out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-4)
