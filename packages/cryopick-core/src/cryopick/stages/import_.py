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


def micrograph_inputs(micrographs, relion_project=None, cryosparc_project=None) -> tuple[list[Path], dict]:
    """The files ``--micrographs`` names and, when it is one RELION micrographs STAR or cryoSPARC exposures
    ``.cs``, what that list calls each file: ``(paths, {path: MicrographSource})``."""
    from cryopick.errors import ConfigError
    from cryopick.io.sources import is_micrograph_list, read_micrograph_list

    if is_micrograph_list(micrographs):
        item = micrographs if isinstance(micrographs, (str, Path)) else list(micrographs)[0]
        sources = read_micrograph_list(item, relion_project, cryosparc_project)
        if not sources:
            raise InputError(f"{item}: lists no micrographs")
        return [s.path for s in sources], {s.path: s for s in sources}
    if cryosparc_project is not None:  # (--relion-project also serves --labels autopick.star)
        raise ConfigError("--cryosparc-project goes with a cryoSPARC exposures .cs as --micrographs")
    return expand_micrographs(micrographs), {}


def remember_sources(project, micrographs, origins: dict) -> None:
    """Store in the project's settings where a RELION micrographs STAR came from (``relion_project``, the
    folder its names are relative to, and ``relion_micrographs``, the STAR as RELION names it), for the
    coordinate lists written at export."""
    sources = list(origins.values())
    if not sources or sources[0].program != "relion":
        return
    item = micrographs if isinstance(micrographs, (str, Path)) else list(micrographs)[0]
    star = Path(item).resolve()
    first = next((s for s in sources if not Path(s.name).is_absolute()), None)
    if first is None:  # absolute names: no project folder to be relative to
        project.put_settings(relion_micrographs=str(star))
        return
    root = Path(first.path).resolve()
    for _ in Path(first.name).parts:
        root = root.parent
    try:
        star_name = str(star.relative_to(root))
    except ValueError:
        star_name = str(star)
    project.put_settings(relion_project=str(root), relion_micrographs=star_name)


def import_micrographs(project, paths: list[Path], pixel_size_a: float | None,
                       skipped: list[dict] | None = None, origins: dict | None = None) -> list[str]:
    """Register ``paths`` in the project (unchanged files are not re-added); returns their names.

    Unreadable micrographs (truncated, corrupt, NaN values) are skipped, reported in one line and appended
    to ``skipped`` as ``{"path", "reason"}``; nothing of them is imported. Raises InputError only when no
    micrograph is usable. ``origins`` (from :func:`micrograph_inputs`) records what a RELION or cryoSPARC
    list calls each file (and gives its pixel size unless ``pixel_size_a`` is set)."""
    from cryopick.io.micrographs import usable_micrographs

    origins = origins or {}
    paths = usable_micrographs(paths, pixel_size_a, project.micrographs(), skipped)
    names = []
    for path in progress.progress(paths, "import"):
        rec, _ = project.add_micrograph(path, pixel_size_a, origin=origins.get(path))
        names.append(rec.name)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"several micrographs share the name(s) {', '.join(dup)}; names must be unique")
    return names


def read_labels_file(path: str | Path, host, mics: dict | None = None,
                     relion_project: str | Path | None = None) -> dict[str, Particles]:
    """Read coordinates with the importer registered for the file's suffix (plugins can add formats);
    core formats and folders go through :func:`cryopick.io.coords.read_coordinates`. ``mics`` (the
    project's micrograph records) gives readers that ask for them the micrographs' ``shapes`` and
    ``micrograph_files`` (EMAN2's info files need the height of TIFF micrographs). ``relion_project`` is
    the folder the paths of a RELION coordinate list (``autopick.star``, ``manualpick.star``) are relative
    to (default: the list's folder or an ancestor)."""
    from cryopick.io.coords import call_reader, read_coordinates

    context = {}
    if mics:
        context = {"shapes": {n: tuple(m.shape) for n, m in mics.items()},
                   "micrograph_files": {n: Path(m.path).name for n, m in mics.items()}}
    suffix = Path(path).suffix.lower()
    for reg in host.importers.items():
        if suffix and suffix in reg.entry.suffixes and reg.distribution != "cryopick-core":
            return call_reader(host.importers.load(reg.entry.name), path, **context)
    if relion_project is not None and (suffix == ".star" or Path(path).is_dir()):
        from cryopick.io.star import read_star

        if not Path(path).exists():
            raise InputError(f"{path}: coordinate file or directory not found")
        return read_star(path, relion_project=relion_project)
    return read_coordinates(path, **context)


def import_labels(project, path: str | Path, label_set: str, host,
                  names: list[str] | None = None, relion_project: str | Path | None = None) -> dict[str, Particles]:
    """Read a coordinate file, match its micrograph names to the project's, check coordinates lie inside
    the micrographs, and store it as ``/labels/<label_set>``."""
    from cryopick.io.coords import check_inside
    from cryopick.io.names import match_names

    mics = project.micrographs()
    raw = read_labels_file(path, host, mics, relion_project)
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
