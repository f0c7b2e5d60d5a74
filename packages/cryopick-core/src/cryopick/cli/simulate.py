"""``cryopick simulate``: write simulated micrographs (MRC) with their ground truth (``truth.star``).

Examples::

    cryopick simulate --out sim/                          # 4 micrographs 1024x1024, globular, SNR 0.1
    cryopick simulate --out sim/ --species c7_ring --n 8 --size 2048x1536 --particles 150 --diameter 48
    cryopick simulate --out sim/ --snr 0.02 --pixel-size 2.5 --seed 7 --no-nuisances
    cryopick simulate --out suite/ --suite --n 2        # one subfolder per species of the suite
"""

from __future__ import annotations

import click


def _parse_size(value: str) -> tuple[int, int]:
    from cryopick.errors import InputError

    try:
        parts = [int(v) for v in value.lower().split("x")]
    except ValueError:
        raise InputError(f"--size {value!r}: expected N or ROWSxCOLS, e.g. 1024 or 1024x768") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise InputError(f"--size {value!r}: expected N or ROWSxCOLS, e.g. 1024 or 1024x768")
    return parts[0], parts[1]


@click.command("simulate")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--species", default="globular", show_default=True, help="Species name from the suite.")
@click.option("--n", "n_micrographs", default=4, show_default=True, type=int, help="Number of micrographs.")
@click.option("--size", default="1024", show_default=True, help="Micrograph size: N or ROWSxCOLS.")
@click.option("--particles", default=60, show_default=True, type=int, help="Labelled particles per micrograph.")
@click.option("--diameter", type=float, default=None, help="Particle diameter in pixels [40; with --suite: from Å].")
@click.option("--pixel-size", type=float, default=4.0, show_default=True, help="Pixel size in Å.")
@click.option("--snr", type=float, default=0.1, show_default=True, help="Signal-to-noise ratio over particle disks.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--suite", "suite", is_flag=True, help="Write every species of the suite into subfolders.")
@click.option("--no-nuisances", is_flag=True, help="No ice gradient, carbon, contaminants, beads, aggregates.")
def simulate(out_dir, species, n_micrographs, size, particles, diameter, pixel_size, snr, seed, suite, no_nuisances):
    """Simulate micrographs with known particle positions."""
    from pathlib import Path

    from cryopick.errors import InputError
    from cryopick.fsutil import ensure_writable_dir
    from cryopick.progress import echo
    from cryopick.simulate import SUITE, SimulationConfig, simulate_dataset, suite_configs

    ensure_writable_dir(out_dir, "--out")
    if not suite and species not in SUITE:
        raise InputError(f"--species {species!r} is unknown; choose one of: {', '.join(SUITE)}")
    base = SimulationConfig(
        shape=_parse_size(size), n_micrographs=n_micrographs, particles_per_micrograph=particles,
        species=species, pixel_size_a=pixel_size, diameter_px=diameter or 40.0, snr=snr, seed=seed,
        nuisances=not no_nuisances,
    )
    configs = suite_configs(base) if suite else {species: base}
    for name, config in configs.items():
        if suite and diameter:
            config = config.evolve(diameter_px=diameter)
        target = Path(out_dir) / name if suite else Path(out_dir)
        ds = simulate_dataset(config, target)
        echo(f"{name}: {len(ds.micrographs)} micrographs, diameter {config.diameter_px:g} px -> {target}")
