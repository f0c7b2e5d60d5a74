"""Stage 1, import: micrographs and coordinate files into the project store.

Inputs: files on disk. Outputs: ``/micrographs/<name>`` (path, shape, pixel size, checksum; the pixels
stay in the file) and ``/labels/<set>/<name>`` (coordinates in original pixels).
"""

from __future__ import annotations

from pathlib import Path

from cryopick import progress
from cryopick.config import parse_diameter
from cryopick.errors import ConfigError, InputError
from cryopick.io.micrographs import MICROGRAPH_SUFFIXES as MICROGRAPH_SUFFIXES
from cryopick.particles import Particles



def expand_micrographs(pattern) -> list[Path]:
    """The micrograph files ``--micrographs`` names (folders, globs, several files), sorted; see
    :func:`cryopick.io.micrographs.expand_micrographs`."""
    from cryopick.io.micrographs import expand_micrographs as expand

    return expand(pattern)


def import_micrographs(project, paths: list[Path], pixel_size_a: float | None,
                       skipped: list[dict] | None = None) -> list[str]:
    """Register ``paths`` in the project (unchanged files are not re-added); returns their names.

    Unreadable micrographs (truncated, corrupt, NaN values) are skipped, reported in one line and appended
    to ``skipped`` as ``{"path", "reason"}``; nothing of them is imported. Raises InputError only when no
    micrograph is usable."""
    from cryopick.io.micrographs import usable_micrographs

    paths = usable_micrographs(paths, pixel_size_a, project.micrographs(), skipped)
    names = []
    for path in progress.progress(paths, "import"):
        rec, _ = project.add_micrograph(path, pixel_size_a)
        names.append(rec.name)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"several micrographs share the name(s) {', '.join(dup)}; names must be unique")
    return names


def read_labels_file(path: str | Path, host, mics: dict | None = None) -> dict[str, Particles]:
    """Read coordinates with the importer registered for the file's suffix (plugins can add formats);
    core formats and folders go through :func:`cryopick.io.coords.read_coordinates`. ``mics`` (the
    project's micrograph records) gives readers that ask for them the micrographs' ``shapes`` and
    ``micrograph_files`` (EMAN2's info files need the height of TIFF micrographs)."""
    from cryopick.io.coords import call_reader, read_coordinates

    context = {}
    if mics:
        context = {"shapes": {n: tuple(m.shape) for n, m in mics.items()},
                   "micrograph_files": {n: Path(m.path).name for n, m in mics.items()}}
    suffix = Path(path).suffix.lower()
    for reg in host.importers.items():
        if suffix and suffix in reg.entry.suffixes and reg.distribution != "cryopick-core":
            return call_reader(host.importers.load(reg.entry.name), path, **context)
    return read_coordinates(path, **context)


def import_labels(project, path: str | Path, label_set: str, host,
                  names: list[str] | None = None) -> dict[str, Particles]:
    """Read a coordinate file, match its micrograph names to the project's, check coordinates lie inside
    the micrographs, and store it as ``/labels/<label_set>``."""
    from cryopick.io.coords import check_inside
    from cryopick.io.names import match_names

    mics = project.micrographs()
    raw = read_labels_file(path, host, mics)
    known = names if names is not None else list(mics)
    mapping, unmatched = match_names(list(raw), known)
    if not mapping:
        raise InputError(f"{path}: none of its {len(raw)} micrograph name(s) (e.g. {next(iter(raw), '-')!r}) "
                         f"match the imported micrographs (e.g. {known[0] if known else '-'!r})")
    if unmatched:
        progress.echo(f"warning: {path}: {len(unmatched)} micrograph name(s) match no imported micrograph, "
                      f"ignored: {', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}")
    picks: dict[str, Particles] = {}
    for file_name, name in mapping.items():
        picks[name] = Particles.concat([picks[name], raw[file_name]]) if name in picks else raw[file_name]
    check_inside(picks, {n: tuple(mics[n].shape) for n in picks}, str(path))
    project.put_labels(label_set, picks, str(path))
    return picks


def project_pixel_size(project) -> float | None:
    """The pixel size (Å) of the project's micrographs, from the first that has one."""
    return next((m.pixel_size_a for m in project.micrographs().values() if m.pixel_size_a), None)


def project_diameter(project, diameter: str | float | None) -> float:
    """``--diameter`` in pixels (Å converted with the micrographs' pixel size), or the project's stored
    default when ``diameter`` is None."""
    if diameter is None:
        stored = project.settings().get("diameter_px")
        if stored:
            return float(stored)
        raise ConfigError("--diameter is required (pixels, e.g. 40, or Ångström, e.g. 150A)")
    return parse_diameter(diameter, project_pixel_size(project))
