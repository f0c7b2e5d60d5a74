"""``cryopick mae pretrain`` writes a weights file that loads and that ``checkpoint=`` accepts."""

import numpy as np
import pytest

pytest.importorskip("torch")


def test_pretrain_writes_loadable_weights(tmp_path):
    import mrcfile
    from click.testing import CliRunner

    from cryopick.weights import load_weights
    from cryopick_mae.commands import mae_group
    from cryopick_mae.picker import MAEConfig, MAEPicker

    rng = np.random.default_rng(0)
    for i in range(2):
        with mrcfile.new(tmp_path / f"m{i}.mrc") as mrc:
            mrc.set_data(rng.normal(size=(96, 96)).astype(np.float32))
            mrc.voxel_size = 2.0
    out = tmp_path / "w.h5"
    # several files after one --micrographs (an unquoted glob the shell expanded)
    args = ["pretrain", "--micrographs", str(tmp_path / "m0.mrc"), str(tmp_path / "m1.mrc"), "--diameter", "16",
            "--out", str(out),
            "--preset", "cpu", "--epochs", "2", "--regions-per-micrograph", "4", "--device", "cpu",
            "--set", "image_size=16", "--set", "patch_size=4", "--set", "embed_dim=32", "--set", "depth=2",
            "--set", "num_heads=2", "--set", "decoder_dim=16", "--set", "decoder_depth=1",
            "--set", "decoder_heads=2"]
    result = CliRunner().invoke(mae_group, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    state = load_weights(out)
    assert state.config["architecture"]["embed_dim"] == 32
    assert state.config["steps"] == 2
    assert any(k.startswith("model.blocks.") for k in state.arrays)

    # The picker builds its network from the checkpoint's architecture.
    picker = MAEPicker(MAEConfig(checkpoint=str(out)))
    assert picker.architecture()["image_size"] == 16
    from cryopick_mae.train import model_from_state

    model = model_from_state(state)
    assert len(model.blocks) == 2
