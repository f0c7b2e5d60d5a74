"""Stage 1 on simulated data: the self-cross similarity loss separates particle and background features."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from cryopick.simulate import SimulationConfig, simulate_micrograph  # noqa: E402
from cryopick.simulate.config import PRE_CALIBRATION  # noqa: E402  (the simulator this test was tuned on)
from cryopick_mae.losses import scs_pu_loss  # noqa: E402
from cryopick_mae.model import MaskedAutoencoderViT  # noqa: E402
from cryopick_mae.train import encode, finetune  # noqa: E402
from cryopick_mae.windows import crop_centred, to_input, with_rotations  # noqa: E402

from .conftest import TINY  # noqa: E402

DIAMETER = 12.0
WINDOW = 18


@pytest.fixture(scope="module")
def micrograph():
    config = SimulationConfig(shape=(256, 256), n_micrographs=1, particles_per_micrograph=40,
                              diameter_px=DIAMETER, snr=1.0, seed=3, nuisances=False, **PRE_CALIBRATION)
    mic = simulate_micrograph(config, 0)
    image = (mic.image - mic.image.mean()) / mic.image.std()
    return image.astype(np.float32), mic.truth


def _background_xy(truth, shape, n, rng):
    out = []
    while len(out) < n:
        xy = rng.uniform(WINDOW / 2, shape[0] - WINDOW / 2, size=2)
        if np.min(np.hypot(truth.x - xy[0], truth.y - xy[1])) > 1.5 * DIAMETER:
            out.append(xy)
    return np.array(out)


def _separation(use_scs: bool, image, truth) -> float:
    # A fresh (not pre-trained) network: nothing is frozen, since frozen random blocks would only limit
    # what either variant can learn.
    torch.manual_seed(0)
    model = MaskedAutoencoderViT(**TINY)
    rng = np.random.default_rng(0)
    exemplars = truth.subset(slice(0, 10))
    positives = to_input(with_rotations(crop_centred(image, exemplars.xy, WINDOW)), 16)
    finetune(model, positives, image, window_px=WINDOW, steps=60, lr=1e-3, mask_ratio=0.75, unlabelled_ratio=2.0,
             freeze_blocks=0, scs_loss=scs_pu_loss() if use_scs else None, beta=5.0, rng=rng)
    ex = torch.nn.functional.normalize(encode(model, positives), dim=1)
    held_out = to_input(crop_centred(image, truth.subset(slice(10, None)).xy, WINDOW), 16)
    background = to_input(crop_centred(image, _background_xy(truth, image.shape, 60, np.random.default_rng(1)),
                                       WINDOW), 16)

    def score(x):
        return (torch.nn.functional.normalize(encode(model, x), dim=1) @ ex.T).max(dim=1).values.numpy()

    sp, sb = score(held_out), score(background)
    # AUROC of held-out particles against background regions.
    return float((sp[:, None] > sb[None, :]).mean())


def test_scs_separates_particles_from_background(micrograph):
    image, truth = micrograph
    with_scs = _separation(True, image, truth)
    without = _separation(False, image, truth)
    assert with_scs > without
    assert with_scs > 0.8
