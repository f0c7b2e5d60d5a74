"""Micrographs without labels as a source of unlabelled crops (``use_unlabelled``), with pi over all of them."""

import numpy as np
import pytest

from cryopick.config import build_config
from cryopick.picker import PickerContext, TrainingData, TrainingItem
from cryopick.preprocess import apply_chain
from cryopick.simulate import SimulationConfig, simulate_micrograph
from cryopick.simulate.config import PRE_CALIBRATION  # the simulator these tests were tuned on
from cryopick_topaz.gmm import GMMNormalize
from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker
from cryopick_topaz.sampling import positive_mask

SIM = SimulationConfig(shape=(128, 128), n_micrographs=3, particles_per_micrograph=10, diameter_px=16.0,
                       snr=0.3, seed=5, nuisances=False, **PRE_CALIBRATION)


def _train(use_unlabelled: bool):
    mics = [simulate_micrograph(SIM, i) for i in range(3)]
    items = [TrainingItem(m.name, apply_chain(m.image, [GMMNormalize()]).image, m.truth) for m in mics]
    unl = [TrainingItem(it.name, it.image) for it in items[1:]]
    cfg = build_config(TopazConfig, {"preset": "tiny", "epochs": "1", "epoch_size": "5",
                                     "use_unlabelled": str(use_unlabelled).lower()}, PRESETS)
    picker = TopazPicker(cfg, PickerContext(seed=0, progress=False))
    state = picker.train(TrainingData(items[:1], SIM.diameter_px, unl))
    return state.config["training"], items


def test_unlabelled_micrographs_feed_the_unlabelled_crops():
    off, _ = _train(False)
    on, items = _train(True)
    assert off["unlabelled_micrographs"] == []
    assert on["unlabelled_micrographs"] == [it.name for it in items[1:]]
    # pi: expected particles per micrograph x disk / pixels, unchanged (all micrographs are the same size).
    assert on["pi"] == pytest.approx(off["pi"])
    # The labelled positive pixels are now a third of the pixels' share: the unlabelled prior rises to
    # (pi - p_obs) / (1 - p_obs) with p_obs over all three micrographs.
    pos = positive_mask(items[0].image.shape, items[0].labels, 3.0).sum()
    p_obs = pos / (3 * items[0].image.size)
    pi = on["pi"]
    assert on["pi_unlabelled"] == pytest.approx(max((pi - p_obs) / (1 - p_obs), 1e-3))
    assert on["pi_unlabelled"] > off["pi_unlabelled"]
    assert np.isfinite(on["history"][-1]["loss"])
