"""The ``mae`` picker through the pipeline contract, on a small simulated micrograph."""

import numpy as np
import pytest

pytest.importorskip("torch")

from cryopick.testing import check_picker_contract  # noqa: E402

TINY_SETTINGS = {"image_size": "16", "patch_size": "4", "embed_dim": "32", "depth": "2", "num_heads": "2",
                 "decoder_dim": "16", "decoder_depth": "1", "decoder_heads": "2", "pretrain_steps": "4",
                 "pretrain_batch": "16", "finetune_steps": "4", "batch_size": "128",
                 "checkpoint": "none"}


@pytest.fixture(scope="module")
def host():
    from cryopick.host import build_host

    return build_host()


@pytest.mark.parametrize("extra", [{}, {"scs": "false"}, {"pu": "false", "match": "mean", "pooling": "mean"}])
def test_mae_picker_contract(host, simulated_micrograph, extra):
    labels = simulated_micrograph.truth.subset(slice(0, 5))
    cands = check_picker_contract(host, "mae", simulated_micrograph.image, labels,
                                  diameter_px=24.0, settings={**TINY_SETTINGS, **extra})
    assert len(cands) > 0
    # Merged duplicates: no two candidates closer than the NMS radius (0.6 diameters, original pixels).
    from scipy.spatial import cKDTree

    assert not cKDTree(cands.xy).query_pairs(0.6 * 24.0 * 0.99)


def test_mae_picker_deterministic(host, simulated_micrograph):
    labels = simulated_micrograph.truth.subset(slice(0, 5))
    runs = [check_picker_contract(host, "mae", simulated_micrograph.image, labels, diameter_px=24.0,
                                  settings=TINY_SETTINGS) for _ in range(2)]
    assert np.array_equal(runs[0].xy, runs[1].xy)
    assert np.array_equal(runs[0].score, runs[1].score)


def test_preprocessing_maps_window_to_model_input():
    from cryopick_mae.picker import MAEConfig, MAEPicker

    picker = MAEPicker(MAEConfig(image_size=32, crop_factor=1.5, denoise=0.1))
    chain = picker.preprocessing(64.0, None)
    assert chain[0] == ("downsample", {"factor": 3.0})  # 1.5 * 64 / 32
    assert chain[1][0] == "lowpass" and chain[-1][0] == "normalize"
    assert picker.window_px(64.0 / 3.0) == 32
