"""Test-time augmentation in the topaz picker (``tta``, default 4): the score map is the mean over the four
90-degree rotations of the micrograph, so rotating the micrograph rotates the map and nothing else."""

from __future__ import annotations

import numpy as np
import pytest

from cryopick.config import build_config
from cryopick.errors import ConfigError
from cryopick.picker import ModelState, PickerContext, TrainingData, TrainingItem
from cryopick.preprocess import apply_chain
from cryopick.simulate import SimulationConfig, simulate_micrograph
from cryopick_topaz.gmm import GMMNormalize
from cryopick_topaz.picker import DEFAULT_TTA, PRESETS, TopazConfig, TopazPicker

pytest.importorskip("torch")

SIM = SimulationConfig(shape=(160, 176), n_micrographs=2, particles_per_micrograph=10, diameter_px=16.0,
                       snr=0.3, seed=5, nuisances=False)


def _picker(**settings) -> TopazPicker:
    settings = {"preset": "tiny", "epochs": "1", "epoch_size": "8", "expected_particles": "10", **settings}
    return TopazPicker(build_config(TopazConfig, settings, PRESETS), PickerContext(seed=0, progress=False))


@pytest.fixture(scope="module")
def trained():
    mics = [simulate_micrograph(SIM, i) for i in range(SIM.n_micrographs)]
    items = [TrainingItem(m.name, apply_chain(m.image, [GMMNormalize()]).image, m.truth) for m in mics]
    state = _picker().train(TrainingData(items[:1], SIM.diameter_px))
    return state, items[1].image


def test_the_default_averages_four_rotations(trained):
    state, _ = trained
    assert TopazConfig().tta is None and DEFAULT_TTA == 4
    assert PRESETS["fast"]["tta"] == 1  # the opt-in speed preset keeps the single pass
    picker = TopazPicker(TopazConfig(), PickerContext(seed=0, progress=False))
    assert picker._tta() == 4
    assert state.config["training"]["tta"] == 1  # what the tiny preset calibrated its threshold on


def test_a_stored_model_scores_as_its_threshold_was_calibrated(trained, capsys):
    state, image = trained
    old = ModelState(state.arrays, {**state.config, "training": {
        k: v for k, v in state.config["training"].items() if k != "tta"}})  # trained before tta existed
    picker = _picker(tta="none")  # the tiny network, tta unset (the default)
    assert picker._tta() == DEFAULT_TTA
    picker.load(old)
    assert picker._tta() == 1
    one = _picker(tta="1")
    one.load(state)
    np.testing.assert_array_equal(picker.score_map(image), one.score_map(image))
    # a model calibrated on 4-rotation maps scores with 4; asking for another prints why the count changes
    four = ModelState(state.arrays, {**state.config, "training": {**state.config["training"], "tta": 4}})
    picker.load(four)
    assert picker._tta() == 4
    assert "calibrated" not in capsys.readouterr().err
    _picker(tta="2").load(four)
    assert "calibrated on maps averaged over 4" in capsys.readouterr().err


def test_rotating_the_micrograph_rotates_the_averaged_map(trained):
    state, image = trained
    single, averaged = _picker(tta="1"), _picker(tta="4")
    single.load(state)
    averaged.load(state)
    turned = np.ascontiguousarray(np.rot90(image))
    # one pass: the network is not exactly rotation invariant, so the maps differ (the test can fail)
    a, b = single.score_map(image), single.score_map(turned)
    assert np.abs(np.rot90(a) - b).max() > 1e-3
    # the mean over the four rotations is invariant: a turned micrograph gives the turned map
    a, b = averaged.score_map(image), averaged.score_map(turned)
    assert a.shape == image.shape
    np.testing.assert_allclose(np.rot90(a), b, atol=1e-4)
    # and it is the mean of the single-pass maps, each turned back
    maps = [np.rot90(single.score_map(np.ascontiguousarray(np.rot90(image, k))), -k) for k in range(4)]
    np.testing.assert_allclose(a, np.mean(maps, axis=0), atol=1e-5)


def test_an_unknown_group_size_is_named():
    with pytest.raises(ConfigError, match="tta=3"):
        _picker(tta="3")
