"""Training on simulated micrographs beats an untrained network; the model survives a weights round trip."""

import numpy as np
import pytest

from cryopick.config import build_config
from cryopick.metrics import evaluate
from cryopick.picker import PickerContext, TrainingData, TrainingItem
from cryopick.preprocess import apply_chain
from cryopick.simulate import SimulationConfig, simulate_micrograph
from cryopick_topaz.gmm import GMMNormalize
from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker

SIM = SimulationConfig(shape=(192, 192), n_micrographs=4, particles_per_micrograph=14, diameter_px=16.0,
                       snr=0.3, seed=11, nuisances=False)


@pytest.fixture(scope="module")
def data():
    mics = [simulate_micrograph(SIM, i) for i in range(4)]
    items = [TrainingItem(m.name, apply_chain(m.image, [GMMNormalize()]).image, m.truth) for m in mics]
    return items


def _ap(picker, items):
    cands = {it.name: picker.score(it.image, SIM.diameter_px) for it in items}
    truth = {it.name: it.labels for it in items}
    return evaluate(cands, truth, diameter_px=SIM.diameter_px, candidates=cands).average_precision


def test_training_beats_untrained(data):
    config = build_config(TopazConfig, {"preset": "tiny", "epochs": "2", "epoch_size": "40"}, PRESETS)
    train, test = data[:3], data[3:]

    untrained = TopazPicker(config, PickerContext(seed=0, progress=False))
    untrained.model = untrained._build().eval()
    ap_before = _ap(untrained, test)

    picker = TopazPicker(config, PickerContext(seed=0, progress=False))
    state = picker.train(TrainingData(train, SIM.diameter_px))
    ap_after = _ap(picker, test)
    print(f"AP untrained {ap_before:.3f} -> trained {ap_after:.3f}")
    assert ap_after > ap_before + 0.3, (ap_before, ap_after)
    assert ap_after > 0.6

    info = state.config["training"]
    # Complete labels: every labelled micrograph trains, and the estimated count is the labelled one.
    assert not info["validation_micrographs"] and info["train_micrographs"] == [it.name for it in train]
    assert info["pi"] == pytest.approx(14 * 29 / 192 ** 2, rel=0.2)
    assert picker.default_threshold.startswith("fixed:")

    # Weights as arrays only; a fresh picker loads them and scores identically.
    assert all(isinstance(a, np.ndarray) for a in state.arrays.values())
    fresh = TopazPicker(config, PickerContext(seed=0, progress=False))
    fresh.load(state)
    a, b = picker.score(test[0].image, SIM.diameter_px), fresh.score(test[0].image, SIM.diameter_px)
    np.testing.assert_array_equal(a.score, b.score)
    assert fresh.default_threshold == picker.default_threshold

    # Deterministic: the same seed gives the same weights.
    again = TopazPicker(config, PickerContext(seed=0, progress=False)).train(TrainingData(train, SIM.diameter_px))
    for k, v in state.arrays.items():
        np.testing.assert_array_equal(v, again.arrays[k])
