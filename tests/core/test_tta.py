"""Test-time augmentation (``cryopick.tta``): maps come back to the original frame and are averaged exactly."""

from __future__ import annotations

import numpy as np
import pytest

from cryopick.tta import TTA_SIZES, augmented_score_map, forward, inverse, points_back, transforms


def _column_ramp(x: np.ndarray) -> np.ndarray:
    """A scorer that is not rotation invariant: each pixel times its column index."""
    return x * np.arange(x.shape[1], dtype=np.float32)[None, :]


@pytest.mark.parametrize("n", TTA_SIZES)
def test_an_invariant_scorer_is_unchanged(n):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(37, 52)).astype(np.float32)  # not square: quarter turns transpose the shape
    np.testing.assert_allclose(augmented_score_map(lambda x: 2.0 * x, image, n), 2.0 * image, rtol=1e-6)


def test_each_map_is_mapped_back_before_averaging():
    # Column ramp j under a half turn becomes (W-1-j) in the original frame: the mean is (W-1)/2 everywhere.
    # With the four rotations of a square image the row ramps join: (j + W-1-j + i + W-1-i) / 4, also (W-1)/2.
    image = np.random.default_rng(1).normal(size=(24, 24)).astype(np.float32)
    assert not np.allclose(augmented_score_map(_column_ramp, image, 1), image * 11.5)
    for n in (2, 4, 8):
        np.testing.assert_allclose(augmented_score_map(_column_ramp, image, n), image * 11.5, rtol=1e-5, atol=1e-5)


def test_a_feature_off_centre_lands_where_it_was():
    # A scorer that answers 1 at its input's top-left pixel: averaged over the 8 transforms, each of the four
    # corners of the original image gets 1/4 (2 of the 8 transforms put it at the top left).
    image = np.zeros((9, 13), dtype=np.float32)

    def top_left(x):
        out = np.zeros_like(x)
        out[0, 0] = 1.0
        return out

    m = augmented_score_map(top_left, image, 8)
    assert m.shape == image.shape
    for corner in [(0, 0), (0, 12), (8, 0), (8, 12)]:
        assert m[corner] == pytest.approx(0.25)
    assert m.sum() == pytest.approx(1.0)


def test_bad_arguments_are_named():
    image = np.zeros((8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="3 transforms"):
        augmented_score_map(lambda x: x, image, 3)
    with pytest.raises(ValueError, match="size of its input"):
        augmented_score_map(lambda x: x[:4], image, 2)
    with pytest.raises(ValueError, match="2-D"):
        augmented_score_map(lambda x: x, np.zeros((2, 8, 8)), 2)


@pytest.mark.parametrize("turns,mirror", transforms(8))
def test_points_come_back_to_the_pixel_they_were_on(turns, mirror):
    # A marked pixel of a non-square image, found in the transformed image and mapped back; a point half a
    # pixel off its centre keeps its offset, turned back with it.
    image = np.zeros((5, 8))
    image[1, 6] = 1.0
    turned = forward(image, turns, mirror)
    r, c = np.argwhere(turned)[0]
    back = points_back(np.array([[c, r], [c + 0.5, r]]), image.shape, turns, mirror)
    np.testing.assert_allclose(back[0], [6.0, 1.0])
    assert np.isclose(np.abs(back[1] - back[0]).sum(), 0.5)
    np.testing.assert_array_equal(inverse(turned, turns, mirror), image)
