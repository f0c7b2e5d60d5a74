"""A trained picker on Dask workers: the model trained in this process reaches the workers (scattered once,
loaded there with ``Picker.load``) and they pick exactly what this process picks."""

from pathlib import Path

import numpy as np
import pytest

from cryopick.executor import ExecutorOptions
from cryopick.pipeline import RunOptions, open_project, run_pipeline

pytest.importorskip("distributed")

TINY = {"preset": "tiny", "expected_particles": "15", "epochs": "1", "epoch_size": "10"}


def _stored(summary):
    project = open_project(Path(summary["project"]), "r")
    try:
        info = project.run_info(summary["run"])
        return project.model(info["model"]), project.candidates(summary["run"])
    finally:
        project.store.close()


def test_a_trained_topaz_scores_the_same_on_two_workers(tmp_path):
    from cryopick.simulate import SimulationConfig, simulate_dataset

    sim = simulate_dataset(SimulationConfig(shape=(256, 256), n_micrographs=4, particles_per_micrograph=15,
                                            diameter_px=20.0, seed=7), tmp_path / "sim")
    common = dict(picker="topaz", micrographs=str(tmp_path / "sim" / "*.mrc"), labels=str(sim.truth),
                  diameter="20", settings=TINY, device="cpu")
    local = run_pipeline(RunOptions(out=tmp_path / "local", **common))
    # trained again in this process (deterministic: the same weights), then scored on the workers
    remote = run_pipeline(RunOptions(out=tmp_path / "dask", executor=ExecutorOptions("dask", workers=2), **common))
    assert remote["run"] == local["run"] and remote["picks"] == local["picks"]
    (model, ours), (remote_model, theirs) = _stored(local), _stored(remote)
    for key, array in model.arrays.items():
        np.testing.assert_array_equal(array, remote_model.arrays[key], err_msg=key)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert len(ours[name]) > 0
        for field in ("x", "y", "score"):
            np.testing.assert_array_equal(getattr(ours[name], field), getattr(theirs[name], field), err_msg=name)
