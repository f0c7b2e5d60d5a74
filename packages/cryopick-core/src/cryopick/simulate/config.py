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
    """

    shape: tuple[int, int] = attrs.field(default=(1024, 1024), converter=_shape)
    n_micrographs: int = 4
    particles_per_micrograph: int = 60
    species: str = "globular"
    pixel_size_a: float = 4.0
    diameter_px: float = 40.0
    snr: float = 0.1
    seed: int = 0
    defocus_um: tuple[float, float] = attrs.field(default=(1.0, 2.5), converter=_pair)
    astigmatism_um: float = 0.05
    voltage_kv: float = 300.0
    cs_mm: float = 2.7
    amplitude_contrast: float = 0.07
    b_factor: float = 80.0
    nuisances: bool = True
    min_distance: float = 1.0

    def evolve(self, **changes) -> SimulationConfig:
        """A copy with some fields changed."""
        return attrs.evolve(self, **changes)

    def to_dict(self) -> dict:
        """JSON-ready dictionary of all fields."""
        d = attrs.asdict(self)
        d["shape"] = list(self.shape)
        d["defocus_um"] = list(self.defocus_um)
        return d
