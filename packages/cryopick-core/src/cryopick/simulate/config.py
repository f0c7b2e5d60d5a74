"""Settings of a simulated data set."""

from __future__ import annotations

import attrs


def _shape(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    rows, cols = (int(v) for v in value)
    return (rows, cols)


def _pair(value) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return (float(value), float(value))
    lo, hi = (float(v) for v in value)
    return (lo, hi)


@attrs.define(frozen=True)
class SimulationConfig:
    """Everything that determines a simulated data set; the same config and seed give identical micrographs.

    The defaults are calibrated against real micrographs (``benchmarks/calibrate_simulator.py``,
    docs/benchmarks.md "Simulator calibration"): at SNR 0.1 a DoG picker's AP and best F1, the SNR in the particle
    band and the particle-scale contrast are close to those of the EMPIAR-10028 ribosome set. Before that
    calibration the noise was white, every particle was well separated and DoG's AP was ~0.75 (easier than every
    real set); :data:`~cryopick.simulate.suite.DEMO_CONFIG` keeps those settings, and
    :data:`~cryopick.simulate.suite.ANALOGUES` holds one calibrated configuration per real set.

    Parameters
    ----------
    shape : (int, int)
        Micrograph size ``(rows, cols)`` in pixels.
    n_micrographs : int
        Number of micrographs in a data set.
    particles_per_micrograph : int
        Labelled particles per micrograph (fewer if they cannot be placed without overlap).
    species : str
        A name in :data:`~cryopick.simulate.species.SUITE`.
    pixel_size_a : float
        Pixel size in Å (sets the CTF's frequency scale).
    diameter_px : float
        Particle diameter in pixels (the species is scaled to it).
    snr : float
        Target signal-to-noise ratio: mean square of the CTF-filtered particle signal over the labelled particle
        disks divided by the noise variance (see :mod:`cryopick.simulate.micrograph`).
    seed : int
        Random seed; micrograph ``i`` uses the stream ``(seed, i)``.
    defocus_um : (float, float)
        Range of the per-micrograph mean defocus in µm (positive = underfocus).
    astigmatism_um : float
        Largest difference between the two defocus axes, µm.
    voltage_kv, cs_mm, amplitude_contrast, b_factor : float
        Microscope: voltage (kV), spherical aberration (mm), amplitude contrast, envelope B-factor (Å²).
    nuisances : bool
        Add unlabelled ice gradient, carbon edge, contaminants, gold beads, aggregates and broken particles.
    min_distance : float
        Smallest centre distance between particles as a multiple of the diameter (outside aggregates).
    structural_noise : float
        Fraction (0-1) of the noise variance that is structural (ice and solvent scattering: CTF-modulated, the
        noise that shows Thon rings in real power spectra, and falling off with frequency as
        ``exp(-noise_b_factor k^2 / 2)`` in power); the rest is white (shot) noise. Structural noise keeps
        much of its power in the band a particle lives in, so at the same SNR picking is harder than with
        white noise.
    noise_b_factor : float
        B-factor (Å²) of the structural noise's envelope (detector MTF, drift, and the binning of real data).
    ice_gradient, contaminants, gold_beads : float
        Multipliers of the ice-thickness gradient's amplitude and of the mean numbers of ice contaminants and
        gold beads per 1024² (1.0: the simulator's original strengths: 1 contaminant and 2 beads per 1024²).
    broken_particles : float
        Mean number of unlabelled broken particles (dissociated subunits, fragments: part of a particle's
        density) per labelled particle. In real sets they are the particle-like blobs a labeller leaves out.
    """

    shape: tuple[int, int] = attrs.field(default=(1024, 1024), converter=_shape)
    n_micrographs: int = 4
    particles_per_micrograph: int = 60
    species: str = "globular"
    pixel_size_a: float = 4.0
    diameter_px: float = 40.0
    snr: float = 0.1
    seed: int = 0
    defocus_um: tuple[float, float] = attrs.field(default=(1.5, 3.0), converter=_pair)
    astigmatism_um: float = 0.05
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    b_factor: float = 80.0
    nuisances: bool = True
    min_distance: float = 0.8
    structural_noise: float = 0.9
    noise_b_factor: float = 500.0
    ice_gradient: float = 0.3
    contaminants: float = 0.3
    gold_beads: float = 0.25
    broken_particles: float = 0.5

    def evolve(self, **changes) -> SimulationConfig:
        """A copy with some fields changed."""
        return attrs.evolve(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dictionary of all fields."""
        d = attrs.asdict(self)
        d["shape"] = list(self.shape)
        d["defocus_um"] = list(self.defocus_um)
        return d


#: Field values of :class:`SimulationConfig` before its calibration against real data (commit 875e7b7):
#: ``SimulationConfig(**PRE_CALIBRATION)`` makes the same micrographs as ``SimulationConfig()`` did then. Used by
#: the demo and by tests written for that simulator.
PRE_CALIBRATION: dict = dict(
    defocus_um=(1.0, 2.5), min_distance=1.0, structural_noise=0.0, noise_b_factor=0.0, ice_gradient=1.0,
    contaminants=1.0, gold_beads=1.0, broken_particles=0.1,
)
