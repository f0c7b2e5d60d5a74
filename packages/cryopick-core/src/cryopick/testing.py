"""Pytest fixtures for plugin authors (loaded automatically through the ``pytest11`` entry point).

Fixtures
--------
cryopick_host
    A fresh plugin host with every installed plugin (``build_host()``).
core_host
    A host with only cryopick-core (entry-point loading off).
simulated_micrograph
    A small simulated micrograph with known truth (``cryopick.simulate``).
tiny_demo
    The built-in demo data set written to a temporary folder.
pristine_cli
    Undoes what calling ``cryopick.cli.main.main()`` in-process leaves behind: plugin commands added to
    the global command group and quiet mode (``-q``). Make it autouse where tests call ``main()``.
one_torch_thread
    Runs the test with one torch thread (deterministic, and immune to OpenMP slow-downs on a busy
    machine); skips it when torch is not installed. Plugins make it autouse in their ``conftest.py``.

Helpers
-------
:func:`check_picker_contract` runs a registered picker through preprocess, train, score on a small
simulated micrograph and checks the contract (types, coordinates inside the image, finite scores).
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def pristine_cli():
    from cryopick import progress
    from cryopick.cli.main import cli

    commands, quiet = dict(cli.commands), progress.is_quiet()
    yield
    cli.commands.clear()
    cli.commands.update(commands)
    progress.set_quiet(quiet)


@pytest.fixture
def cryopick_host():
    from cryopick.host import build_host

    return build_host()


@pytest.fixture
def core_host():
    from cryopick.host import build_host

    return build_host(load_entry_points=False)


@pytest.fixture
def simulated_micrograph():
    from cryopick.simulate import SimulationConfig, simulate_micrograph

    config = SimulationConfig(shape=(256, 256), n_micrographs=1, particles_per_micrograph=12, diameter_px=24.0,
                              snr=0.5, seed=7, nuisances=False)
    return simulate_micrograph(config, 0)


@pytest.fixture
def tiny_demo(tmp_path):
    from cryopick.simulate import make_demo

    return make_demo(tmp_path / "demo")


def check_picker_contract(host, name: str, image: np.ndarray, labels, diameter_px: float, settings=None):
    """Drive picker ``name`` through the pipeline contract on one image; returns its candidates
    (in the image's pixels). ``labels`` are :class:`~cryopick.particles.Particles` on ``image``."""
    from cryopick.particles import Particles
    from cryopick.picker import ModelState, TrainingData, TrainingItem
    from cryopick.pickers import make_picker
    from cryopick.stages.preprocess import preprocess_image

    picker = make_picker(host, name, settings, device="cpu", seed=0)
    pre = preprocess_image(picker, image, diameter_px, None)
    factor = pre.factor
    d_pre = diameter_px / ((factor[0] + factor[1]) / 2)
    if picker.trainable:
        data = TrainingData([TrainingItem("m0", pre.image, labels.scaled(factor))], d_pre)
        state = picker.train(data)
        if state is not None:
            assert isinstance(state, ModelState)
            assert all(isinstance(v, np.ndarray) for v in state.arrays.values())
            fresh = make_picker(host, name, settings, device="cpu", seed=0)
            fresh.load(state)
            picker = fresh
    cands = picker.score(pre.image, d_pre)
    assert isinstance(cands, Particles)
    assert np.all(np.isfinite(cands.score))
    assert np.all(cands.inside(pre.image.shape))
    return cands.scaled((1 / factor[0], 1 / factor[1]))


@pytest.fixture
def one_torch_thread():
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
