"""Automatic cut-off of classical pickers: background peaks estimated from the negated response."""

import numpy as np

from cryopick.threshold import calibrated_peaks, decoy_cutoff


def test_decoy_cutoff_separates_particles_from_background_peaks():
    rng = np.random.default_rng(0)
    background = rng.normal(0, 1, 500)
    decoys = rng.normal(0, 1, 500)  # the mirror image: same distribution as the background peaks
    particles = rng.normal(4, 0.5, 40)
    cut = decoy_cutoff(np.concatenate([background, particles]), decoys, decoy_weight=1.0)
    kept = np.concatenate([background, particles]) >= cut
    assert 35 <= kept[500:].sum() <= 40 and kept[:500].sum() <= 10
    assert (background >= decoy_cutoff(background, decoys, 1.0)).sum() < 500 / 4  # pure background: little kept
    assert np.isinf(decoy_cutoff([], decoys))


def test_dog_default_keeps_about_the_true_count_with_nuisances():
    """On a micrograph with ice gradient, carbon, contaminants and beads the default cut keeps about as
    many picks as there are particles (keeping every positive response kept several times as many)."""
    from cryopick.host import build_host
    from cryopick.metrics import evaluate
    from cryopick.pickers import make_picker
    from cryopick.simulate import SimulationConfig, simulate_micrograph
    from cryopick.simulate.config import PRE_CALIBRATION
    from cryopick.stages.preprocess import preprocess_image

    # the simulator's nuisances as they were when this cut was tuned (the calibrated defaults add unlabelled
    # broken particles and structural noise, which the cut rightly keeps out)
    config = SimulationConfig(shape=(768, 768), n_micrographs=1, particles_per_micrograph=60, diameter_px=30.0,
                              snr=0.1, seed=3, nuisances=True, **PRE_CALIBRATION)
    mic = simulate_micrograph(config, 0)
    host = build_host(load_entry_points=False)
    results = {}
    for auto in ("true", "false"):
        dog = make_picker(host, "dog", {"auto_cut": auto})
        pre = preprocess_image(dog, mic.image, 30.0, None)
        cands = dog.score(pre.image, 30.0 / pre.factor[0]).scaled((1 / pre.factor[0], 1 / pre.factor[1]))
        picks = cands.above(0.0)  # dog's default threshold, fixed:0
        results[auto] = (len(picks), evaluate({"m": picks}, {"m": mic.truth}, diameter_px=30.0).f1)
    n_true = len(mic.truth)
    assert 0.6 * n_true <= results["true"][0] <= 1.5 * n_true, results
    assert results["true"][1] > results["false"][1] + 0.1, results


def test_calibrated_peaks_keep_the_ranking():
    rng = np.random.default_rng(1)
    score_map = rng.normal(size=(128, 128)).astype(np.float32)
    from cryopick.nms import peak_local_max

    raw = peak_local_max(score_map, radius=4)
    shifted = calibrated_peaks(score_map, radius=4, decoy_weight=1.0)
    assert np.array_equal(raw.x, shifted.x) and np.allclose(np.diff(raw.score - shifted.score), 0, atol=1e-5)
    assert (shifted.score >= 0).sum() < len(shifted) / 4  # pure noise: little stands out
