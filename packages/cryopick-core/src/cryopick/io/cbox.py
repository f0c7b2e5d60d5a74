"""crYOLO ``.cbox`` files: one STAR file per micrograph, particles in the ``data_cryolo`` loop.

Layout, as crYOLO and its box manager write it (facts from MPI-Dortmund/napari-boxmanager
``src/box_manager/io/cbox.py``, the crYOLO team's reader and writer of the format):

* a ``data_global`` block with ``_cbox_format_version 1.0``;
* a ``data_cryolo`` loop with the columns ``_CoordinateX _CoordinateY _CoordinateZ _Width _Height _Depth
  _EstWidth _EstHeight _Confidence _NumBoxes _Angle`` (2-D picks leave ``_CoordinateZ``, ``_Depth``
  and the unknown estimates empty: ``<NA>``, as pandas writes a missing value);
* a ``data_cryolo_include`` loop ``_slice_index`` (the tomogram slices that were picked; empty in 2-D).

``_CoordinateX``/``_CoordinateY`` are the lower-left **corner** of a ``_Width`` x ``_Height`` box, as in
EMAN's ``.box`` files: the box manager reads the centre as ``_CoordinateX + _Width / 2`` and writes
``_CoordinateX = x - boxsize / 2``. y is not flipped (the same frame as crYOLO's ``.box`` files).
``_Confidence`` is crYOLO's score. The conversion is done in decimal arithmetic, as for ``.box`` files
(:mod:`cryopick.io.box`), so that a written file reads back to exactly the same float centres.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.box import _EXACT, _corner, _decimal, _plain
from cryopick.io.coords import Picks, file_stem, fmt, output_dir, per_micrograph_only, read_path
from cryopick.particles import Particles

BLOCK = "cryolo"
COLUMNS = ("_CoordinateX", "_CoordinateY", "_CoordinateZ", "_Width", "_Height", "_Depth", "_EstWidth",
           "_EstHeight", "_Confidence", "_NumBoxes", "_Angle")
X, Y, WIDTH, HEIGHT, CONFIDENCE = "CoordinateX", "CoordinateY", "Width", "Height", "Confidence"
MISSING = "<NA>"  # what crYOLO's files hold for an unknown value (pandas' missing-value text)


def read_cbox(path: str | Path) -> Picks:
    """Read a crYOLO ``.cbox`` file (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.cbox`` file (the micrograph name is the file name without ``.cbox``) or a directory of them.

    Returns
    -------
    dict of str to Particles
        Micrograph name -> particle centres (corner + half the box), with ``_Confidence`` as the score
        (NaN where it is missing).

    Raises
    ------
    InputError
        Not a STAR file, no ``data_cryolo`` block, or a missing or non-numeric coordinate or box size,
        naming the file, the column and the row.
    """
    return read_path(path, (".cbox",), _read_one)


def _read_one(path: Path) -> Picks:
    import pandas as pd
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True)
    except Exception as exc:  # starfile raises many kinds on malformed input
        raise InputError(f"{path}: is not a readable crYOLO .cbox (STAR) file ({type(exc).__name__}: {exc})") from None
    block = blocks.get(BLOCK)
    if block is None:
        found = ", ".join(f"data_{k}" for k in blocks) or "none"
        raise InputError(f"{path}: has no data_{BLOCK} block (blocks found: {found}); is it a crYOLO .cbox file?")
    table = block if isinstance(block, pd.DataFrame) else pd.DataFrame([block])
    if table.empty:
        return {path.stem: Particles.empty()}
    missing = [c for c in (X, Y, WIDTH, HEIGHT) if c not in table.columns]
    if missing:
        found = ", ".join(map(str, table.columns))
        raise InputError(f"{path}: block data_{BLOCK} lacks column(s) {', '.join('_' + c for c in missing)}; "
                         f"columns found: {found}")
    xs, ys = [], []
    for row, (x, y, w, h) in enumerate(zip(*(table[c].tolist() for c in (X, Y, WIDTH, HEIGHT))), start=1):
        x, y, w, h = (_decimal(str(v), path, row, "_" + c) for v, c in zip((x, y, w, h), (X, Y, WIDTH, HEIGHT)))
        xs.append(float(_EXACT.add(x, _EXACT.divide(w, 2))))
        ys.append(float(_EXACT.add(y, _EXACT.divide(h, 2))))
    score = (pd.to_numeric(table[CONFIDENCE], errors="coerce").to_numpy(dtype=np.float64)
             if CONFIDENCE in table.columns else np.full(len(table), np.nan))
    return {path.stem: Particles(np.array(xs), np.array(ys), score)}


def _text(lines_of_table: list[list[str]]) -> str:
    return "".join(" ".join(fields) + "\n" for fields in lines_of_table)


def write_cbox(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool = True,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    **_,
) -> list[Path]:
    """Write one ``<micrograph>.cbox`` per micrograph, as crYOLO does (see the module docs for the layout).

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particle centres (original pixels); scores become ``_Confidence``.
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Must be True: the format holds one micrograph per file.
    box_size : int
        Box width and height in pixels (required: the coordinates are box corners).
    shapes
        Not used by this format.

    Returns
    -------
    list of Path
        The files written (a micrograph without picks gets a file with an empty loop).
    """
    if box_size is None:
        raise InputError("the cbox format needs a box size: pass box_size (in original pixels)")
    per_micrograph_only("cbox", per_micrograph)
    size = Decimal(fmt(box_size))
    if not size.is_finite() or size <= 0:
        raise InputError(f"box size must be a positive number of pixels, got {box_size}")
    half = _EXACT.divide(size, 2)
    size_text = _plain(size)
    header = ("\ndata_global\n\n_cbox_format_version 1.0\n\n"
              f"\ndata_{BLOCK}\n\nloop_\n" + "".join(f"{c} #{i}\n" for i, c in enumerate(COLUMNS, start=1)))
    footer = f"\n\ndata_{BLOCK}_include\n\nloop_\n_slice_index #1\n"
    out = output_dir(out)
    written = []
    for name, particles in picks.items():
        rows = []
        for x, y, s in zip(particles.x.tolist(), particles.y.tolist(), particles.score.tolist()):
            confidence = fmt(s) if np.isfinite(s) else MISSING
            rows.append([_corner(x, half), _corner(y, half), MISSING, size_text, size_text, MISSING, MISSING,
                         MISSING, confidence, MISSING, MISSING])
        target = out / f"{file_stem(name)}.cbox"
        target.write_text(header + _text(rows) + footer)
        written.append(target)
    return written
