"""Simulated cryo-EM micrographs with known particle positions (no torch).

Examples
--------
>>> from cryopick.simulate import SimulationConfig, simulate_micrograph
>>> mic = simulate_micrograph(SimulationConfig(shape=(256, 256), particles_per_micrograph=10), 0)
>>> mic.image.shape, mic.image.dtype.name
((256, 256), 'float32')
"""

from cryopick.simulate.config import SimulationConfig as SimulationConfig
from cryopick.simulate.micrograph import (
    MicrographLayers as MicrographLayers,
    SimulatedMicrograph as SimulatedMicrograph,
    simulate_layers as simulate_layers,
    simulate_micrograph as simulate_micrograph,
)
from cryopick.simulate.species import SUITE as SUITE, Species as Species
from cryopick.simulate.suite import (
    DEMO_CONFIG as DEMO_CONFIG,
    SimulatedDataset as SimulatedDataset,
    make_demo as make_demo,
    simulate_dataset as simulate_dataset,
    suite_configs as suite_configs,
)
