"""The generic model shipped inside cryopick-hydra (``pretrained/hydra-generic.h5``): it loads without pickle,
records what it was trained on, and picks a simulated species it never saw (left out of its training)
zero-shot (AP 0.28 at the calibrated simulator's hard defaults), far above an untrained network of the same
architecture."""

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryopick.host import build_host  # noqa: E402
from cryopick.metrics import evaluate  # noqa: E402
from cryopick.picker import TrainingData, TrainingItem  # noqa: E402
from cryopick.pickers import make_picker  # noqa: E402
from cryopick.simulate import SimulationConfig, simulate_micrograph  # noqa: E402
from cryopick.stages.preprocess import preprocess_image  # noqa: E402

HOST = build_host()
D = 44.0  # original pixels: the picker halves the micrograph (particles about 22 px)


def _unseen(n=2):
    # dumbbell: one of the species left out of the shipped model's training (its record says so)
    config = SimulationConfig(shape=(384, 384), n_micrographs=n, particles_per_micrograph=25, species="dumbbell",
                              diameter_px=D, seed=5)
    return [simulate_micrograph(config, i) for i in range(n)]


def _ap(picker, mics):
    cands, truth = {}, {}
    for i, m in enumerate(mics):
        pre = preprocess_image(picker, np.asarray(m.image, np.float32), D, None)
        cands[str(i)] = picker.score(pre.image, D / pre.factor[0])
        truth[str(i)] = m.truth.scaled(pre.factor)
    return evaluate(cands, truth, diameter_px=D / pre.factor[0], candidates=cands).average_precision


def test_the_shipped_model_is_plain_arrays_with_its_record():
    from cryopick_hydra.picker import builtin_model

    path = builtin_model()
    assert path.stat().st_size < 5e6  # small enough for a wheel
    with h5py.File(path, "r") as f:  # nothing pickled: every dataset is a numeric array
        kinds = set()
        f.visititems(lambda name, obj: kinds.add(obj.dtype.kind) if isinstance(obj, h5py.Dataset) else None)
    assert kinds <= {"f", "i", "u", "S", "O"} and "f" in kinds
    state = make_picker(HOST, "hydra", {}, device="cpu", seed=0).checkpoint_state()
    assert state.config["heads"] == ["generic"] and "sim:dumbbell" in state.config["excluded"]
    assert state.config["code_version"] and state.config["trained_on"]


def test_the_shipped_model_picks_an_unseen_species_zero_shot():
    from cryopick_hydra.model import hydra_net

    torch.set_num_threads(1)
    mics = _unseen()
    picker = make_picker(HOST, "hydra", {}, device="cpu", seed=0)
    state = picker.train(TrainingData([TrainingItem("a", mics[0].image, None)], D))
    assert state.config["head"] == "generic"
    shipped = _ap(picker, mics)
    torch.manual_seed(0)
    picker.net = hydra_net(**state.config["architecture"]).eval()  # the same network, untrained
    untrained = _ap(picker, mics)
    assert shipped > 0.2 and shipped > untrained + 0.2, (shipped, untrained)
