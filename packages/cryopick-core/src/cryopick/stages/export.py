"""Stage 5, export: a run's picks written with a registered exporter (STAR, .box, .txt, .csv, .cs).

Inputs: picks (original pixels), the exporter name and an output folder. Output: the files written.
"""

from __future__ import annotations

from pathlib import Path

from cryopick.particles import Particles


def run_output_dir(out: Path, run: str) -> Path:
    """Where ``cryopick run`` writes a run's coordinate files: ``OUT/<run>`` (``<picker>-<8 hex>``), so that
    runs with other pickers or settings do not overwrite each other."""
    return Path(out) / run


def export_picks(project, host, picks: dict[str, Particles], out: Path, fmt: str,
                 per_micrograph: bool | None, diameter_px: float) -> list[Path]:
    """Write ``picks`` with exporter ``fmt`` under ``out``; every writer gets the same keywords (and
    ignores those it does not use)."""
    mics = project.micrographs()
    layout = {} if per_micrograph is None else {"per_micrograph": per_micrograph}
    Path(out).mkdir(parents=True, exist_ok=True)
    return host.exporters.load(fmt)(
        picks, Path(out), **layout, box_size=int(round(diameter_px)),
        shapes={n: tuple(m.shape) for n, m in mics.items()},
        micrograph_files={n: Path(m.path).name for n, m in mics.items()})
