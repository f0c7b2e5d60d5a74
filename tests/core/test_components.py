"""Core components on data whose answer is known: coordinates, preprocessing, thresholds, NMS, DoG, settings."""

import numpy as np
import pytest

from cryopick.config import build_config, parse_diameter, parse_settings
from cryopick.errors import ConfigError
from cryopick.nms import greedy_nms, peak_local_max
from cryopick.particles import Particles
from cryopick.pickers.dog import DoGConfig, DoGPicker
from cryopick.preprocess import Downsample, Normalize, apply_chain, fourier_crop
from cryopick.threshold import Density, Fixed, Otsu, TopK, knn_mean_distance


def test_scaled_maps_fourier_cropped_frames_and_round_trips():
    p = Particles([0.0, 10.5, 99.0], [3.0, 4.0, 5.0], [1, 2, 3])
    down = p.scaled(2.0)
    # Fourier cropping samples the band-limited image at x' f: original pixel 0 stays at 0
    np.testing.assert_allclose(down.x, [0.0, 5.25, 49.5])
    back = down.scaled(0.5)
    np.testing.assert_allclose(back.x, p.x)
    np.testing.assert_allclose(back.y, p.y)
    np.testing.assert_allclose(p.scaled((2.0, 4.0)).scaled((0.5, 0.25)).y, p.y)


def test_fourier_crop_keeps_mean_and_a_centred_blob():
    yy, xx = np.mgrid[:128, :128]
    img = np.exp(-((xx - 64.5) ** 2 + (yy - 40.5) ** 2) / (2 * 6.0 ** 2)).astype(np.float32) + 3.0
    small = fourier_crop(img, (64, 64))
    assert small.shape == (64, 64)
    assert abs(small.mean() - img.mean()) < 1e-4
    y, x = np.unravel_index(np.argmax(small), small.shape)
    # the blob centre maps through Particles.scaled
    c = Particles([64.5], [40.5]).scaled(2.0)
    assert abs(x - c.x[0]) <= 0.5 and abs(y - c.y[0]) <= 0.5


@pytest.mark.parametrize("factor", [3.0, 8.0])
def test_downsampled_blob_centre_is_where_scaled_puts_it(factor):
    """Sub-pixel: the centroid of a blob after Fourier-crop downsampling lies at ``Particles.scaled``
    of its original centre (a binning convention, (x + 0.5) / f - 0.5, is (f - 1) / 2f pixels off)."""
    yy, xx = np.mgrid[:512, :512]
    cx, cy = 201.0, 300.0
    img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * 12.0 ** 2)).astype(np.float32)
    pre = Downsample(factor=factor)(img)
    small = pre.image
    c = Particles([cx], [cy]).scaled(pre.factor)
    y0, x0 = np.unravel_index(np.argmax(small), small.shape)

    def vertex(a, b, c):  # a Gaussian's log is a parabola: its vertex from three samples is exact
        a, b, c = np.log([a, b, c])
        return 0.5 * (a - c) / (a - 2 * b + c)

    x = x0 + vertex(small[y0, x0 - 1], small[y0, x0], small[y0, x0 + 1])
    y = y0 + vertex(small[y0 - 1, x0], small[y0, x0], small[y0 + 1, x0])
    assert abs(x - c.x[0]) < 0.02 and abs(y - c.y[0]) < 0.02


def test_downsample_chain_reports_factor():
    img = np.random.default_rng(0).normal(size=(100, 150)).astype(np.float32)
    out = apply_chain(img, [Downsample(factor=2.5), Normalize()])
    assert out.image.shape == (40, 60)
    assert out.factor == (2.5, 2.5)
    assert abs(out.image.mean()) < 1e-5 and abs(out.image.std() - 1) < 1e-4
    with pytest.raises(ConfigError):
        Downsample(target_pixel_size_a=8.0)


def test_thresholders_on_known_scores():
    rng = np.random.default_rng(1)
    background = rng.normal(0, 1, 2000)
    particles = rng.normal(8, 0.5, 100)
    s = np.concatenate([background, particles])
    assert Fixed(2.0).cutoff(s) == 2.0
    assert (s >= TopK(100).cutoff(s)).sum() == 100
    cut = Otsu().cutoff(s)
    assert 2.0 < cut < 7.0
    # a few huge outliers do not move the robust Otsu cut past the particles
    assert Otsu().cutoff(np.concatenate([s, [500.0, 800.0]])) < 7.0


def test_density_threshold_finds_the_knee():
    """CryoMAE §3.3: the cut sits where dense background scores give way to the sparse particle tail."""
    rng = np.random.default_rng(3)
    background = rng.normal(0.2, 0.05, 3000)
    particles = rng.uniform(0.6, 0.9, 60)
    cut = Density().cutoff(np.concatenate([background, particles]))
    assert background.max() - 0.05 < cut <= particles.min()
    kept = np.concatenate([background, particles]) >= cut
    assert kept[-60:].all() and kept[:3000].sum() < 20


def test_knn_mean_distance_matches_brute_force():
    s = np.sort(np.random.default_rng(2).normal(size=50))
    k = 4
    brute = np.array([np.sort(np.abs(s - v))[1:k + 1].mean() for v in s])
    np.testing.assert_allclose(knn_mean_distance(s, k), brute)


def test_peak_local_max_and_greedy_nms():
    m = np.zeros((50, 50), np.float32)
    m[10, 10], m[10, 14], m[30, 30], m[30, 31] = 5, 4, 3, 3  # a plateau at (30, 30-31)
    found = peak_local_max(m, radius=6, threshold=1)
    assert len(found) == 2
    assert (found.x[0], found.y[0]) == (10, 10)
    cands = Particles([0, 3, 10, 20], [0, 0, 0, 0], [1, 5, 2, 0.5])
    kept = greedy_nms(cands, radius=4)
    np.testing.assert_array_equal(kept.x, [3, 10, 20])


def test_dog_picker_finds_simulated_particles(simulated_micrograph):
    from cryopick.metrics import evaluate

    sim = simulated_micrograph
    picker = DoGPicker(DoGConfig())
    cands = picker.score(Normalize(robust=True)(sim.image).image, 24.0)
    top = cands.subset(slice(0, len(sim.truth)))
    ev = evaluate({"m": top}, {"m": sim.truth}, diameter_px=24.0)
    assert ev.recall > 0.8


def test_settings_parsing():
    assert parse_settings(["a=1", "b-c = x"]) == {"a": "1", "b_c": "x"}
    cfg = build_config(DoGConfig, {"sigma_ratio": "2", "polarity": "bright"})
    assert cfg.sigma_ratio == 2.0 and cfg.polarity == "bright"
    with pytest.raises(ConfigError, match="Did you mean 'sigma_ratio'"):
        build_config(DoGConfig, {"sigma_ration": "2"})
    with pytest.raises(ConfigError, match="expected a number"):
        build_config(DoGConfig, {"sigma_ratio": "big"})
    with pytest.raises(ConfigError):
        build_config(DoGConfig, {"polarity": "grey"})
    assert parse_diameter("40", None) == 40.0
    assert parse_diameter("150A", 1.5) == 100.0
    with pytest.raises(ConfigError, match="pixel size"):
        parse_diameter("150A", None)


@pytest.mark.parametrize("radius", [1.0, 1.5, 2.9, 3.0, 7.5, 15.0, 15.7])
def test_disk_maximum_filter_equals_footprint_filter(radius):
    """The separable disk maximum used by peak_local_max equals a plain footprint dilation."""
    from scipy import ndimage

    from cryopick.nms import disk_footprint, disk_maximum_filter

    rng = np.random.default_rng(int(radius * 10))
    s = ndimage.gaussian_filter(rng.normal(size=(97, 83)).astype(np.float32), 2)
    ref = ndimage.maximum_filter(s, footprint=disk_footprint(radius), mode="constant", cval=-np.inf)
    np.testing.assert_array_equal(disk_maximum_filter(s, radius), ref)


def _greedy_by_pixel(s: np.ndarray, radius: float, threshold: float) -> set[tuple[int, int]]:
    """The textbook loop: pixels in decreasing score order; each one not yet removed is taken and removes
    every pixel within ``radius``."""
    taken, removed = set(), np.zeros(s.shape, dtype=bool)
    yy, xx = np.mgrid[: s.shape[0], : s.shape[1]]
    for flat in np.argsort(-s, axis=None, kind="stable"):
        y, x = np.unravel_index(flat, s.shape)
        if removed[y, x] or s[y, x] < threshold:
            continue
        taken.add((int(x), int(y)))
        removed |= (xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2
    return taken


@pytest.mark.parametrize("radius,threshold", [(2.0, -np.inf), (4.5, -np.inf), (4.5, 0.2), (7.0, -0.5)])
def test_greedy_cover_nms_equals_the_pixel_loop(radius, threshold):
    from scipy import ndimage

    from cryopick.nms import greedy_cover_nms

    rng = np.random.default_rng(int(radius * 10))
    s = ndimage.gaussian_filter(rng.normal(size=(61, 53)), 2).astype(np.float32)
    s /= s.std()
    got = greedy_cover_nms(s, radius, threshold=threshold)
    assert {(int(x), int(y)) for x, y in zip(got.x, got.y)} == _greedy_by_pixel(s, radius, threshold)
    assert np.all(np.diff(got.score) <= 0)  # sorted by score


def test_greedy_cover_nms_on_a_flat_map_equals_the_pixel_loop():
    """A flat map (a model with no label yet) makes every pixel a peak: more candidates than greedy_nms lists
    close pairs for, taken one by one instead; the same picks as the textbook loop, in raster order on ties."""
    from cryopick.nms import greedy_cover_nms

    s = np.zeros((100, 120), dtype=np.float32)
    got = greedy_cover_nms(s, 4.5)
    assert len(got) > 100
    assert {(int(x), int(y)) for x, y in zip(got.x, got.y)} == _greedy_by_pixel(s, 4.5, -np.inf)


def test_greedy_nms_with_many_ties_keeps_the_best_of_each_neighbourhood_in_rank_order():
    """Candidates with few distinct scores (over 10 000, so greedy_nms goes one by one): each survivor is the
    first in rank order (score, then input order) of those not within the radius of an earlier survivor."""
    rng = np.random.default_rng(5)
    ys, xs = np.mgrid[:110, :100]
    cands = Particles(xs.ravel(), ys.ravel(), rng.integers(0, 3, size=xs.size).astype(np.float32))
    got = greedy_nms(cands, 3.5)
    ranked = cands.sorted_by_score()
    kept = []
    for x, y in ranked.xy:
        if not kept or np.min(np.hypot(*(np.asarray(kept) - (x, y)).T)) > 3.5:
            kept.append((x, y))
    np.testing.assert_array_equal(got.xy, np.asarray(kept))


def test_greedy_cover_finds_the_particle_on_a_brighter_neighbours_shoulder():
    """Two touching particles 12 px apart, NMS radius 8: the weaker one's score is only a shoulder of the
    stronger one's peak, so it is no local maximum; the greedy cover still gives it a candidate."""
    from cryopick.nms import greedy_cover_nms, peak_local_max

    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    s = 3 * np.exp(-((xx - 26) ** 2 + (yy - 32) ** 2) / (2 * 6 ** 2)) \
        + 1 * np.exp(-((xx - 38) ** 2 + (yy - 32) ** 2) / (2 * 3 ** 2))
    local = peak_local_max(s, radius=8)
    cover = greedy_cover_nms(s, radius=8, threshold=0.5)
    assert len(local) == 1 and (local.x[0], local.y[0]) == (26, 32)
    # the second candidate is the best pixel outside the first one's disk: on the shoulder, toward (38, 32)
    assert (cover.x[0], cover.y[0]) == (26, 32)
    assert np.hypot(cover.x[1] - 38, cover.y[1] - 32) <= 4.5, list(zip(cover.x, cover.y, cover.score))


def test_tiered_extraction_ranks_shoulders_after_every_local_maximum():
    """A strong particle with a weaker one on its shoulder, and a faint isolated particle elsewhere: greedy
    ranks the shoulder above the faint peak by its pixel's score; tiered keeps the local maxima's order (that of
    local-max) and appends the shoulder, so a cut above the shoulders picks what local-max picks."""
    from cryopick.nms import SHOULDER_OFFSET, extract_peaks

    yy, xx = np.mgrid[:64, :96].astype(np.float32)
    s = 3 * np.exp(-((xx - 26) ** 2 + (yy - 32) ** 2) / (2 * 6 ** 2)) \
        + 1 * np.exp(-((xx - 38) ** 2 + (yy - 32) ** 2) / (2 * 3 ** 2)) \
        + 0.8 * np.exp(-((xx - 78) ** 2 + (yy - 32) ** 2) / (2 * 3 ** 2))
    local = extract_peaks(s, radius=8, method="local-max")
    greedy = extract_peaks(s, radius=8, method="greedy")
    tiered = extract_peaks(s, radius=8, method="tiered")
    assert [(int(x), int(y)) for x, y in zip(local.x[:2], local.y[:2])] == [(26, 32), (78, 32)]
    # greedy: the shoulder (near x = 38) outscores the faint isolated peak
    faint = [(int(x), int(y)) for x, y in zip(greedy.x, greedy.y)].index((78, 32))
    assert np.hypot(greedy.x[1] - 38, greedy.y[1] - 32) <= 4.5 and faint > 1
    # tiered: the same candidates as greedy, the local maxima first with their own scores
    assert sorted(zip(tiered.x, tiered.y)) == sorted(zip(greedy.x, greedy.y))
    np.testing.assert_array_equal(tiered.xy[: len(local)], local.xy)
    np.testing.assert_allclose(tiered.score[: len(local)], local.score)
    shoulder = tiered.score[len(local):]
    assert shoulder.size and np.all(shoulder < local.score.min())
    i = int(np.nonzero((tiered.x == greedy.x[1]) & (tiered.y == greedy.y[1]))[0][0])
    assert i >= len(local) and tiered.score[i] == pytest.approx(greedy.score[1] - SHOULDER_OFFSET, abs=1e-3)
    with pytest.raises(ValueError, match="nms='nearest'"):
        extract_peaks(s, radius=8, method="nearest")


def test_tiered_local_maxima_are_those_of_the_whole_map_when_the_border_is_excluded():
    """A slope rising into the excluded border has no local maximum inside; masking the border first must not
    make its edge one (that put slope pixels at full score among the peaks)."""
    from cryopick.nms import SHOULDER_OFFSET, extract_peaks

    yy, xx = np.mgrid[:64, :64].astype(np.float32)
    s = 0.05 * (64 - xx) + 2 * np.exp(-((xx - 40) ** 2 + (yy - 32) ** 2) / (2 * 3 ** 2))
    local = extract_peaks(s, radius=6, method="local-max", exclude_border=8)
    tiered = extract_peaks(s, radius=6, method="tiered", exclude_border=8)
    assert len(local) == 1 and (local.x[0], local.y[0]) == (40, 32)
    np.testing.assert_array_equal(tiered.xy[:1], local.xy)
    assert len(tiered) > 1 and np.all(tiered.score[1:] < -SHOULDER_OFFSET / 2)


@pytest.mark.parametrize("name", ["otsu", "density"])
def test_distribution_cuts_ignore_the_shoulder_tier(name):
    """Otsu and the density cut on ``nms=tiered`` candidates are those on the local maxima alone: the shoulders
    (scores lowered by SHOULDER_OFFSET) would otherwise be the 'background' class of a two-tier split."""
    from cryopick.nms import SHOULDER_OFFSET
    from cryopick.threshold import Density, Otsu

    rng = np.random.default_rng(3)
    peaks = np.r_[rng.normal(-4, 1, 300), rng.normal(3, 0.7, 60)]  # background peaks and particles
    shoulders = rng.normal(-3, 1.5, 500) - SHOULDER_OFFSET
    cut = (Otsu() if name == "otsu" else Density()).cutoff
    assert cut(np.r_[peaks, shoulders]) == cut(peaks)
    assert -2 < cut(peaks) < 2.5  # between background and particles
    if name == "otsu":  # (the density cut itself jumps to far outliers, tier or not)
        # two outliers far above (gold beads) are no tier: the cut stays between background and particles
        assert -2 < cut(np.r_[peaks, 2000.0, 2100.0]) < 2.5
