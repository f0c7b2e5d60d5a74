"""``--set init=``: training starts from a pretrained network (a cryopick weights file or a topaz-em ``.sav``),
as topaz-em starts from its bundled detectors; with few labels that beats starting from random weights."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from cryopick.config import build_config
from cryopick.errors import ConfigError
from cryopick.metrics import evaluate
from cryopick.picker import ModelState, PickerContext, TrainingData, TrainingItem
from cryopick.preprocess import apply_chain
from cryopick.simulate import SimulationConfig, simulate_micrograph
from cryopick.torchutil import state_dict_to_arrays
from cryopick.weights import save_weights
from cryopick_topaz.gmm import GMMNormalize
from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker

torch = pytest.importorskip("torch")

SIM = SimulationConfig(shape=(192, 192), n_micrographs=5, particles_per_micrograph=14, diameter_px=16.0,
                       snr=0.3, seed=23, nuisances=False)
TINY = {"preset": "tiny", "epochs": "2", "epoch_size": "40", "expected_particles": "14"}

_spec = importlib.util.spec_from_file_location(
    "make_topaz_sav", Path(__file__).resolve().parents[1] / "fixtures" / "make_topaz_sav.py")
make = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make)


@pytest.fixture(scope="module")
def data():
    mics = [simulate_micrograph(SIM, i) for i in range(SIM.n_micrographs)]
    return [TrainingItem(m.name, apply_chain(m.image, [GMMNormalize()]).image, m.truth) for m in mics]


def _picker(**settings) -> TopazPicker:
    return TopazPicker(build_config(TopazConfig, {**TINY, **settings}, PRESETS), PickerContext(seed=0, progress=False))


def _ap(picker, items):
    cands = {it.name: picker.score(it.image, SIM.diameter_px) for it in items}
    truth = {it.name: it.labels for it in items}
    return evaluate(cands, truth, diameter_px=SIM.diameter_px, candidates=cands).average_precision


@pytest.fixture(scope="module")
def pretrained(data, tmp_path_factory):
    """A tiny network trained on three completely labelled micrographs, saved as the recipe saves (float16)."""
    picker = _picker()
    state = picker.train(TrainingData(data[:3], SIM.diameter_px))
    arrays = {k: (v.astype(np.float16) if v.dtype.kind == "f" else v) for k, v in state.arrays.items()}
    path = tmp_path_factory.mktemp("init") / "init.h5"
    save_weights(path, ModelState(arrays, {"picker": "topaz", "config": state.config["config"]}))
    return path, picker


def test_init_starts_from_the_file_and_beats_random_weights_with_few_labels(data, pretrained):
    path, teacher = pretrained
    picker = _picker(init=str(path))
    start = picker._initial_model()
    for name, value in state_dict_to_arrays(start).items():
        want = state_dict_to_arrays(teacher.model)[name]
        np.testing.assert_allclose(value, want.astype(np.float16).astype(want.dtype), rtol=0, atol=0)

    # Three labels on one micrograph, a few steps: the pretrained start keeps what it knew.
    few = [TrainingItem(data[3].name, data[3].image, data[3].labels.subset(np.arange(3)))]
    short = {"epochs": "1", "epoch_size": "5"}
    test = data[4:]
    warm = _picker(init=str(path), **short)
    warm.train(TrainingData(few, SIM.diameter_px))
    cold = _picker(**short)
    cold.train(TrainingData(few, SIM.diameter_px))
    ap_warm, ap_cold = _ap(warm, test), _ap(cold, test)
    print(f"AP from random weights {ap_cold:.3f}, from the pretrained network {ap_warm:.3f}")
    assert ap_warm > ap_cold + 0.1  # measured: 0.94 vs 0.74
    assert ap_warm > 0.85


def test_init_from_a_topaz_em_file_trains_its_own_layers_and_reloads(data, tmp_path):
    sav = make.save(make.build("resnet8-nobn", seed=5), tmp_path / "resnet8_u4.sav", state_dict=True, legacy=True)
    picker = _picker(init=str(sav), epochs="1", epoch_size="3")
    state = picker.train(TrainingData(data[:1], SIM.diameter_px))
    assert state.config["architecture"]["name"] == "resnet8"  # the file's layers, not the tiny preset's conv31
    assert state.config["training"]["init_file"] == str(sav.resolve())  # what the run started from
    fresh = _picker()
    fresh.load(state)
    a, b = picker.score(data[4].image, SIM.diameter_px), fresh.score(data[4].image, SIM.diameter_px)
    np.testing.assert_array_equal(a.score, b.score)


def test_init_errors_name_the_setting(data, pretrained, tmp_path):
    path, _ = pretrained
    with pytest.raises(ConfigError, match=r"init=.*no such file"):
        _picker(init=str(tmp_path / "missing.h5"))._initial_model()
    with pytest.raises(ConfigError, match=r"holds conv31 with 8 units.*units="):
        _picker(init=str(path), units="16")._initial_model()
    other = tmp_path / "hydra.h5"
    save_weights(other, ModelState({"w": np.zeros(2, np.float32)}, {"picker": "hydra"}))
    with pytest.raises(ConfigError, match="not a weights file of a cryopick topaz network"):
        _picker(init=str(other))._initial_model()
    # "none" (and the default) is a random start
    assert isinstance(_picker(init="none")._initial_model(), torch.nn.Module)


def test_a_pretrained_start_keeps_its_classifier_bias_a_random_one_starts_at_the_prior(data, pretrained):
    """topaz-em fine-tunes its bundled detectors as they are; only a random start gets bias = logit(pi)."""
    path, teacher = pretrained
    images, labels = [data[3].image], [data[3].labels]
    rng = np.random.default_rng(0)
    warm = _picker(init=str(path))._fit(images, labels, [], 14.0, 0.0, 0, rng, [], "t", prior_radius=3.0)
    want = float(teacher.model.classifier.bias.detach().numpy()[0])
    assert float(warm["model"].classifier.bias.detach().numpy()[0]) == pytest.approx(want, abs=2e-3)  # float16
    cold = _picker()._fit(images, labels, [], 14.0, 0.0, 0, rng, [], "t", prior_radius=3.0)
    pi = cold["pi"]
    assert float(cold["model"].classifier.bias.detach().numpy()[0]) == pytest.approx(np.log(pi / (1 - pi)),
                                                                                      rel=1e-5)
    assert abs(want - np.log(pi / (1 - pi))) > 0.1  # the two starts differ, so the test can fail


def _fake_topaz_em(root: Path) -> Path:
    """A topaz-em environment as pip makes it: a console script whose shebang names the environment's Python,
    and the package's bundled detectors (a stand-in resnet8 with 4 units)."""
    detectors = root / "lib" / "python3.11" / "site-packages" / "topaz" / "pretrained" / "detector"
    detectors.mkdir(parents=True)
    (root / "bin").mkdir()
    exe = root / "bin" / "topaz"
    exe.write_text(f"#!{root / 'bin' / 'python'}\nimport sys\n")
    exe.chmod(0o755)
    return make.save(make.build("resnet8-nobn", seed=5), detectors / "resnet8_u4.sav", state_dict=True, legacy=True)


def test_init_topaz_em_finds_the_detector_topaz_em_would_start_from(tmp_path, monkeypatch):
    from cryopick_topaz.import_model import find_topaz_em_detector

    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match=r"init=topaz-em: no topaz-em installation found.*pip install topaz-em.*resnet8_u4\.sav"):
        _picker(init="topaz-em", backbone="resnet8", units="4")._initial_model()
    sav = _fake_topaz_em(tmp_path / "env")
    monkeypatch.setenv("PATH", f"{tmp_path / 'nothing'}:{tmp_path / 'env' / 'bin'}")
    assert find_topaz_em_detector("resnet8", 4) == sav.resolve()
    picker = _picker(init="topaz-em", backbone="resnet8", units="4")
    model = picker._initial_model()
    assert picker._init_spec["name"] == "resnet8"
    sd = torch.load(sav, weights_only=True)  # the test's own file, a state dict of tensors
    np.testing.assert_array_equal(model.classifier.weight.detach().numpy(), sd["classifier.weight"].numpy())
    with pytest.raises(ConfigError, match=r"has no pretrained resnet16_u4\.sav; it has resnet8_u4\.sav.*units="):
        _picker(init="topaz-em", backbone="resnet16", units="4")._initial_model()


def test_users_with_topaz_em_are_told_about_init_unless_they_chose(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert _picker(backbone="resnet8", units="4")._pretrained_hint() is None  # no topaz-em: nothing to say
    _fake_topaz_em(tmp_path / "env")
    monkeypatch.setenv("PATH", str(tmp_path / "env" / "bin"))
    hint = _picker(backbone="resnet8", units="4")._pretrained_hint()
    assert "resnet8_u4.sav" in hint and "--set init=topaz-em" in hint
    assert _picker(backbone="resnet8", units="4", init="random")._pretrained_hint() is None
    assert isinstance(_picker(init="random")._initial_model(), torch.nn.Module)
    assert _picker(backbone="resnet16", units="4")._pretrained_hint() is None  # no such detector to offer
