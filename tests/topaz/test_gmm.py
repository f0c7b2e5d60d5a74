"""GMM normalisation on a synthetic two-component image."""

import numpy as np
import pytest

from cryopick_topaz.gmm import GMMNormalize, fit_gmm


def test_two_component_image():
    rng = np.random.default_rng(0)
    image = rng.normal(5.0, 2.0, size=(400, 400)).astype(np.float32)  # background
    dark = rng.random(image.shape) < 0.15
    image[dark] = rng.normal(-4.0, 2.0, size=dark.sum())  # dark particles / carbon
    norm = GMMNormalize()
    out = norm(image)
    fit = norm.last_fit
    assert fit.method == "gmm"
    assert fit.mu == pytest.approx(5.0, abs=0.1)
    assert fit.sigma == pytest.approx(2.0, abs=0.1)
    assert fit.mu_other == pytest.approx(-4.0, abs=0.3)
    assert fit.weight == pytest.approx(0.85, abs=0.02)
    bg = out.image[~dark]
    assert bg.mean() == pytest.approx(0.0, abs=0.05) and bg.std() == pytest.approx(1.0, abs=0.05)
    assert out.factor == (1.0, 1.0) and out.image.dtype == np.float32
    # Affine normalisation would be pulled by the dark component; GMM is not.
    affine = (image - image.mean()) / image.std()
    assert abs(affine[~dark].mean()) > 0.3


def test_single_gaussian_and_fallback():
    rng = np.random.default_rng(1)
    fit = fit_gmm(rng.normal(3.0, 0.5, 50_000))
    assert fit.mu == pytest.approx(3.0, abs=0.05) and fit.sigma == pytest.approx(0.5, abs=0.05)
    const = GMMNormalize()(np.full((32, 32), 7.0, dtype=np.float32))
    assert np.all(const.image == 0)
    assert fit_gmm(np.full(100, 7.0)).method == "affine"


def test_deterministic():
    image = np.random.default_rng(2).normal(size=(600, 600)).astype(np.float32)
    a, b = GMMNormalize()(image).image, GMMNormalize()(image).image
    assert np.array_equal(a, b)
