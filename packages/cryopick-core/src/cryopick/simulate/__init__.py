"""Simulated cryo-EM micrographs with known particle positions (no torch).

Examples
--------
>>> from cryopick.simulate import SimulationConfig, simulate_micrograph
>>> mic = simulate_micrograph(SimulationConfig(shape=(256, 256), particles_per_micrograph=10), 0)
>>> mic.image.shape, mic.image.dtype.name
((256, 256), 'float32')
"""

from cryopick.simulate.config import SimulationConfig as SimulationConfig
from cryopick.simulate.micrograph import MicrographLayers as MicrographLayers
from cryopick.simulate.micrograph import SimulatedMicrograph as SimulatedMicrograph
from cryopick.simulate.micrograph import simulate_layers as simulate_layers
from cryopick.simulate.micrograph import simulate_micrograph as simulate_micrograph
from cryopick.simulate.species import SUITE as SUITE
from cryopick.simulate.species import Species as Species
from cryopick.simulate.suite import DEMO_CONFIG as DEMO_CONFIG
from cryopick.simulate.suite import SimulatedDataset as SimulatedDataset
from cryopick.simulate.suite import make_demo as make_demo
from cryopick.simulate.suite import simulate_dataset as simulate_dataset
from cryopick.simulate.suite import suite_configs as suite_configs
