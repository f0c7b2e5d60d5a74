"""RELION STAR coordinate files.

Read: RELION 3.0 files (one ``data_`` block) and 3.1+/4/5 files (``data_optics`` + ``data_particles``),
with the columns ``rlnMicrographName`` (optional in per-micrograph files), ``rlnCoordinateX``,
``rlnCoordinateY`` and, when present, ``rlnAutopickFigureOfMerit``; and RELION's coordinate lists
(``autopick.star``, ``manualpick.star``, ``coords_suffix_*.star``), followed to the files they name (see
:mod:`cryopick.io.relion`). Written: one ``particles.star`` for all micrographs, RELION's
``<micrograph>_autopick.star`` per micrograph, or, for micrographs that came from a RELION micrographs
STAR, RELION's own layout (``<job dir>/Movies/<mic>_autopick.star`` + ``autopick.star``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import Picks, any_scores, file_stem, merge_picks, output_dir, read_path
from cryopick.io.names import strip_relion_suffix
from cryopick.particles import Particles

NAME, X, Y, SCORE = "rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAutopickFigureOfMerit"
SINGLE_FILE = "particles.star"
PER_MICROGRAPH_SUFFIX = "_autopick.star"


def read_star(path: str | Path, relion_project: str | Path | None = None) -> Picks:
    """Read a RELION STAR file (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.star`` file or a directory of ``.star`` files. A coordinate list (``autopick.star``,
        ``manualpick.star``: ``data_coordinate_files``; or ``coords_suffix_<suffix>.star``) is followed to
        the per-micrograph files it names; a directory holding lists is read through its lists only
        (``data_coordinate_files`` ones first), so no file counts twice.
    relion_project : str or Path, optional
        The RELION project folder that a list's paths are relative to (default: the list's folder or
        an ancestor, see :func:`cryopick.io.relion.read_coordinate_list`).

    Returns
    -------
    dict of str to Particles
        ``rlnMicrographName`` as written -> particles; a file without that column holds one
        micrograph named after the file (``mic_001_autopick.star`` -> ``mic_001``). Through a list:
        ``rlnMicrographName`` as the list writes it.

    Raises
    ------
    InputError
        Unreadable file, or no block with ``rlnCoordinateX`` and ``rlnCoordinateY`` (the message lists
        the missing and the found columns).
    """
    from cryopick.io.relion import is_coordinate_list, read_coordinate_list

    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() == ".star"
                       and not f.name.startswith("."))
        lists = [f for f in files if is_coordinate_list(f)]
        if lists:
            full = [f for f in lists if not f.name.startswith("coords_suffix")]
            return merge_picks(read_coordinate_list(f, relion_project) for f in (full or lists[:1]))
    elif path.is_file() and is_coordinate_list(path):
        return read_coordinate_list(path, relion_project)
    return read_path(path, (".star",), _read_one)


def _read_one(path: Path) -> Picks:
    import pandas as pd
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True, parse_as_string=[NAME])
    except Exception as exc:  # starfile raises many kinds on malformed input
        raise InputError(f"{path}: is not a readable STAR file ({type(exc).__name__}: {exc})") from None
    tables = {
        key: block if isinstance(block, pd.DataFrame) else pd.DataFrame([block])
        for key, block in blocks.items()
        if isinstance(block, (pd.DataFrame, dict))
    }
    if not tables:
        raise InputError(f"{path}: contains no data blocks")
    table = _particle_table(path, tables)
    n = len(table)
    x = _numeric(path, table, X)
    y = _numeric(path, table, Y)
    score = _numeric(path, table, SCORE) if SCORE in table.columns else np.full(n, np.nan)
    if NAME not in table.columns:
        return {strip_relion_suffix(path.stem): Particles(x, y, score)}
    names = table[NAME].astype(str).to_numpy()
    out: Picks = {}
    for name in dict.fromkeys(names):
        keep = names == name
        out[name] = Particles(x[keep], y[keep], score[keep])
    return out


def _particle_table(path: Path, tables: dict):
    """The block holding coordinates: ``particles`` (RELION 3.1+) if it has them, else any that does."""
    order = sorted(tables, key=lambda k: (k != "particles", k == "optics"))
    for key in order:
        if {X, Y} <= set(tables[key].columns):
            return tables[key]
    main = tables[order[0]]
    missing = [c for c in (X, Y) if c not in main.columns]
    found = ", ".join(map(str, main.columns)) or "none"
    block = f"data_{order[0]}"
    raise InputError(f"{path}: block {block} lacks column(s) {', '.join(missing)}; columns found: {found}")


def _numeric(path: Path, table, column: str) -> np.ndarray:
    import pandas as pd

    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    # Scores may be missing (NaN); coordinates may not.
    bad = np.isnan(values) if column != SCORE else np.isnan(values) & table[column].notna().to_numpy()
    if bad.any():
        first = table[column].iloc[int(np.argmax(bad))]
        raise InputError(f"{path}: column {column} holds a non-number {first!r} in row {int(np.argmax(bad)) + 1}")
    return values


def write_star(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool | None = None,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    micrograph_files: dict[str, str] | None = None,
    micrographs: dict | None = None,
    relion_project: str | Path | None = None,
    micrographs_list: str | None = None,
    **_,
) -> list[Path]:
    """Write picks as RELION STAR files.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels).
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool, optional
        Write ``<micrograph>_autopick.star`` per micrograph (RELION's layout, no ``rlnMicrographName``
        column) instead of one ``particles.star`` with a ``rlnMicrographName`` column. Default (None): one
        file, except for micrographs from a RELION micrographs STAR, which get RELION's own layout.
    micrograph_files : dict of str to str, optional
        Micrograph ID -> the name to write in ``rlnMicrographName`` (for example ``mic_001.mrc``, the
        micrograph's file name, which is what RELION's micrograph STAR files list); default: the ID.
    micrographs : dict of str to MicrographRecord, optional
        The project's micrographs. When every picked micrograph came from a RELION micrographs STAR
        (``source == "relion"``), ``per_micrograph`` (True or None) writes RELION's own layout
        (:func:`cryopick.io.relion.write_relion_layout`: ``<P without extension>_autopick.star`` under
        ``out``, ``autopick.star`` and ``coords_suffix_autopick.star``), and the single file names
        micrographs by their ``rlnMicrographName``.
    relion_project : str or Path, optional
        The RELION project folder (paths in ``autopick.star`` are relative to it).
    micrographs_list : str, optional
        The micrographs STAR the micrographs came from, as RELION names it.
    box_size, shapes
        Not used by this format.

    Returns
    -------
    list of Path
        The files written.
    """
    import pandas as pd
    import starfile

    relion = {n: m.source_name for n, m in (micrographs or {}).items()
              if getattr(m, "source", "") == "relion" and m.source_name}
    if relion and all(n in relion for n in picks):
        if per_micrograph is None or per_micrograph:
            from cryopick.io.relion import write_relion_layout

            return write_relion_layout(picks, Path(out), relion, relion_project, micrographs_list)
        micrograph_files = relion
    out = output_dir(out)
    scores = any_scores(picks)

    def table(particles: Particles, name: str | None) -> pd.DataFrame:
        columns: dict = {} if name is None else {NAME: [name] * len(particles)}
        columns[X] = particles.x
        columns[Y] = particles.y
        if scores:
            columns[SCORE] = particles.score
        return pd.DataFrame(columns)

    if per_micrograph:
        written = []
        for name, particles in picks.items():
            target = out / f"{file_stem(name)}{PER_MICROGRAPH_SUFFIX}"
            starfile.write({"": table(particles, None)}, target, float_format="%.6f", na_rep="nan")
            written.append(target)
        return written
    files = micrograph_files or {}
    frames = [table(p, files.get(name, name)) for name, p in picks.items()]
    data = pd.concat(frames, ignore_index=True) if frames else table(Particles.empty(), "")
    target = out / SINGLE_FILE
    starfile.write({"": data}, target, float_format="%.6f", na_rep="nan")
    return [target]
