"""The linear probe of ``mae`` (``linear``): a logistic regression of exemplar windows against the reference's
random (unlabelled) windows, whose standardised score is added to the cosine similarity."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from .test_centre import _grid, _trained  # noqa: E402
from .test_picker import TINY_SETTINGS  # noqa: E402


def test_logistic_gradient_matches_finite_differences():
    from scipy.optimize import check_grad

    from cryopick_mae.linear import logistic_objective

    rng = np.random.default_rng(0)
    pos, unl = rng.normal(0.5, 1, (7, 5)), rng.normal(0, 1, (30, 5))
    fun = logistic_objective(pos, unl, c=2.0)
    for p in (np.zeros(6), rng.normal(0, 0.5, 6), rng.normal(0, 3, 6)):
        assert check_grad(lambda q: fun(q)[0], lambda q: fun(q)[1], p) < 1e-5 * (1 + np.abs(fun(p)[1]).sum())
    # at zero: both classes weigh 1/2, so the loss is log 2
    assert fun(np.zeros(6))[0] == pytest.approx(np.log(2))


def test_positive_against_unlabelled_ranks_particles_first():
    """Unlabelled examples are a mixture (20 % positives): the classifier of labelled against unlabelled still
    finds the direction that separates particles from background (Elkan & Noto 2008)."""
    from cryopick_mae.linear import fit_logistic

    rng = np.random.default_rng(1)
    d = 40
    direction = np.zeros(d)
    direction[3] = 1.0
    labelled = rng.normal(0, 1, (60, d)) + 2.5 * direction
    particles = rng.normal(0, 1, (200, d)) + 2.5 * direction
    background = rng.normal(0, 1, (800, d))
    w, b = fit_logistic(labelled, np.concatenate([particles, background]), c=10.0)
    # 60 labels in 40 dimensions: the direction is found up to noise (a random one: cosine ~0 +- 0.16)
    assert w @ direction / np.linalg.norm(w) > 0.6
    s_par, s_bg = particles @ w, background @ w
    auroc = (s_par[:, None] > s_bg[None, :]).mean()
    # the true direction's AUROC on these draws is 0.957; chance is 0.5
    assert auroc > 0.85


def test_jitter_offsets_cover_the_stride_grid():
    from cryopick_mae.linear import jitter_offsets

    off = jitter_offsets(10, 0.5)
    assert off.shape == (9, 2)
    assert set(np.unique(off)) == {-5.0, 0.0, 5.0}
    assert np.allclose(jitter_offsets(10, 0.0), 0)


def test_probe_is_stored_standardised_and_loaded(simulated_micrograph):
    from cryopick.host import build_host
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker

    image = simulated_micrograph.image
    picker, state = _trained(simulated_micrograph)
    dim = state.arrays["exemplar_features"].shape[1]
    assert state.arrays["linear_weight"].shape == (dim,)
    mc, sc, ml, sl = state.arrays["linear_norm"]
    assert sc > 0 and sl > 0
    # standardised over the reference's random windows: their cosine and probe scores have mean mc, ml
    assert -1.0 <= mc <= 1.0
    with_probe = _grid(picker, image)

    # a saved model scores as trained
    loaded = make_picker(build_host(), "mae", TINY_SETTINGS, "cpu", 0)
    loaded.load(state)
    assert np.allclose(_grid(loaded, image), with_probe, atol=1e-5)

    # linear=false scores by the cosine alone; a model saved before the probe existed does the same
    cosine = make_picker(build_host(), "mae", {**TINY_SETTINGS, "linear": "false"}, "cpu", 0)
    cosine.load(state)
    old = ModelState({k: v for k, v in state.arrays.items() if not k.startswith("linear_")}, state.config)
    legacy = make_picker(build_host(), "mae", TINY_SETTINGS, "cpu", 0)
    legacy.load(old)
    cos_grid = _grid(cosine, image)
    assert np.allclose(_grid(legacy, image), cos_grid, atol=1e-6)
    assert cos_grid.max() <= 1.0 + 1e-5  # a cosine
    assert not np.allclose(cos_grid, with_probe, atol=1e-3)


def test_training_without_the_probe_stores_none(simulated_micrograph):
    _, state = _trained(simulated_micrograph, linear="false")
    assert "linear_weight" not in state.arrays and "linear_norm" not in state.arrays
