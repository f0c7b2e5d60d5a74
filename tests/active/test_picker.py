"""The active picker through the pipeline contract, its stored model, and the plugin's entry module."""

import subprocess
import sys

import numpy as np
import pytest

from cryopick.errors import ConfigError
from cryopick.host import build_host
from cryopick.particles import Particles
from cryopick.picker import TrainingData, TrainingItem
from cryopick.pickers import make_picker
from cryopick.testing import check_picker_contract

HOST = build_host()


def test_contract_with_labels_from_a_file(simulated_micrograph):
    mic = simulated_micrograph
    cands = check_picker_contract(HOST, "active", mic.image, mic.truth, diameter_px=24.0, settings={"preset": "tiny"})
    assert len(cands) > 0


def test_train_then_load_gives_the_same_scores(simulated_micrograph):
    mic = simulated_micrograph
    picker = make_picker(HOST, "active", {"preset": "tiny"}, "cpu", 0)
    labels = Particles(np.r_[mic.truth.x[:4], 20.0, 200.0], np.r_[mic.truth.y[:4], 230.0, 20.0], [1, 1, 1, 1, 0, 0])
    state = picker.train(TrainingData([TrainingItem("m", mic.image, labels)], 24.0))
    fresh = make_picker(HOST, "active", {"preset": "tiny"}, "cpu", 0)
    fresh.load(state)
    a, b = picker.score(mic.image, 24.0), fresh.score(mic.image, 24.0)
    np.testing.assert_allclose(a.score, b.score, rtol=1e-5)
    assert state.config["fit"]["positive_pixels"] == 4 * 25  # four 5 x 5 squares


def test_without_labels_it_says_how_to_get_them(simulated_micrograph):
    picker = make_picker(HOST, "active", {"preset": "tiny"}, "cpu", 0)
    with pytest.raises(ConfigError, match="cryopick active label"):
        picker.train(TrainingData([TrainingItem("m", simulated_micrograph.image, Particles.empty())], 24.0))


@pytest.mark.parametrize("scale, pixel, factor", [("auto", 4.0, 1.5), ("8A", 4.0, 2.0), ("12px", None, 2.0)])
def test_scale_setting_chooses_the_downsampling(scale, pixel, factor):
    picker = make_picker(HOST, "active", {"preset": "tiny", "scale": scale}, "cpu", 0)
    chain = picker.preprocessing(24.0, pixel)
    assert chain[0] == ("downsample", {"factor": factor}) and chain[-1][0] == "normalize"


def test_bad_scale_and_missing_pixel_size_are_config_errors():
    with pytest.raises(ConfigError, match="scale=8 parsecs"):
        make_picker(HOST, "active", {"scale": "8 parsecs"}, "cpu", 0)
    picker = make_picker(HOST, "active", {"preset": "tiny", "scale": "8A"}, "cpu", 0)
    with pytest.raises(ConfigError, match="--pixel-size"):
        picker.preprocessing(24.0, None)


def test_entry_module_imports_no_torch():
    code = "import sys, cryopick_active.plugin; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_answers_template_term_is_stored_and_old_models_pick_without_it(simulated_micrograph):
    """The positive answers' template and clip are stored with the model; picking adds correlation x the capped
    term to the logit map; a model stored without them, or correlation=0, picks from the logits alone."""
    from cryopick.recentre import correlation_map, standardised_correlation

    mic = simulated_micrograph
    labels = Particles(np.r_[mic.truth.x[:6], 20.0], np.r_[mic.truth.y[:6], 230.0], [1, 1, 1, 1, 1, 1, 0])
    picker = make_picker(HOST, "active", {"preset": "tiny", "correlation": "2", "self_template": "0"}, "cpu", 0)
    state = picker.train(TrainingData([TrainingItem("m", mic.image, labels)], 24.0))
    template = state.arrays["correlation_template"]
    assert template.shape == (49, 49) and state.arrays["correlation_clip"].shape == (1,)
    logits = picker.logits(picker.features(mic.image))
    term = 2 * np.minimum(standardised_correlation(correlation_map(mic.image, template)),
                          float(state.arrays["correlation_clip"][0]))
    expected = picker.peaks(logits + term.astype(logits.dtype), 24.0)
    got = picker.score(mic.image, 24.0)
    np.testing.assert_allclose(got.score, expected.score, rtol=1e-6)
    plain = picker.peaks(logits, 24.0)
    assert not np.allclose(np.sort(plain.score)[-len(got):], np.sort(got.score))
    for settings, arrays in (({"correlation": "0"}, state.arrays),
                             ({}, {k: v for k, v in state.arrays.items() if not k.startswith("correlation_")})):
        old = make_picker(HOST, "active", {"preset": "tiny", "self_template": "0", **settings}, "cpu", 0)
        old.load(type(state)(arrays, state.config))
        np.testing.assert_allclose(old.score(mic.image, 24.0).score, plain.score, rtol=1e-6)
    only_negative = make_picker(HOST, "active", {"preset": "tiny"}, "cpu", 0)
    only_negative.fit_template({"m": mic.image}, {"m": labels.subset(labels.score < 0.5)}, 24.0)
    assert only_negative._template is None
    with pytest.raises(ConfigError, match="correlation"):
        make_picker(HOST, "active", {"correlation": "-1"}, "cpu", 0)


def test_answers_template_term_alone_ranks_the_particles_first(simulated_micrograph):
    """A logit map that says nothing (all zero): the answers' template term alone puts particles at the top."""
    from cryopick.metrics import evaluate

    mic = simulated_micrograph
    picker = make_picker(HOST, "active", {"preset": "tiny", "correlation": "1"}, "cpu", 0)
    picker.fit_template({"m": mic.image}, {"m": mic.truth.subset(np.arange(8))}, 24.0)
    cands = picker.pick_logits(mic.image, np.zeros(mic.image.shape, np.float32), 24.0)
    top = cands.sorted_by_score().subset(np.arange(len(mic.truth) // 2))
    assert evaluate({"m": top}, {"m": mic.truth}, diameter_px=24.0).precision > 0.8


def test_self_template_term_is_added_to_each_micrographs_candidates(simulated_micrograph):
    """``self_template``: each candidate gets w x its capped correlation with the template of the best half of its
    micrograph's candidates at their Otsu cut-off (cryopick.recentre.self_correlation); 0 leaves the scores alone;
    a logit map on a coarser grid than the image is mapped onto the image first."""
    from cryopick.recentre import self_correlation
    from cryopick.threshold import Otsu

    mic = simulated_micrograph
    labels = Particles(np.r_[mic.truth.x[:6], 20.0], np.r_[mic.truth.y[:6], 230.0], [1, 1, 1, 1, 1, 1, 0])
    picker = make_picker(HOST, "active", {"preset": "tiny", "correlation": "0", "self_template": "2"}, "cpu", 0)
    picker.train(TrainingData([TrainingItem("m", mic.image, labels)], 24.0))
    plain = picker.peaks(picker.logits(picker.features(mic.image)), 24.0)
    term = self_correlation(mic.image, plain, Otsu().cutoff(plain.score), 0.5, 24.0, 0.35 * 24.0)
    assert term is not None and np.ptp(term) > 0
    got = picker.score(mic.image, 24.0)
    np.testing.assert_allclose(got.score, plain.score + 2 * term, rtol=1e-6)
    np.testing.assert_array_equal(got.xy, plain.xy)
    picker.config.self_template = 0.0
    np.testing.assert_array_equal(picker.score(mic.image, 24.0).score, plain.score)
    picker.config.self_template = 1.0
    half = Particles(plain.x / 2, plain.y / 2, plain.score)
    coarse = picker._with_self_template(mic.image, half, (mic.image.shape[0] // 2, mic.image.shape[1] // 2), 12.0)
    np.testing.assert_allclose(coarse.score, plain.score + term, rtol=1e-6)
    np.testing.assert_array_equal(coarse.xy, half.xy)


def test_a_contaminant_brighter_than_any_particle_falls_below_them(simulated_micrograph):
    """``contaminant``: a copy of a particle at 6x its contrast (an aggregate) matches both templates far better
    than any particle, and the regression, linear in the filters, gives it the highest logit; with the plain clip
    (0) it is the best candidate, at the default it falls below every particle
    (cryopick.recentre.capped_correlation)."""
    mic = simulated_micrograph
    image = np.asarray(mic.image, dtype=np.float32)
    at, r = (208, 208), 14  # 30 px and more from every particle
    px, py = int(round(mic.truth.x[7])), int(round(mic.truth.y[7]))
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    taper = np.clip((r - np.hypot(xx, yy)) / 3, 0, 1)
    dirty = image.copy()
    dirty[at[1] - r: at[1] + r + 1, at[0] - r: at[0] + r + 1] += (
        5.0 * taper * (image[py - r: py + r + 1, px - r: px + r + 1] - np.median(image)))
    labels = Particles(np.r_[mic.truth.x[:6], 20.0], np.r_[mic.truth.y[:6], 230.0], [1, 1, 1, 1, 1, 1, 0])

    def scores(contaminant: str) -> tuple[float, np.ndarray]:
        picker = make_picker(HOST, "active", {"preset": "tiny", "contaminant": contaminant}, "cpu", 0)
        picker.train(TrainingData([TrainingItem("m", dirty, labels)], 24.0))
        got = picker.score(dirty, 24.0)
        blob = got.score[np.hypot(got.x - at[0], got.y - at[1]) < 6]
        on_particle = np.min(np.hypot(got.x[:, None] - mic.truth.x, got.y[:, None] - mic.truth.y), axis=1) < 6
        assert len(blob) == 1 and on_particle.sum() == len(mic.truth)
        return float(blob[0]), got.score[on_particle]

    blob, particles = scores("0")
    assert blob > particles.max()
    blob, particles = scores("2")
    assert blob < particles.min()
