"""RELION STAR coordinate files.

Read: RELION 3.0 files (one ``data_`` block) and 3.1+/4/5 files (``data_optics`` + ``data_particles``),
with the columns ``rlnMicrographName`` (optional in per-micrograph files), ``rlnCoordinateX``,
``rlnCoordinateY`` and, when present, ``rlnAutopickFigureOfMerit``. Written: one ``particles.star`` for
all micrographs, or RELION's ``<micrograph>_autopick.star`` per micrograph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import Picks, any_scores, file_stem, output_dir, read_path
from cryopick.io.names import strip_relion_suffix
from cryopick.particles import Particles

NAME, X, Y, SCORE = "rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAutopickFigureOfMerit"
SINGLE_FILE = "particles.star"
PER_MICROGRAPH_SUFFIX = "_autopick.star"


def read_star(path: str | Path) -> Picks:
    """Read a RELION STAR file (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.star`` file or a directory of ``.star`` files.

    Returns
    -------
    dict of str to Particles
        ``rlnMicrographName`` as written -> particles; a file without that column holds one
        micrograph named after the file (``mic_001_autopick.star`` -> ``mic_001``).

    Raises
    ------
    InputError
        Unreadable file, or no block with ``rlnCoordinateX`` and ``rlnCoordinateY`` (the message lists
        the missing and the found columns).
    """
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
    per_micrograph: bool = False,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    micrograph_files: dict[str, str] | None = None,
    **_,
) -> list[Path]:
    """Write picks as RELION STAR files.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels).
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Write ``<micrograph>_autopick.star`` per micrograph (RELION's layout, no ``rlnMicrographName``
        column) instead of one ``particles.star`` with a ``rlnMicrographName`` column.
    micrograph_files : dict of str to str, optional
        Micrograph ID -> the name to write in ``rlnMicrographName`` (for example ``mic_001.mrc``, the
        micrograph's file name, which is what RELION's micrograph STAR files list); default: the ID.
    box_size, shapes
        Not used by this format.

    Returns
    -------
    list of Path
        The files written.
    """
    import pandas as pd
    import starfile

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
