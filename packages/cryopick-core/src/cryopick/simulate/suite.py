"""Simulated data sets on disk, the built-in demo, and one configuration per species of the suite."""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np

from cryopick.progress import progress
from cryopick.simulate.config import PRE_CALIBRATION, SimulationConfig
from cryopick.simulate.micrograph import simulate_micrograph
from cryopick.simulate.species import SUITE

DEMO_CONFIG = SimulationConfig(
    shape=(512, 512),
    n_micrographs=6,
    particles_per_micrograph=40,
    species="globular",
    pixel_size_a=4.0,
    diameter_px=32.0,
    snr=0.02,
    seed=2024,
    # Pinned to the simulator as it was before the calibration against real data (docs/benchmarks.md,
    # "Simulator calibration"): white noise, the original nuisances. The demo is the README's first command
    # and must stay quick and clearly learnable; it does not follow SimulationConfig's calibrated defaults.
    **PRE_CALIBRATION,
)
"""Configuration of the demo used by ``cryopick run`` when no data are given (explicit in every field that
affects the images, so that calibrating :class:`SimulationConfig`'s defaults does not change the demo)."""

#: Simulated analogues of the real sets in ``shared/data/real``, calibrated with
#: ``benchmarks/calibrate_simulator.py`` so that DoG's AP and the image statistics (SNR in the particle band,
#: particle-scale contrast, power spectrum, packing, gradient) come close to the real ones (docs/benchmarks.md).
ANALOGUES: dict[str, SimulationConfig] = {
    # EMPIAR-10028 80S ribosome (CryoPPP, binned to 1024², ~5.4 A/px): high contrast, Thon rings, clean ice;
    # DoG's precision is capped by unlabelled particle-like fragments and touching particles.
    "ribosome": SimulationConfig(
        shape=(1024, 1024), particles_per_micrograph=83, species="asymmetric", pixel_size_a=5.4, diameter_px=56.0,
        snr=0.1, defocus_um=(2.5, 3.5), structural_noise=0.9, noise_b_factor=900.0, ice_gradient=0.1,
        contaminants=0.1, gold_beads=0.0, broken_particles=0.6, min_distance=0.75),
    # EMPIAR-10059 TRPV1 (CryoPPP, 1024², ~4.5 A/px): ~690 small particles per micrograph, centres 0.7
    # diameters apart (median), low contrast, a strong ice gradient.
    "trpv1": SimulationConfig(
        shape=(1024, 1024), particles_per_micrograph=674, species="globular", pixel_size_a=4.5, diameter_px=35.0,
        snr=0.03, defocus_um=(2.0, 2.8), structural_noise=0.8, noise_b_factor=300.0, ice_gradient=0.8,
        contaminants=0.5, gold_beads=0.0, broken_particles=0.3, min_distance=0.4),
    # EMPIAR-10146 apoferritin (raw detector sums, 1240 x 1200, ~2 A/px assumed): shot-noise dominated, no
    # visible rings, particles hardly visible at the particle scale (DoG is near chance).
    "apoferritin": SimulationConfig(
        shape=(1200, 1240), particles_per_micrograph=159, species="shell", pixel_size_a=2.0, diameter_px=60.0,
        snr=0.002, defocus_um=(0.8, 1.6), structural_noise=0.3, noise_b_factor=50.0, ice_gradient=0.1,
        contaminants=0.1, gold_beads=0.0, broken_particles=0.1, min_distance=1.0),
}


def analogue_config(name: str) -> SimulationConfig:
    """The calibrated analogue of a real set: ``ribosome``, ``trpv1`` or ``apoferritin`` (:data:`ANALOGUES`)."""
    from cryopick.errors import InputError

    try:
        return ANALOGUES[name]
    except KeyError:
        raise InputError(f"unknown analogue {name!r}; choose one of: {', '.join(ANALOGUES)}") from None


TRUTH_FILE = "truth.star"


@attrs.define(eq=False)
class SimulatedDataset:
    """A simulated data set written to disk.

    Parameters
    ----------
    micrographs : list of Path
        One ``<name>.mrc`` per micrograph (float32, pixel size in the header).
    truth : Path
        ``truth.star``: RELION 3.0 style coordinates of all labelled particles.
    config : SimulationConfig
    """

    micrographs: list[Path]
    truth: Path
    config: SimulationConfig


def truth_table(micrographs) -> pandas.DataFrame:  # noqa: F821
    """RELION-style table of the labelled particles of simulated micrographs."""
    import pandas as pd

    frames = []
    for mic in micrographs:
        n = len(mic.truth)
        frames.append(pd.DataFrame({
            "rlnMicrographName": [f"{mic.name}.mrc"] * n,
            "rlnCoordinateX": mic.truth.x,
            "rlnCoordinateY": mic.truth.y,
            "rlnAngleRot": mic.orientations[:, 0],
            "rlnAngleTilt": mic.orientations[:, 1],
            "rlnAnglePsi": mic.orientations[:, 2],
            "rlnDefocusU": np.full(n, mic.defocus_um * 1e4),
            "cpSpecies": mic.species,
        }))
    if not frames:
        return pd.DataFrame(columns=["rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY"])
    return pd.concat(frames, ignore_index=True)


def simulate_dataset(config: SimulationConfig, out_dir) -> SimulatedDataset:
    """Simulate ``config.n_micrographs`` micrographs and write them with their truth.

    Writes ``<out_dir>/<name>.mrc`` for each micrograph (float32, ``voxel_size`` = pixel size in Å),
    ``<out_dir>/truth.star`` (columns ``rlnMicrographName`` = ``<name>.mrc``, ``rlnCoordinateX/Y``,
    ``rlnAngleRot/Tilt/Psi``, ``rlnDefocusU`` in Å, ``cpSpecies``) and ``<out_dir>/simulation.json`` (the config).

    Parameters
    ----------
    config : SimulationConfig
    out_dir : str or Path
        Created if missing; existing files with the same names are overwritten.

    Returns
    -------
    SimulatedDataset
    """
    import mrcfile
    import starfile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths, mics = [], []
    for index in progress(range(config.n_micrographs), desc=f"simulating {config.species}"):
        mic = simulate_micrograph(config, index)
        path = out / f"{mic.name}.mrc"
        with mrcfile.new(path, overwrite=True) as mrc:
            mrc.set_data(mic.image.astype(np.float32, copy=False))
            mrc.voxel_size = config.pixel_size_a
            # a fixed label instead of mrcfile's creation time: the same config writes the same bytes, so
            # a rerun finds the same checksums and reuses the project's cached preprocessing
            mrc.header.label[0] = f"cryopick simulate {config.species} seed {config.seed}".encode()[:80]
        paths.append(path)
        # Keep only what the table needs, not the images.
        mic.image = None
        mics.append(mic)
    truth = out / TRUTH_FILE
    starfile.write(truth_table(mics), truth, overwrite=True)
    (out / "simulation.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    return SimulatedDataset(paths, truth, config)


def make_demo(out_dir) -> SimulatedDataset:
    """Write the built-in demo data set (:data:`DEMO_CONFIG`) to ``out_dir``.

    Six 512 x 512 micrographs of about 40 labelled globular particles of 32 px, with nuisances, at an SNR where
    a difference-of-Gaussians picker is clearly imperfect and a trained network can do better.
    """
    return simulate_dataset(DEMO_CONFIG, out_dir)


def suite_configs(base: SimulationConfig | None = None, species: list[str] | None = None) -> dict[str, SimulationConfig]:
    """One configuration per species, each with its own diameter in pixels and seed.

    Parameters
    ----------
    base : SimulationConfig, optional
        Shared settings (shape, counts, SNR, pixel size, ...); default ``SimulationConfig()``.
    species : list of str, optional
        Names from :data:`SUITE`; default all.

    Returns
    -------
    dict
        ``{species name: config}`` with ``diameter_px = diameter_a / pixel_size_a`` and ``seed = base.seed + i``.
    """
    base = base or SimulationConfig()
    names = list(SUITE) if species is None else list(species)
    out = {}
    for i, name in enumerate(names):
        sp = SUITE[name]
        out[name] = base.evolve(species=name, diameter_px=sp.diameter_a / base.pixel_size_a, seed=base.seed + i)
    return out
