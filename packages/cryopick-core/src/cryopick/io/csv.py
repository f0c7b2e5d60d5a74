"""CryoPPP-style ``.csv`` coordinate files: one ``<micrograph>.csv`` per micrograph with the header
``X-Coordinate,Y-Coordinate,Diameter`` (particle centres and a diameter in pixels) and, when scores
exist, an extra ``Confidence`` column."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import (
    Picks,
    check_columns,
    file_stem,
    fmt,
    output_dir,
    parse_float,
    per_micrograph_only,
    read_path,
    text_rows,
)
from cryopick.particles import Particles

X, Y, DIAMETER, SCORE = "X-Coordinate", "Y-Coordinate", "Diameter", "Confidence"
_SCORE_ALIASES = ("confidence", "score")


def read_csv(path: str | Path) -> Picks:
    """Read a CryoPPP-style CSV (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.csv`` file (the micrograph name is the file name without ``.csv``) or a directory of them.
        The header must name ``X-Coordinate`` and ``Y-Coordinate``; ``Confidence`` (or ``Score``) is
        read as the score when present; other columns (``Diameter``) are ignored.

    Returns
    -------
    dict of str to Particles
        Micrograph name -> particles.

    Raises
    ------
    InputError
        A missing header column, or a line with a wrong column count or a non-number (``path:line``).
    """
    return read_path(path, (".csv",), _read_one)


def _read_one(path: Path) -> Picks:
    rows = list(text_rows(path, sep=","))
    if not rows:
        raise InputError(f"{path}: is empty; expected a header line {X},{Y},{DIAMETER}")
    _, header = rows[0]
    index = {name.lower(): i for i, name in enumerate(header)}
    missing = [c for c in (X, Y) if c.lower() not in index]
    if missing:
        raise InputError(f"{path}:1: header lacks column(s) {', '.join(missing)}; columns found: {', '.join(header)}")
    ix, iy = index[X.lower()], index[Y.lower()]
    iscore = next((index[a] for a in _SCORE_ALIASES if a in index), None)
    xs, ys, scores = [], [], []
    for line, fields in rows[1:]:
        check_columns(fields, ",".join(header), path, line, (len(header),))
        xs.append(parse_float(fields[ix], path, line, X))
        ys.append(parse_float(fields[iy], path, line, Y))
        scores.append(parse_float(fields[iscore], path, line, header[iscore]) if iscore is not None else np.nan)
    return {path.stem: Particles(np.array(xs), np.array(ys), np.array(scores))}


def write_csv(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool = True,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    **_,
) -> list[Path]:
    """Write one ``<micrograph>.csv`` per micrograph.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels).
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Must be True: the format has no micrograph column.
    box_size : int, optional
        Written as every particle's ``Diameter``; 0 when not given.
    shapes
        Not used by this format.

    Returns
    -------
    list of Path
        The files written.
    """
    per_micrograph_only("csv", per_micrograph)
    out = output_dir(out)
    diameter = fmt(box_size) if box_size is not None else "0"
    written = []
    for name, particles in picks.items():
        scores = particles.has_scores
        header = ",".join([X, Y, DIAMETER] + ([SCORE] if scores else [])) + "\n"
        if scores:
            lines = [
                f"{fmt(x)},{fmt(y)},{diameter},{fmt(s)}\n"
                for x, y, s in zip(particles.x.tolist(), particles.y.tolist(), particles.score.tolist())
            ]
        else:
            lines = [f"{fmt(x)},{fmt(y)},{diameter}\n" for x, y in zip(particles.x.tolist(), particles.y.tolist())]
        target = out / f"{file_stem(name)}.csv"
        target.write_text(header + "".join(lines))
        written.append(target)
    return written
