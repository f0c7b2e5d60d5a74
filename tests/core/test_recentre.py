"""Re-centring candidates on a template of the labelled particles (``cryopick.recentre``): on an image whose
particle centres are known, shifted candidates come back to them, scores and order untouched."""

import numpy as np
import pytest

from cryopick.particles import Particles
from cryopick.recentre import (
    CONTAMINANT_REACH,
    capped_correlation,
    correlation_map,
    correlation_norm,
    correlation_score,
    parabola_offset,
    radial_template,
    recentre,
    self_correlation,
    standardised_correlation,
)


def _disk_image(centres, shape=(160, 200), radius=8.0, noise=0.0, seed=0):
    """Soft disks (value 1 inside ``radius``) at ``centres`` (x, y, may be fractional) on a zero background."""
    yy, xx = np.mgrid[0: shape[0], 0: shape[1]].astype(np.float64)
    image = np.zeros(shape)
    for x, y in centres:
        image += 1.0 / (1.0 + np.exp(2.0 * (np.hypot(xx - x, yy - y) - radius)))
    return image + noise * np.random.default_rng(seed).normal(size=shape)


CENTRES = np.array([[40.3, 40.0], [100.0, 52.6], [150.7, 110.2], [60.0, 120.0], [125.0, 30.4]])


def test_radial_template_is_rotationally_averaged_zero_mean_and_zero_outside_its_disk():
    image = _disk_image(CENTRES)
    t = radial_template(image, CENTRES, 10.0)
    assert t.shape == (21, 21) and t.dtype == np.float32
    yy, xx = np.mgrid[-10:11, -10:11]
    inside = np.rint(np.hypot(xx, yy)) <= 10
    assert np.all(t[~inside] == 0) and abs(float(t[inside].mean())) < 1e-6
    np.testing.assert_allclose(t, np.rot90(t), atol=1e-6)  # a quarter turn changes nothing
    np.testing.assert_allclose(t, t[:, ::-1], atol=1e-6)
    assert t[10, 10] > 0 > t[10, 0]  # the particle's inside is above the template's mean, the ring outside below
    with pytest.raises(ValueError, match="at least one"):
        radial_template(image, np.zeros((0, 2)), 10.0)


def test_shifted_candidates_move_back_to_the_particle_centres():
    image = _disk_image(CENTRES, noise=0.05)
    template = radial_template(image, CENTRES[:3], 10.0)  # "labelled": three of the five particles
    rng = np.random.default_rng(1)
    shift = rng.uniform(-4.0, 4.0, size=CENTRES.shape)
    candidates = Particles(CENTRES[:, 0] + shift[:, 0], CENTRES[:, 1] + shift[:, 1], np.arange(5.0)[::-1])
    moved = recentre(candidates, correlation_map(image, template), search_px=6.0)
    before = np.linalg.norm(candidates.xy - CENTRES, axis=1)
    after = np.linalg.norm(moved.xy - CENTRES, axis=1)
    assert before.min() > 1.0 and np.all(after < 0.6), (before, after)
    np.testing.assert_array_equal(moved.score, candidates.score)  # scores and order are the picker's


def test_a_candidate_moves_at_most_the_search_radius_and_stays_inside_the_image():
    image = _disk_image(CENTRES)
    cc = correlation_map(image, radial_template(image, CENTRES, 10.0))
    far = Particles([40.3 + 9.0, 0.0, 199.0], [40.0, 0.0, 159.0], [1.0, 2.0, 3.0])  # 9 px from a particle; corners
    moved = recentre(far, cc, search_px=3.0)
    step = np.linalg.norm(moved.xy - far.xy, axis=1)
    assert np.all(step <= 3.0 + 0.5)  # the disk, plus at most half a pixel of sub-pixel refinement
    assert moved.x[0] < far.x[0]  # towards the particle
    assert np.all(moved.inside(image.shape))
    assert recentre(far, cc, search_px=0.0) is far  # no search: unchanged
    assert len(recentre(Particles.empty(), cc, 3.0)) == 0


def test_parabola_offset_finds_the_vertex():
    # samples of -(t - 0.3)^2 at -1, 0, 1: the vertex at 0.3
    f = lambda t: -(t - 0.3) ** 2  # noqa: E731
    assert parabola_offset(f(-1.0), f(0.0), f(1.0)) == pytest.approx(0.3)
    assert parabola_offset(1.0, 0.0, 1.0) == 0.0  # opens upwards: no vertex to move to
    assert parabola_offset(0.0, 1.0, 1.5) == 0.5  # the vertex 1.5 samples away: clipped to half a sample


def test_correlation_norm_with_more_centres_than_rings_is_the_plain_leave_one_out():
    """With more centres than the template has rings the norm combines one correlation map per ring instead of
    one per centre; it must give what the plain computation gives (the others' template correlated with the whole
    micrograph, standardised over it), at the micrograph's edges too."""
    rng = np.random.default_rng(3)
    centres = np.concatenate([rng.uniform([5, 5], [195, 155], size=(10, 2)), [[0.4, 1.0], [199.0, 158.6]]])
    image = _disk_image(centres, radius=3.0, noise=0.8)
    radius = 4.0  # 5 rings, 12 centres
    _, z = correlation_norm(image, centres, radius, search_px=1.5)
    n = len(centres)
    full = correlation_map(image, radial_template(image, centres, radius))
    for i in range(n):
        own = correlation_map(image, radial_template(image, centres[i:i + 1], radius))
        corr = (n * full - own) / (n - 1)
        at = recentre(Particles(centres[i:i + 1, 0], centres[i:i + 1, 1], np.zeros(1)), corr, 1.5)
        assert z[i] == pytest.approx(correlation_score(corr, at.xy, np.inf)[0], rel=1e-6, abs=1e-6)


def test_correlation_norm_leaves_each_labelled_particle_out_of_its_own_template():
    """At low SNR a particle's own noise is part of a template made with it; the norm scores each labelled
    particle against the template of the others, exactly (the template is linear in the crops), which is
    lower than against the template of all."""
    image = _disk_image(CENTRES, noise=1.5)
    clip, z = correlation_norm(image, CENTRES, 10.0, search_px=3.0)
    for i in range(len(CENTRES)):
        others = np.delete(CENTRES, i, axis=0)
        corr = correlation_map(image, radial_template(image, others, 10.0))
        at = recentre(Particles(CENTRES[i:i + 1, 0], CENTRES[i:i + 1, 1], np.zeros(1)), corr, 3.0)
        assert z[i] == pytest.approx(correlation_score(corr, at.xy, np.inf)[0], rel=1e-4, abs=1e-4)
    full = correlation_map(image, radial_template(image, CENTRES, 10.0))
    own = recentre(Particles(CENTRES[:, 0], CENTRES[:, 1], np.zeros(len(CENTRES))), full, 3.0)
    assert correlation_score(full, own.xy, np.inf).mean() > z.mean()  # the self-correlation it leaves out
    assert clip == pytest.approx(float(np.median(z)))
    one_clip, one = correlation_norm(image, CENTRES[:1], 10.0)  # a single label cannot be left out
    assert one.shape == (1,) and one_clip == pytest.approx(one[0])


def test_standardised_correlation_ignores_contrast_and_contaminants():
    """Robust standard units of each micrograph: the same particles at twice the contrast, or with a dense
    particle-sized contaminant, score (almost) the same; the plain clip caps the contaminant at what the particles
    reach, and by default (it matches the template 3x as well as their median) it falls below every particle."""
    image = _disk_image(CENTRES, noise=0.5)
    template = radial_template(image, CENTRES, 10.0)
    base = correlation_score(correlation_map(image, template), CENTRES, np.inf)
    doubled = correlation_score(correlation_map(2.0 * image, template), CENTRES, np.inf)
    np.testing.assert_allclose(doubled, base, rtol=1e-6)
    dirty = image + 8.0 * _disk_image([(175.0, 140.0)], shape=image.shape, radius=8.0)  # 0.6 % of pixels
    corr = correlation_map(dirty, template)
    np.testing.assert_allclose(correlation_score(corr, CENTRES, np.inf), base, rtol=0.1)
    clip = float(np.median(base))
    assert standardised_correlation(corr)[140, 175] > 3 * clip  # the contaminant, unclipped, beats every particle
    assert correlation_score(corr, np.array([[175.0, 140.0]]), clip, contaminant=0)[0] == pytest.approx(clip)
    particles = correlation_score(corr, CENTRES, clip)
    assert correlation_score(corr, np.array([[175.0, 140.0]]), clip)[0] < particles.min()


def test_capped_correlation_is_level_from_the_clip_to_the_contaminant_bound_and_falls_beyond():
    """min(z, clip) - max(z - 2 clip, 0), by hand; 0 or a non-positive clip keep the plain clip."""
    z = np.array([-1.0, 1.0, 2.0, 3.0, 4.0, 5.0, 7.0])
    np.testing.assert_allclose(capped_correlation(z, 2.0), [-1.0, 1.0, 2.0, 2.0, 2.0, 1.0, -1.0])
    np.testing.assert_allclose(capped_correlation(z, 2.0, contaminant=3.0), [-1.0, 1.0, 2.0, 2.0, 2.0, 2.0, 1.0])
    np.testing.assert_allclose(capped_correlation(z, 2.0, contaminant=0.0), np.minimum(z, 2.0))
    np.testing.assert_allclose(capped_correlation(z, -0.5), np.minimum(z, -0.5))


def test_labels_template_of_several_micrographs_is_that_of_all_crops():
    """labels_correlation's template is the template of all labelled crops (the count-weighted mean of each
    micrograph's, exact by linearity), and its clip the median of every label's leave-one-out z."""
    from cryopick.recentre import correlation_norm, labels_correlation, radial_template

    rng = np.random.default_rng(1)
    image = rng.normal(size=(128, 128)).astype(np.float32)
    centres = rng.uniform(20, 108, size=(9, 2))
    template, clip = labels_correlation([(image, centres[:3]), (image, centres[3:]), (image, centres[:0])], 8.0, 2.0)
    np.testing.assert_allclose(template, radial_template(image, centres, 8.0), atol=1e-6)
    z = np.concatenate([correlation_norm(image, centres[:3], 8.0, 2.0)[1], correlation_norm(image, centres[3:], 8.0,
                                                                                            2.0)[1]])
    assert clip == pytest.approx(float(np.median(z)))
    with pytest.raises(ValueError, match="at least one"):
        labels_correlation([(image, centres[:0])], 8.0)


def test_self_correlation_is_the_labels_correlation_of_the_best_picks():
    """The template comes from the best ``fraction`` of the candidates at the cut (by score), and every candidate
    gets its capped correlation with it; particles score above empty places; too few picks give None."""
    from cryopick.recentre import labels_correlation

    image = _disk_image(CENTRES, noise=0.2)
    empty = np.array([[20.0, 140.0], [180.0, 140.0], [180.0, 80.0], [90.0, 90.0]])
    xy = np.concatenate([CENTRES, empty])
    # an empty place is the best-scored candidate, but the best 5 of the 6 at the cut are mostly particles
    cands = Particles(xy[:, 0], xy[:, 1], np.array([5.0, 4.0, 3.0, 2.0, 1.0, 9.0, -1.0, -2.0, -3.0]))
    term = self_correlation(image, cands, cut=0.0, fraction=5 / 6, diameter_px=16.0, search_px=2.0, minimum=5)
    picked = np.array([5, 0, 1, 2, 3])  # by score: 9, 5, 4, 3, 2
    template, clip = labels_correlation([(image, xy[picked])], 16.0, 2.0)
    np.testing.assert_allclose(term, correlation_score(correlation_map(image, template), xy, clip,
                                                       reach_px=CONTAMINANT_REACH * 16.0))
    assert term[:5].min() > term[5:].max()  # the particles, the one left out of the template included
    assert self_correlation(image, cands, cut=0.0, fraction=0.5, diameter_px=16.0, minimum=5) is None  # 3 picks
    assert self_correlation(image, cands, cut=10.0, fraction=1.0, diameter_px=16.0, minimum=1) is None
