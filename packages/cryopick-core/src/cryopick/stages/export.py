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
                 per_micrograph: bool | None, diameter_px: float, exposures: str | Path | None = None,
                 relion_project: str | Path | None = None) -> list[Path]:
    """Write ``picks`` with exporter ``fmt`` under ``out``; every writer gets the same keywords (and
    ignores those it does not use): ``per_micrograph``, ``box_size``, ``shapes``, ``micrograph_files``,
    ``micrographs`` (the project's records: where each micrograph came from), ``relion_project`` and
    ``micrographs_list`` (the RELION micrographs STAR the micrographs came from).

    ``exposures`` (a cryoSPARC exposures ``.cs``) gives micrographs imported as plain files the uid, path
    and exposure group of the exposure with the same base name. ``relion_project`` overrides the folder
    stored at import."""
    mics = project.micrographs()
    if exposures is not None:
        mics = with_exposures(mics, exposures)
    settings = project.settings()
    layout = {} if per_micrograph is None else {"per_micrograph": per_micrograph}
    Path(out).mkdir(parents=True, exist_ok=True)
    return host.exporters.load(fmt)(
        picks, Path(out), **layout, box_size=int(round(diameter_px)),
        shapes={n: tuple(m.shape) for n, m in mics.items()},
        micrograph_files={n: Path(m.path).name for n, m in mics.items()},
        micrographs=mics, relion_project=relion_project or settings.get("relion_project"),
        micrographs_list=settings.get("relion_micrographs"))


def with_exposures(mics: dict, exposures: str | Path) -> dict:
    """The micrograph records, those matching an exposure of the cryoSPARC ``exposures`` file (by base name)
    taking its uid, path, exposure group and pixel size (paths are not checked: the file may come from
    another machine)."""
    import attrs

    from cryopick.errors import InputError
    from cryopick.io.cryosparc import GROUP_FIELDS, PATH, PSIZE, UID, exposures_by_micrograph, load_cs, text
    from cryopick.io.sources import MicrographSource

    path = Path(exposures)
    if not path.is_file():
        raise InputError(f"--exposures {path}: no such file")
    data = load_cs(path, "cryoSPARC exposures .cs")
    fields = data.dtype.names
    missing = [f for f in (UID, PATH) if f not in fields]
    if missing:
        raise InputError(f"--exposures {path}: lacks field(s) {', '.join(missing)}; fields found: {', '.join(fields)}")
    group = next((f for f in GROUP_FIELDS if f in fields), None)
    sources = [MicrographSource(Path(text(p)), text(p), "cryosparc",
                                float(data[PSIZE][i]) if PSIZE in fields and data[PSIZE][i] > 0 else None,
                                int(data[UID][i]), int(data[group][i]) if group else 1)
               for i, p in enumerate(data[PATH])]
    found = exposures_by_micrograph(sources, list(mics))
    out = dict(mics)
    for name, src in found.items():
        out[name] = attrs.evolve(mics[name], source="cryosparc", source_name=src.name, source_uid=src.uid,
                                 exp_group_id=src.exp_group_id,
                                 pixel_size_a=mics[name].pixel_size_a or src.pixel_size_a)
    return out
