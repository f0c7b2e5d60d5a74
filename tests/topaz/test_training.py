"""Training on simulated micrographs beats an untrained network; the model survives a weights round trip."""

import copy

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


def test_compile_auto_is_on_for_the_default_schedule_on_cpu_only():
    default = TopazPicker(build_config(TopazConfig, {}, PRESETS), PickerContext(seed=0, progress=False))
    assert default._training_step("cpu").enabled
    assert not default._training_step("cuda").enabled
    tiny = TopazPicker(build_config(TopazConfig, {"preset": "tiny"}, PRESETS), PickerContext(seed=0, progress=False))
    assert not tiny._training_step("cpu").enabled
    off = TopazPicker(build_config(TopazConfig, {"compile": "off"}, PRESETS), PickerContext(seed=0, progress=False))
    assert not off._training_step("cpu").enabled


def test_compiled_training_gives_the_eager_network(data):
    """torch.compile + channels-last change the speed, not the training: same seed, same weights to float
    rounding after a few minibatches, stored in the default memory order (float32 arithmetic: bfloat16's
    rounding differs between fused and eager kernels)."""
    weights = {}
    for mode in ("off", "on"):
        config = build_config(TopazConfig, {"preset": "tiny", "epochs": "1", "epoch_size": "4", "compile": mode,
                                            "expected_particles": "14", "precision": "float32"}, PRESETS)
        picker = TopazPicker(config, PickerContext(seed=0, progress=False))
        state = picker.train(TrainingData(data[:2], SIM.diameter_px))
        assert picker._training_step("cpu").enabled is (mode == "on")
        weights[mode] = state.arrays
        for v in picker.model.state_dict().values():
            assert v.is_contiguous()
    assert weights["on"].keys() == weights["off"].keys()
    for k in weights["off"]:
        np.testing.assert_allclose(weights["on"][k], weights["off"][k], rtol=1e-4, atol=1e-5, err_msg=k)


def _recording_steps(monkeypatch):
    """Every parameter of every network after each optimiser step (the Adam of topaz's training)."""
    import torch

    seen = []
    orig = torch.optim.Adam.step

    def step(self, *args, **kwargs):
        out = orig(self, *args, **kwargs)
        seen.append([p.detach().clone() for group in self.param_groups for p in group["params"]])
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", step)
    return seen


@pytest.mark.parametrize("fraction, averaged", [(0.5, 15), (1.0, 30)])
def test_weight_averaging_keeps_the_mean_of_the_last_updates(data, monkeypatch, fraction, averaged):
    """average_fraction = f: the network's weights are the mean of its weights after each of the last f x N
    updates (SWA), and its BatchNorm statistics are recomputed for them (they differ from the last update's)."""
    import torch

    seen = _recording_steps(monkeypatch)
    settings = {"preset": "tiny", "epochs": "2", "epoch_size": "15", "expected_particles": "14"}
    config = build_config(TopazConfig, {**settings, "average_fraction": str(fraction)}, PRESETS)
    picker = TopazPicker(config, PickerContext(seed=0, progress=False))
    picker.train(TrainingData(data[:2], SIM.diameter_px))
    assert len(seen) == 30
    mean = [torch.stack(ps).mean(0) for ps in zip(*seen[-averaged:], strict=True)]
    for p, m in zip(picker.model.parameters(), mean, strict=True):
        torch.testing.assert_close(p.detach(), m, rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(p.detach(), last) for p, last in zip(picker.model.parameters(), seen[-1],
                                                                      strict=True))

    seen.clear()  # the same training without averaging: the last update's weights and BN statistics
    plain = TopazPicker(build_config(TopazConfig, {**settings, "average_fraction": "0"}, PRESETS),
                        PickerContext(seed=0, progress=False))
    plain.train(TrainingData(data[:2], SIM.diameter_px))
    for p, last in zip(plain.model.parameters(), seen[-1], strict=True):
        torch.testing.assert_close(p.detach(), last)
    bn = [(a, b) for (n, a), (_, b) in zip(picker.model.named_buffers(), plain.model.named_buffers(), strict=True)
          if n.endswith("running_mean")]
    assert bn and all(not torch.allclose(a, b) for a, b in bn)


def test_average_fraction_is_a_fraction():
    from cryopick.errors import ConfigError

    with pytest.raises(ConfigError, match="average_fraction=1.5: a fraction"):
        build_config(TopazConfig, {"average_fraction": "1.5"}, PRESETS)


def test_the_calibration_micrographs_are_not_scored_twice(data, monkeypatch):
    """train() scores the unlabelled micrographs to set the threshold; picking them afterwards reuses those
    candidates (same pixels, same model), whatever array holds the pixels. A new model scores again."""
    config = build_config(TopazConfig, {"preset": "tiny", "epochs": "1", "epoch_size": "10",
                                        "expected_particles": "14"}, PRESETS)
    picker = TopazPicker(config, PickerContext(seed=0, progress=False))
    calls = []
    orig = TopazPicker.score_map
    monkeypatch.setattr(TopazPicker, "score_map", lambda self, image, tta=None: calls.append(1) or orig(self, image, tta))
    picker.train(TrainingData(data[:2], SIM.diameter_px, unlabelled=data[2:]))
    assert len(calls) == 2  # the two unlabelled micrographs, for the threshold
    again = picker.score(data[2].image.copy(), SIM.diameter_px)
    assert len(calls) == 2 and len(again)
    again.score[:] = 0  # a caller may change its candidates without touching the remembered ones
    first = picker.score(data[2].image, SIM.diameter_px)
    assert len(calls) == 2 and np.any(first.score != 0)
    fresh = TopazPicker(config, PickerContext(seed=0, progress=False))
    fresh.model = picker.model
    recomputed = fresh.score(data[2].image, SIM.diameter_px)
    assert len(calls) == 3
    np.testing.assert_array_equal(recomputed.score, first.score)
    np.testing.assert_array_equal(recomputed.x, first.x)
    picker.model = copy.deepcopy(picker.model)  # another model: scored anew
    picker.score(data[2].image, SIM.diameter_px)
    assert len(calls) == 4


def test_count_pilots_keep_their_last_weights(data, monkeypatch):
    """Only the final network is averaged: the count estimator's quantiles were chosen on pilots' last weights."""
    averaged = []
    orig = TopazPicker._set_averaged
    monkeypatch.setattr(TopazPicker, "_set_averaged",
                        lambda self, model, *a: averaged.append(model) or orig(self, model, *a))
    config = build_config(TopazConfig, {"preset": "tiny", "epochs": "2", "epoch_size": "10"}, PRESETS)
    picker = TopazPicker(config, PickerContext(seed=0, progress=False))
    state = picker.train(TrainingData(data[:2], SIM.diameter_px))
    assert state.config["training"]["expected_particles_source"] == "estimated"
    assert state.config["training"]["count_estimate"]["folds"] == 2  # two pilots trained
    assert len(averaged) == 1
    assert state.config["training"]["averaged_updates"] == 10  # half of the final network's 2 x 10 updates


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_precision_is_recorded_and_weights_stay_float32(data, precision):
    """precision=bfloat16 runs the training forward under autocast: the network still learns, its weights
    (and so the stored arrays and the scoring) are float32, and the model records how it was trained."""
    import torch

    config = build_config(TopazConfig, {"preset": "tiny", "epochs": "2", "epoch_size": "40",
                                        "expected_particles": "14", "precision": precision}, PRESETS)
    picker = TopazPicker(config, PickerContext(seed=0, progress=False))
    state = picker.train(TrainingData(data[:3], SIM.diameter_px))
    assert state.config["training"]["precision"] == precision
    assert ("training arithmetic" in picker.facts()) is (precision == "bfloat16")  # the run summary says so
    assert all(p.dtype == torch.float32 for p in picker.model.parameters())
    assert all(a.dtype == np.float32 for a in state.arrays.values() if a.dtype.kind == "f")
    assert _ap(picker, data[3:]) > 0.6
