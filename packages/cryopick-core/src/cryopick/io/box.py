"""EMAN / crYOLO ``.box`` files: one per micrograph, lines ``x y w h`` (tab separated) where ``(x, y)`` is
the lower-left corner of a ``w`` x ``h`` box, so the particle centre is ``(x + w/2, y + h/2)``.

The conversion is done in decimal arithmetic on the shortest text of each number, so that writing and
reading back gives exactly the same float centres (``c - w/2 + w/2`` in binary floating point would not).
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import (
    Picks,
    check_columns,
    file_stem,
    fmt,
    output_dir,
    per_micrograph_only,
    read_path,
    text_rows,
)
from cryopick.particles import Particles

COLUMNS = "x y width height"
# Enough digits that no sum of a float's shortest text and a half box size is ever rounded.
_EXACT = Context(prec=800)


def read_box(path: str | Path) -> Picks:
    """Read a ``.box`` file (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.box`` file (the micrograph name is the file name without ``.box``) or a directory of them.
        Lines have 4 columns ``x y w h``; a 5th column (EMAN2 flags) is ignored.

    Returns
    -------
    dict of str to Particles
        Micrograph name -> particle centres (no scores).

    Raises
    ------
    InputError
        A line with a wrong column count or a non-number, naming ``path:line``.
    """
    return read_path(path, (".box",), _read_one)


def _decimal(value: str, path: Path, line: int, column: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise InputError(f"{path}:{line}: {column} {value!r} is not a number")
    return number


def _read_one(path: Path) -> Picks:
    xs, ys = [], []
    for line, fields in text_rows(path):
        check_columns(fields, COLUMNS, path, line, (4, 5))
        x, y, w, h = (_decimal(v, path, line, c) for v, c in zip(fields, COLUMNS.split()))
        xs.append(float(_EXACT.add(x, _EXACT.divide(w, 2))))
        ys.append(float(_EXACT.add(y, _EXACT.divide(h, 2))))
    return {path.stem: Particles(np.array(xs), np.array(ys))}


def _corner(centre: float, half: Decimal) -> str:
    if not np.isfinite(centre):
        raise InputError(f"cannot write a particle centre of {centre} to a box file")
    return _plain(_EXACT.subtract(Decimal(fmt(centre)), half))


def _plain(value: Decimal) -> str:
    text = format(value.normalize(_EXACT), "f")
    return "0" if text in ("-0", "") else text


def write_box(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool = True,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    **_,
) -> list[Path]:
    """Write one ``<micrograph>.box`` per micrograph (an empty file for a micrograph without picks).

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particle centres (original pixels). Scores are not written.
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Must be True: the format has no micrograph column.
    box_size : int
        Box width and height in pixels (required).
    shapes
        Not used by this format.

    Returns
    -------
    list of Path
        The files written.
    """
    if box_size is None:
        raise InputError("the box format needs a box size: pass box_size (in original pixels)")
    per_micrograph_only("box", per_micrograph)
    size = Decimal(fmt(box_size))
    if not size.is_finite() or size <= 0:
        raise InputError(f"box size must be a positive number of pixels, got {box_size}")
    half = _EXACT.divide(size, 2)
    size_text = _plain(size)
    out = output_dir(out)
    written = []
    for name, particles in picks.items():
        target = out / f"{file_stem(name)}.box"
        lines = [
            f"{_corner(x, half)}\t{_corner(y, half)}\t{size_text}\t{size_text}\n"
            for x, y in zip(particles.x.tolist(), particles.y.tolist())
        ]
        target.write_text("".join(lines))
        written.append(target)
    return written
