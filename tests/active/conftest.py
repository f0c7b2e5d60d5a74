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


@pytest.fixture(scope="session")
def simulated_session():
    """A factory of :func:`_simulated_session`."""
    return _simulated_session


def _simulated_session(acquisition: str = "entropy", seed: int = 0, *, shape=(256, 256), particles: int = 25,
                      snr: float = 0.05, sim_seed: int = 5, nuisances: bool = True):
    """An :class:`ActiveSession` (``tiny`` preset) on two simulated micrographs (24 px particles, 4 Å/px),
    preprocessed as the picker does, with their truth (scaled to the preprocessed pixels)."""
    from cryopick.host import build_host
    from cryopick.pickers import make_picker
    from cryopick.simulate import SimulationConfig, simulate_micrograph
    from cryopick.stages.preprocess import preprocess_image
    from cryopick_active.session import ActiveSession, Item

    picker = make_picker(build_host(), "active", {"preset": "tiny", "acquisition": acquisition}, "cpu", seed)
    config = SimulationConfig(shape=shape, n_micrographs=2, particles_per_micrograph=particles, diameter_px=24.0,
                              snr=snr, seed=sim_seed, nuisances=nuisances)
    items, truth = [], {}
    for i in range(2):
        mic = simulate_micrograph(config, i)
        pre = preprocess_image(picker, mic.image, 24.0, 4.0)
        items.append(Item(mic.name, pre.image, picker.features(pre.image), pre.factor))
        truth[mic.name] = mic.truth.scaled(pre.factor)
    return ActiveSession(picker, items, 24.0 / items[0].factor[0], truth=truth, seed=seed), truth
