import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread(one_torch_thread):
    """Every test here runs with one torch thread (cryopick.testing)."""


@pytest.fixture(scope="session")
def small_set(tmp_path_factory):
    """Two 256 x 256 simulated micrographs (24 px particles, pixel size 4 Å) with their truth.star."""
    from cryopick.simulate import SimulationConfig, simulate_dataset

    config = SimulationConfig(shape=(256, 256), n_micrographs=2, particles_per_micrograph=25, diameter_px=24.0,
                              snr=0.08, seed=11, nuisances=False)
    return simulate_dataset(config, tmp_path_factory.mktemp("active-set"))
