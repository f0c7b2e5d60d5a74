"""Re-centred candidates (``recentre``): mae moves each candidate of its score grid to the best match of a
template made from the exemplars, which brings candidates closer to the true centres; the template is stored
with the model, and models stored without one pick as before."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from .test_picker import TINY_SETTINGS  # noqa: E402


def _picker(**extra):
    from cryopick.host import build_host
    from cryopick.pickers import make_picker

    return make_picker(build_host(), "mae", {**TINY_SETTINGS, "centre_windows": "512", **extra}, "cpu", 0)


def _trained(simulated_micrograph, **extra):
    from cryopick.picker import TrainingData, TrainingItem

    picker = _picker(**extra)
    item = TrainingItem("m0", simulated_micrograph.image, simulated_micrograph.truth.subset(slice(0, 5)))
    return picker, picker.train(TrainingData([item], 24.0))


def _offsets(candidates, truth, diameter=24.0):
    """Distance from each true particle to its nearest candidate (px), for particles that have one within
    half a diameter."""
    d = np.linalg.norm(truth.xy[:, None] - candidates.xy[None], axis=2).min(axis=1)
    return d[d < diameter / 2]


def test_the_template_is_the_exemplars_and_is_stored(simulated_micrograph):
    from cryopick.recentre import radial_template

    _, state = _trained(simulated_micrograph)
    expected = radial_template(simulated_micrograph.image, simulated_micrograph.truth.xy[:5], 24.0)  # 1 diameter
    np.testing.assert_allclose(state.arrays["centre_template"], expected)
    _, plain = _trained(simulated_micrograph, recentre="0", correlation="0")
    assert "centre_template" not in plain.arrays and "correlation_clip" not in plain.arrays


def test_candidates_of_an_off_centre_score_grid_come_back_to_the_particles(simulated_micrograph):
    """A score grid that peaks a stride right of and below every particle (as on crowded micrographs, where a
    window holds parts of its neighbours): without re-centring every candidate is that far off, with it they
    are back within a pixel or two."""
    image, truth = simulated_micrograph.image, simulated_micrograph.truth
    picker, _ = _trained(simulated_micrograph)
    grid, x0, y0, step, window = picker.score_grid(image, 24.0)
    picker.score_grid = lambda im, d: (grid, x0 + step, y0 + step, step, window)  # every peak moved by (4, 4) px
    moved = picker.score(image, 24.0)
    template = picker._template
    picker._template = None
    off = picker.score(image, 24.0)
    picker._template = template
    before, after = _offsets(off, truth), _offsets(moved, truth)
    assert len(after) >= len(before) - 1
    assert np.median(before) > 4.0 and np.median(after) < 2.0, (np.median(before), np.median(after))


def test_saved_model_picks_as_trained_and_old_models_keep_the_grid_peaks(simulated_micrograph):
    from cryopick.picker import ModelState

    picker, state = _trained(simulated_micrograph)
    image = simulated_micrograph.image
    expected = picker.score(image, 24.0)
    loaded = _picker()
    loaded.load(state)
    np.testing.assert_allclose(loaded.score(image, 24.0).xy, expected.xy, atol=1e-4)
    # a model stored before re-centring existed has no template: it picks as recentre=0 does
    old = ModelState({k: v for k, v in state.arrays.items() if k not in ("centre_template", "correlation_clip")},
                     state.config)
    legacy, off = _picker(), _picker(recentre="0", correlation="0")
    legacy.load(old)
    off.load(state)
    np.testing.assert_allclose(legacy.score(image, 24.0).xy, off.score(image, 24.0).xy, atol=1e-6)
    plain = off.score(image, 24.0)
    assert len(plain) != len(expected) or not np.allclose(plain.xy, expected.xy, atol=1e-3)


def test_bad_recentre_settings_are_clear_errors():
    from cryopick.errors import ConfigError

    with pytest.raises(ConfigError, match="recentre"):
        _picker(recentre="-0.1")
    with pytest.raises(ConfigError, match="recentre_template"):
        _picker(recentre_template="0")
    with pytest.raises(ConfigError, match="correlation"):
        _picker(correlation="-0.1")


def test_the_correlation_term_alone_ranks_the_particles_first(simulated_micrograph):
    """A score grid that says nothing (every window equal): the template's correlation term alone must put the
    simulated particles ahead of the background; without it the ranking is arbitrary."""
    image, truth = simulated_micrograph.image, simulated_micrograph.truth
    picker, state = _trained(simulated_micrograph)
    assert "correlation_clip" in state.arrays and picker.config.correlation == pytest.approx(0.1)
    grid, x0, y0, step, window = picker.score_grid(image, 24.0)
    picker.score_grid = lambda im, d: (np.zeros_like(grid), x0, y0, step, window)
    ranked = picker.score(image, 24.0)
    top = ranked.subset(np.argsort(-ranked.score)[: len(truth)])
    near = np.linalg.norm(top.xy[:, None] - truth.xy[None], axis=2).min(axis=1) < 0.3 * 24.0
    assert near.mean() > 0.8, near.mean()
    assert np.ptp(ranked.score) > 0
    picker._correlation = None  # as correlation=0 (or a model stored before the term) scores
    assert np.ptp(picker.score(image, 24.0).score) == 0


def test_the_cut_takes_in_the_exemplars_correlation_term(simulated_micrograph):
    """The calibration adds each exemplar's (leave-one-out, clipped) term to its score, so a constant term
    moves the cut by exactly that much."""
    picker, _ = _trained(simulated_micrograph)
    exemplars = simulated_micrograph.truth.subset(slice(0, 5))
    clip = picker._correlation
    picker._exemplar_z = np.full(5, clip + 1.0)  # above the clip: every exemplar's term is 0.1 * clip
    with_term = picker._calibrate(simulated_micrograph.image, exemplars, 24.0, np.random.default_rng(3))
    picker._correlation = None
    without = picker._calibrate(simulated_micrograph.image, exemplars, 24.0, np.random.default_rng(3))
    assert with_term["threshold"] - without["threshold"] == pytest.approx(0.1 * clip, rel=1e-5)
