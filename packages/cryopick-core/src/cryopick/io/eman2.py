"""EMAN2 ``info/<micrograph>_info.json`` files: the particles of one micrograph as the ``"boxes"`` list.

Layout (facts, with sources):

* EMAN2 keeps everything it knows about micrograph ``micrographs/DC19873.hdf`` in
  ``info/DC19873_info.json`` (EMAN2 wiki, "Eman2InfoMetadata"); the folder also holds ``project.json``,
  which is not a micrograph's file.
* ``"boxes"`` is a list of ``[x, y, mode, ...]``: ``x, y`` are the box **centre** (cryoem/eman2
  ``programs/e2boxer.py``: ``write_boxfiles`` writes the EMAN1 corner as ``b[0] - boxsize/2`` and
  ``write_particles`` clips ``Region(b[0] - boxsize/2, ...)``; azazellochg/3DEM-conventions ``eman2.md``:
  "json files contain x/y coordinates of the box center"), and ``mode`` names the picker that made the
  box (``"manual"``, or the autopicker's name: e2boxer replaces the boxes whose ``b[2]`` equals the new
  ones' mode). topaz-em writes ``[int(x), int(y), "manual"]`` (``topaz/utils/conversions.py``,
  ``coordinates_to_eman2_json``).
* **y axis.** EMAN2 puts the origin at the lower left. For MRC files its y is the row as stored, the
  same as ours and RELION's; it mirrors y only for TIFF images (topaz-em ``utils/conversions.py``:
  "apparently, EMAN2 only inverts the y-axis for .tiff images", and its ``--invert-y`` option "appears
  to be necessary for .tiff compatibility with EMAN2"). So for a micrograph read from a ``.tif``/``.tiff``
  file, y is mirrored as topaz-em does it, ``y' = H - 1 - y`` (``H`` = rows), which needs the
  micrograph's height; for every other file type y is used as written. When it is not known which file
  a micrograph came from (coordinates read outside a project), y is used as written.

Scores are not part of the format: read picks have none, and written boxes are tagged ``"manual"`` so
that e2boxer's GUI lets the user edit them.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import Picks, file_stem, fmt, merge_picks, output_dir, per_micrograph_only
from cryopick.particles import Particles

SUFFIX = "_info.json"
BOXES = "boxes"
TAG = "manual"
FLIPPED_SUFFIXES = (".tif", ".tiff")  # image types EMAN2 mirrors in y (see the module docs)


def _name_of(path: Path) -> str:
    return path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else path.stem


def flips_y(micrograph_file: str | None) -> bool:
    """Whether EMAN2 mirrors y for a micrograph read from ``micrograph_file`` (TIFF images only)."""
    return bool(micrograph_file) and Path(micrograph_file).suffix.lower() in FLIPPED_SUFFIXES


def _mirror(values: np.ndarray, height: int) -> np.ndarray:
    """``H - 1 - y`` in decimal arithmetic on the shortest text of each number (exact for pixel grids)."""
    top = Decimal(int(height) - 1)
    return np.array([float(top - Decimal(fmt(v))) for v in values.tolist()], dtype=np.float64)


def _heights(names: list[str], shapes: dict[str, tuple[int, int]] | None,
             micrograph_files: dict[str, str] | None) -> dict[str, tuple[bool, int | None]]:
    """For each name in the files: (mirror y?, height) from the project's micrographs, matched by name."""
    from cryopick.io.names import match_names

    files = micrograph_files or {}
    known = set(files) | set(shapes or {})
    mapping, _ = match_names(names, sorted(known)) if known else ({}, names)
    out = {}
    for name in names:
        mic = mapping.get(name)
        flip = mic is not None and flips_y(files.get(mic))
        shape = (shapes or {}).get(mic) if mic is not None else None
        out[name] = (flip, int(shape[0]) if shape is not None else None)
    return out


def read_eman2(path: str | Path, *, shapes: dict[str, tuple[int, int]] | None = None,
               micrograph_files: dict[str, str] | None = None) -> Picks:
    """Read EMAN2 ``<micrograph>_info.json`` files: one file, or the ``*_info.json`` of a folder such as
    EMAN2's ``info/``.

    Parameters
    ----------
    path : str or Path
        An ``_info.json`` file (the micrograph name is the file name without ``_info.json``) or a folder.
        In a folder, files without a ``"boxes"`` entry (EMAN2 writes info files for every micrograph,
        and ``project.json``) are skipped.
    shapes : dict of str to (int, int), optional
        Micrograph ID -> ``(rows, cols)``, needed for micrographs that were TIFF files (y is mirrored).
    micrograph_files : dict of str to str, optional
        Micrograph ID -> its file name; tells which micrographs EMAN2 read as TIFF.

    Returns
    -------
    dict of str to Particles
        Micrograph name -> box centres in our frame (no scores).

    Raises
    ------
    InputError
        Not JSON, no ``"boxes"`` list (single file), a box that is not ``[x, y, ...]`` with numbers, or a
        TIFF micrograph whose height is not known.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: coordinate file or directory not found")
    if path.is_dir():
        files = sorted(f for f in path.iterdir() if f.is_file() and f.name.endswith(SUFFIX))
        if not files:
            raise InputError(f"{path}: folder contains no EMAN2 *{SUFFIX} files")
        raw = [_read_one(f, required=False) for f in files]
        raw = [r for r in raw if r]
        if not raw:
            raise InputError(f"{path}: none of its *{SUFFIX} files has a \"{BOXES}\" list; pick particles in "
                             "e2boxer first")
        picks = merge_picks(raw)
    else:
        picks = _read_one(path, required=True)
    todo = _heights(list(picks), shapes, micrograph_files)
    out: Picks = {}
    for name, particles in picks.items():
        flip, height = todo[name]
        if flip:
            if height is None:
                raise InputError(
                    f"{path}: micrograph {name} is a TIFF image, for which EMAN2 counts y from the bottom; "
                    "its height is unknown: import the micrographs first (cryopick import -m ...), then the "
                    "coordinates")
            particles = Particles(particles.x, _mirror(particles.y, height), particles.score)
        out[name] = particles
    return out


def _read_one(path: Path, required: bool) -> Picks:
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: is not an EMAN2 info file (not JSON: {exc})") from None
    boxes = data.get(BOXES) if isinstance(data, dict) else None
    if boxes is None:
        if required:
            raise InputError(f"{path}: has no \"{BOXES}\" entry, so no particles; pick them in e2boxer, or give "
                             "the info/ folder")
        return {}
    if not isinstance(boxes, list):
        raise InputError(f"{path}: \"{BOXES}\" must be a list of [x, y, mode] entries, found {type(boxes).__name__}")
    xs, ys = [], []
    for i, box in enumerate(boxes):
        ok = isinstance(box, list) and len(box) >= 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in box[:2])
        if not ok:
            raise InputError(f"{path}: \"{BOXES}\"[{i}] is {box!r}; expected [x, y, mode] with numbers x, y")
        xs.append(float(box[0]))
        ys.append(float(box[1]))
    return {_name_of(path): Particles(np.array(xs), np.array(ys))}


def _number(value: float):
    return int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value)


def write_eman2(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool = True,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    micrograph_files: dict[str, str] | None = None,
    **_,
) -> list[Path]:
    """Write ``<micrograph>_info.json`` per micrograph into ``out`` (give EMAN2's ``info/`` folder).

    An existing info file keeps everything but its ``"boxes"`` (EMAN2 stores CTF and other metadata
    there); a file that is not a JSON object is an error, never overwritten.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particle centres (original pixels); scores are not written.
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Must be True: the format holds one micrograph per file.
    box_size
        Not used by this format (EMAN2 keeps the box size in ``info/project.json``).
    shapes : dict of str to (int, int), optional
        Micrograph ID -> ``(rows, cols)``; needed for micrographs from TIFF files (y is mirrored).
    micrograph_files : dict of str to str, optional
        Micrograph ID -> its file name (which micrographs are TIFF).

    Returns
    -------
    list of Path
        The files written.
    """
    per_micrograph_only("eman2", per_micrograph)
    out = output_dir(out)
    files = micrograph_files or {}
    written = []
    for name, particles in picks.items():
        target = out / f"{file_stem(name)}{SUFFIX}"
        y = particles.y
        if flips_y(files.get(name)):
            if not shapes or name not in shapes:
                raise InputError(f"the eman2 format needs the height of TIFF micrograph {name} (EMAN2 counts y "
                                 "from the bottom in TIFF images): pass shapes")
            y = _mirror(y, shapes[name][0])
        if not (np.isfinite(particles.x).all() and np.isfinite(y).all()):
            raise InputError(f"micrograph {name}: cannot write a non-finite particle centre to an EMAN2 info file")
        info: dict = {}
        if target.exists():
            try:
                info = json.loads(target.read_text())
            except (UnicodeDecodeError, json.JSONDecodeError):
                info = None
            if not isinstance(info, dict):
                raise InputError(f"{target}: exists and is not an EMAN2 info file (a JSON object); move it away")
        info[BOXES] = [[_number(a), _number(b), TAG] for a, b in zip(particles.x.tolist(), y.tolist())]
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(json.dumps(info, indent=1) + "\n")
        tmp.replace(target)
        written.append(target)
    return written
