"""The particle count behind pi, estimated from held-out labels; the PN prior; the autoencoder term."""

import numpy as np
import pytest

from cryopick.particles import Particles
from cryopick_topaz.prior import QUANTILES, cross_fit, estimate_count, split_labels


def _scene(rng, n_true=90, n_false=300, n_shoulder=0, size=1024.0):
    """Candidates of a pilot model: true particles score ~N(2, 1), false ones ~N(-2, 1); ``n_shoulder`` false
    peaks score ~N(1, 1), among the particles (a pilot's peaks between crowded particles)."""
    n = n_true + n_false + n_shoulder
    xy = rng.uniform(20, size - 20, size=(n, 2))
    score = np.concatenate([rng.normal(2.0, 1.0, n_true), rng.normal(-2.0, 1.0, n_false),
                            rng.normal(1.0, 1.0, n_shoulder)])
    truth = Particles(xy[:n_true, 0], xy[:n_true, 1])
    return Particles(xy[:, 0], xy[:, 1], score), truth


def _fitted(cands, train):
    """The pilot trained on ``train`` labels: they score higher than any other particle (they were fitted)."""
    out = []
    for c, t in zip(cands, train, strict=True):
        c = Particles(c.x, c.y, c.score.copy())
        d = np.hypot(c.x[:, None] - t.x[None], c.y[:, None] - t.y[None]).min(1)
        c.score[d < 1e-6] += 5.0
        out.append(c)
    return out


def _cross_fitted(seed, labels_per_mic, n_shoulder=0, quantiles=QUANTILES):
    """The picker's estimate: two pilots, each trained on one half of the labels and holding out the other."""
    rng = np.random.default_rng(seed)
    cands, labels = [], []
    for _ in range(3):
        c, truth = _scene(rng, n_shoulder=n_shoulder)
        cands.append(c)
        labels.append(truth.subset(np.sort(rng.choice(len(truth), labels_per_mic, replace=False))))
    first, second = split_labels(labels, 0.5, rng)
    assert all(len(a) + len(b) == labels_per_mic for a, b in zip(first, second, strict=True))
    folds = [estimate_count(_fitted(cands, a), a, b, radius=10.0, quantiles=quantiles)
             for a, b in [(first, second), (second, first)]]
    return cross_fit(folds)


@pytest.mark.parametrize(("labels_per_mic", "rel"), [(25, 0.2), (90, 0.02)])
def test_count_estimate_recovers_the_true_count_from_sparse_or_complete_labels(labels_per_mic, rel):
    est = _cross_fitted(0, labels_per_mic)
    # The labelled count (25) is 3.6x too small; the estimate is within 20 % of 90 (exact with every label).
    assert est.particles_per_micrograph == pytest.approx(90, rel=rel), est
    assert est.folds == 2 and est.held_out == 3 * labels_per_mic


@pytest.mark.parametrize("seed", [0, 2])
def test_false_peaks_among_the_particles_do_not_inflate_the_count(seed):
    """False peaks that score like weaker particles (between crowded particles: EMPIAR-10059, where the median
    cut counted 928 for 666) sit above a single cut; the minimum over cuts (mixture proportion) excludes most."""
    median_only = _cross_fitted(seed, 90, n_shoulder=60, quantiles=(0.5,)).particles_per_micrograph
    est = _cross_fitted(seed, 90, n_shoulder=60).particles_per_micrograph
    assert median_only > 1.2 * 90
    assert est == pytest.approx(90, rel=0.15)
    assert est < median_only


def test_count_estimate_needs_held_out_labels():
    rng = np.random.default_rng(1)
    c, truth = _scene(rng)
    train, held = split_labels([truth.subset(np.arange(3))], 0.5, rng)
    assert estimate_count([c], train, held, radius=10.0) is None


def test_pn_gets_the_class_prior_not_the_unlabelled_fraction():
    from cryopick_topaz.losses import PN, GEBinomial

    assert getattr(PN(), "prior", None) == "total"
    assert getattr(GEBinomial(), "prior", "unlabelled") == "unlabelled"


def test_reconstruction_error_is_a_squared_norm_per_crop():
    """Online Methods §5 weighs ||x - d(f(x))||^2 by gamma: a sum over the crop's pixels, not a mean."""
    import torch

    from cryopick_topaz.losses import reconstruction_error

    x = torch.ones(3, 1, 71, 71)
    assert float(reconstruction_error(torch.zeros_like(x), x)) == pytest.approx(71 * 71)
    x[1] = 3.0  # crops 1, 9 and 1 per pixel: the batch mean of the sums
    assert float(reconstruction_error(torch.zeros_like(x), x)) == pytest.approx(71 * 71 * 11 / 3)


@pytest.fixture(scope="module")
def sparse_sim():
    """Four simulated micrographs of 24 particles; 8 labelled on each of the first two."""
    from cryopick.picker import TrainingItem
    from cryopick.preprocess import apply_chain
    from cryopick.simulate import SimulationConfig, simulate_micrograph
    from cryopick.simulate.config import PRE_CALIBRATION  # the simulator this test was tuned on
    from cryopick_topaz.gmm import GMMNormalize

    sim = SimulationConfig(shape=(256, 256), n_micrographs=4, particles_per_micrograph=24, diameter_px=16.0,
                           snr=0.3, seed=11, nuisances=False, **PRE_CALIBRATION)
    rng = np.random.default_rng(0)
    items = []
    for i in range(4):
        m = simulate_micrograph(sim, i)
        lab = m.truth.subset(np.sort(rng.choice(len(m.truth), 8, replace=False))) if i < 2 else None
        items.append(TrainingItem(m.name, apply_chain(m.image, [GMMNormalize()]).image, lab))
    return sim, items


def _train(items, unlabelled, diameter, **settings):
    from cryopick.config import build_config
    from cryopick.picker import PickerContext, TrainingData
    from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker

    cfg = build_config(TopazConfig, {"preset": "tiny", **{k: str(v) for k, v in settings.items()}}, PRESETS)
    picker = TopazPicker(cfg, PickerContext(seed=0, progress=False))
    return picker, picker.train(TrainingData(items, diameter, unlabelled))


def test_sparse_labels_train_on_every_micrograph_with_an_estimated_count(sparse_sim):
    sim, items = sparse_sim
    picker, state = _train(items[:2], items[2:], sim.diameter_px)
    info = state.config["training"]
    # Both labelled micrographs train (none is held out), and the threshold is set on the unlabelled ones.
    assert info["train_micrographs"] == [it.name for it in items[:2]] and not info["validation_micrographs"]
    assert info["threshold_micrographs"] == [it.name for it in items[2:]]
    # The count: 24 particles per micrograph; the labels alone say 8.
    assert info["expected_particles_source"] == "estimated"
    assert 16 <= info["expected_particles"] <= 32, info["count_estimate"]
    assert info["count_estimate"]["folds"] == 2  # cross-fitted pilots by default
    assert info["pi"] == pytest.approx(info["expected_particles"] * 29 / 256 ** 2)
    # The default cut gives about that many picks per unlabelled micrograph.
    cut = info["threshold"]
    n = [int((picker.score(it.image, sim.diameter_px).score >= cut).sum()) for it in items[2:]]
    assert abs(np.mean(n) - info["expected_particles"]) <= 1


def test_a_given_count_is_used_and_pn_gets_pi(sparse_sim, monkeypatch):
    from cryopick_topaz import losses

    seen = []
    original = losses.PN.__call__

    def spy(self, pos, unl, pi):
        seen.append(pi)
        return original(self, pos, unl, pi)

    monkeypatch.setattr(losses.PN, "__call__", spy)
    sim, items = sparse_sim
    _, state = _train(items[:2], [], sim.diameter_px, loss="pn", expected_particles=24, epochs=1)
    info = state.config["training"]
    assert info["expected_particles"] == 24 and info["expected_particles_source"] == "given"
    assert "count_estimate" not in info
    # PN weighs positives by the class prior pi; pi_u (positives among unlabelled crops) is smaller.
    assert seen and all(v == pytest.approx(info["pi"]) for v in seen) and info["pi_unlabelled"] < info["pi"]


def test_particles_per_micrograph_option_sets_the_count_and_the_summary_says_so(tmp_path):
    import json
    import subprocess
    import sys

    base = [sys.executable, "-m", "cryopick.cli.main", "-q", "run", "--out", "out", "--json"]
    out = subprocess.run(base + ["--picker", "topaz", "--set", "preset=tiny", "--set", "epochs=1",
                                 "--particles-per-micrograph", "21"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["model"]["particles per micrograph"] == "21.0 (given)"
    # A picker without a count refuses the option in one line.
    out = subprocess.run(base + ["--picker", "dog", "--particles-per-micrograph", "21"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2 and "does not use a particle count" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_count_estimate_does_not_depend_on_the_extraction(sparse_sim, monkeypatch):
    """The pilot's count comes from its distinct peaks (local maxima) whatever ``nms`` extracts: greedy NMS's
    extra candidates on the shoulders of the labelled particles would count as more particles (on the crowded
    EMPIAR-10059 micrographs they made 666 into 988)."""
    from cryopick_topaz import prior

    seen = []
    original = prior.estimate_count

    def spy(cands, *args, **kwargs):
        seen.append(cands)
        return original(cands, *args, **kwargs)

    monkeypatch.setattr(prior, "estimate_count", spy)
    sim, items = sparse_sim
    _, greedy = _train(items[:2], items[2:], sim.diameter_px, nms="greedy")
    _, local = _train(items[:2], items[2:], sim.diameter_px, nms="local-max")
    assert len(seen) == 4  # two cross-fitted pilots per training
    # the same pilots (same seed) gave the estimate the same candidates: their local maxima, not the greedy cover
    for fold in range(2):
        for a, b in zip(seen[fold], seen[2 + fold], strict=True):
            np.testing.assert_array_equal(a.xy, b.xy)
    assert greedy.config["training"]["count_estimate"] == local.config["training"]["count_estimate"]


def test_prior_radius_widens_pi_but_not_the_count_or_the_number_of_picks(sparse_sim):
    """``prior_radius`` sets the per-particle positive area behind pi (topaz-em's ball of radius 3 is the
    area of a disk of radius 8); the count, its pilots and the calibrated number of picks stay the same."""
    sim, items = sparse_sim
    picker, state = _train(items[:2], items[2:], sim.diameter_px, expected_particles=24, prior_radius=5, epochs=1)
    info = state.config["training"]
    assert info["prior_radius"] == 5 and info["expected_particles"] == 24
    assert info["pi"] == pytest.approx(24 * 81 / 256 ** 2)  # the disk of radius 5 holds 81 pixels, radius 3: 29
    cut = info["threshold"]
    n = [int((picker.score(it.image, sim.diameter_px).score >= cut).sum()) for it in items[2:]]
    assert abs(np.mean(n) - 24) <= 1
    _, plain = _train(items[:2], [], sim.diameter_px, expected_particles=24, epochs=1)
    assert plain.config["training"]["pi"] == pytest.approx(24 * 29 / 256 ** 2)
    assert plain.config["training"]["prior_radius"] == 3


def test_the_count_pilots_keep_the_label_disk_whatever_prior_radius(sparse_sim, monkeypatch):
    from cryopick_topaz.picker import TopazPicker

    seen = []
    original = TopazPicker._fit

    def spy(self, *args, **kwargs):
        fit = original(self, *args, **kwargs)
        seen.append((args[-1], fit["pi"]))
        return fit

    monkeypatch.setattr(TopazPicker, "_fit", spy)
    sim, items = sparse_sim
    _, state = _train(items[:2], [], sim.diameter_px, prior_radius=6, epochs=1)
    info = state.config["training"]
    pilots = [pi for title, pi in seen if title.startswith("topaz count")]
    assert len(pilots) == 2 and seen[-1][0] == "topaz train"
    # each pilot's pi: its training half's labelled count per micrograph on the 3-px disk (29 pixels)
    assert all(pi == pytest.approx(4 * 29 / 256 ** 2, rel=0.3) for pi in pilots), pilots
    assert seen[-1][1] == pytest.approx(info["expected_particles"] * 113 / 256 ** 2)  # disk of radius 6


@pytest.mark.parametrize("value", ["0", "-2"])
def test_prior_radius_must_be_positive(value):
    from cryopick.config import build_config
    from cryopick.errors import ConfigError
    from cryopick_topaz.picker import PRESETS, TopazConfig

    with pytest.raises((ConfigError, ValueError), match="prior_radius"):
        build_config(TopazConfig, {"prior_radius": value}, PRESETS)
    assert build_config(TopazConfig, {"prior_radius": "none"}, PRESETS).prior_radius is None
