"""Reading and writing particle coordinates in any supported format, plus helpers shared by the formats.

Coordinates are particle centres in original-micrograph pixels (``x`` = column, ``y`` = row). Formats
(see :mod:`cryopick.io.registry`): ``star`` (RELION), ``box`` (EMAN/crYOLO), ``txt`` (Topaz), ``csv``
(CryoPPP) and ``cs`` (cryoSPARC). Every reader returns ``dict[str, Particles]`` keyed by the micrograph
name as written in the file; match those names to micrograph IDs with :func:`cryopick.io.names.match_names`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.particles import Particles

Picks = dict[str, Particles]


def read_coordinates(path: str | Path, format: str | None = None, *,
                     shapes: dict[str, tuple[int, int]] | None = None,
                     micrograph_files: dict[str, str] | None = None) -> Picks:
    """Read coordinates from a file, or from all coordinate files in a directory.

    Parameters
    ----------
    path : str or Path
        A coordinate file, or a directory whose files (not sub-directories) are merged.
    format : str, optional
        ``star``, ``box``, ``txt``, ``csv`` or ``cs``; by default chosen from the file suffix (or the
        suffixes of the files in the directory).
    shapes, micrograph_files : dict, optional
        The project's micrographs: ID -> ``(rows, cols)`` and ID -> file name, passed to readers that
        take them (see :func:`call_reader`; EMAN2's info files need them for TIFF micrographs).

    Returns
    -------
    dict of str to Particles
        Micrograph name as written in the file(s) -> particles.

    Raises
    ------
    InputError
        Missing path, unknown format or suffix, a directory holding several formats, or a bad file.
    """
    from cryopick.io.registry import IMPORTERS

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: coordinate file or directory not found")
    by_name = {e.name: e for e in IMPORTERS}
    if format is not None:
        if format not in by_name:
            raise InputError(f"unknown coordinate format {format!r}; known formats: {', '.join(by_name)}")
        return call_reader(by_name[format].load(), path, shapes=shapes, micrograph_files=micrograph_files)
    by_suffix = {s: e for e in IMPORTERS for s in e.suffixes}
    known = ", ".join(by_suffix)
    if path.is_dir():
        found = {by_suffix[f.suffix.lower()].name for f in _listdir(path) if f.suffix.lower() in by_suffix}
        if not found:
            raise InputError(f"{path}: directory contains no coordinate files ({known})")
        if len(found) > 1:
            raise InputError(
                f"{path}: directory holds several coordinate formats ({', '.join(sorted(found))}); pass format="
            )
        return call_reader(by_name[found.pop()].load(), path, shapes=shapes, micrograph_files=micrograph_files)
    entry = by_suffix.get(path.suffix.lower())
    if entry is None:
        raise InputError(f"{path}: unknown coordinate file suffix {path.suffix or '(none)'!r}; supported: {known}")
    return call_reader(entry.load(), path, shapes=shapes, micrograph_files=micrograph_files)


def call_reader(reader: Callable[..., Picks], path: str | Path, **context) -> Picks:
    """Call an importer's ``reader(path)``, also passing those of the ``context`` keywords
    (``shapes``, ``micrograph_files``) that its signature names (or all, if it takes ``**kwargs``).
    Readers that need no knowledge of the micrographs keep the one-argument signature."""
    import inspect

    try:
        params = inspect.signature(reader).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    given = {k: v for k, v in context.items() if v is not None and (takes_all or k in params)}
    return reader(path, **given)


def write_coordinates(picks: Picks, out: str | Path, format: str, **options) -> list[Path]:
    """Write picks in one format under the directory ``out``.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels).
    out : str or Path
        Output directory, created if needed.
    format : str
        ``star``, ``box``, ``txt``, ``csv`` or ``cs``.
    **options
        Passed to the writer: ``per_micrograph``, ``box_size``, ``shapes``; options a writer does not
        use are ignored.

    Returns
    -------
    list of Path
        The files written.
    """
    from cryopick.io.registry import EXPORTERS

    by_name = {e.name: e for e in EXPORTERS}
    if format not in by_name:
        raise InputError(f"unknown coordinate format {format!r}; known formats: {', '.join(by_name)}")
    return by_name[format].load()(picks, Path(out), **options)


def check_inside(picks: Picks, shapes: dict[str, tuple[int, int]], source: str) -> None:
    """Raise if any particle centre lies outside its micrograph.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles. Micrographs missing from ``shapes`` are not checked.
    shapes : dict of str to (int, int)
        Micrograph ID -> ``(rows, cols)``.
    source : str
        The file the coordinates came from, named in the message.

    Raises
    ------
    InputError
        Naming the file, the micrograph and the first offending coordinate.
    """
    for name, particles in picks.items():
        if name not in shapes or not len(particles):
            continue
        rows, cols = shapes[name]
        outside = ~particles.inside((rows, cols))
        if not outside.any():
            continue
        i = int(np.argmax(outside))
        x, y = float(particles.x[i]), float(particles.y[i])
        bad = f"x={x:g}" if not -0.5 <= x <= cols - 0.5 else f"y={y:g}"
        raise InputError(
            f"{source}: micrograph {name}: {bad} is outside the {cols} x {rows} image (particle at x={x:g}, "
            f"y={y:g}; {int(outside.sum())} of {len(particles)} outside); "
            "are x and y swapped, or the coordinates binned?"
        )


# ------------------------------------------------------------------- helpers shared by the formats


def _listdir(path: Path) -> list[Path]:
    return sorted(f for f in path.iterdir() if f.is_file() and not f.name.startswith("."))


def read_path(path: str | Path, suffixes: Iterable[str], read_file: Callable[[Path], Picks]) -> Picks:
    """Read one file, or merge all files with ``suffixes`` in a directory (particles of the same
    micrograph from several files are concatenated)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: coordinate file or directory not found")
    if not path.is_dir():
        return read_file(path)
    suffixes = tuple(s.lower() for s in suffixes)
    files = [f for f in _listdir(path) if f.suffix.lower() in suffixes]
    if not files:
        raise InputError(f"{path}: directory contains no {'/'.join(suffixes)} files")
    return merge_picks(read_file(f) for f in files)


def merge_picks(parts: Iterable[Picks]) -> Picks:
    """Merge several ``dict[str, Particles]``, concatenating particles of the same micrograph."""
    merged: dict[str, list[Particles]] = {}
    for picks in parts:
        for name, particles in picks.items():
            merged.setdefault(name, []).append(particles)
    return {name: ps[0] if len(ps) == 1 else Particles.concat(ps) for name, ps in merged.items()}


def text_rows(path: Path, sep: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` of the non-empty, non-comment lines of a text file."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise InputError(f"{path}: is not a text file") from None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        yield number, [f.strip() for f in (stripped.split(sep) if sep else stripped.split())]


def parse_float(value: str, path: Path, line: int, column: str) -> float:
    """``float(value)`` or an InputError pointing at ``path:line``."""
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{path}:{line}: {column} {value!r} is not a number") from None


def check_columns(fields: list[str], expected: str, path: Path, line: int, allowed: Iterable[int]) -> None:
    """Raise an InputError at ``path:line`` unless ``len(fields)`` is in ``allowed``."""
    allowed = tuple(allowed)
    if len(fields) not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise InputError(f"{path}:{line}: expected {want} columns ({expected}), found {len(fields)}")


def fmt(value: float) -> str:
    """Shortest text that reads back as exactly ``value``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def per_micrograph_only(fmt: str, per_micrograph: bool) -> None:
    """Writers of formats that hold one micrograph per file refuse ``per_micrograph=False``."""
    if not per_micrograph:
        raise InputError(f"the {fmt} format holds one micrograph per file; per_micrograph must be True")


def output_dir(out: str | Path) -> Path:
    """Create (if needed) and return the output directory ``out``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output must be a directory, but a file of that name exists")
    out.mkdir(parents=True, exist_ok=True)
    return out


def file_stem(name: str) -> str:
    """Check that a micrograph ID can be used in a file name."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise InputError(f"micrograph name {name!r} cannot be used as a file name")
    return name


def any_scores(picks: Picks) -> bool:
    return any(p.has_scores for p in picks.values())
