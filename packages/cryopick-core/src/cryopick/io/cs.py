"""cryoSPARC ``.cs`` particle files: a numpy structured array saved with ``np.save``.

Fields used: ``location/micrograph_path`` (bytes), ``location/micrograph_shape`` (rows, cols),
``location/center_x_frac`` and ``location/center_y_frac`` (centre = fraction * cols or rows) and, when
present, ``pick_stats/ncc_score`` as the score. Files are loaded with ``allow_pickle=False``: a file that
needs unpickling is rejected, never executed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import Picks, file_stem, output_dir, read_path
from cryopick.io.micrographs import micrograph_name
from cryopick.particles import Particles

PATH, SHAPE = "location/micrograph_path", "location/micrograph_shape"
X_FRAC, Y_FRAC = "location/center_x_frac", "location/center_y_frac"
SCORE = "pick_stats/ncc_score"
SINGLE_FILE = "particles.cs"
# Newer cryoSPARC versions may write a compressed dataset format instead of .npy.
_CSDAT_MAGIC = b"\x94CSDAT"


def read_cs(path: str | Path) -> Picks:
    """Read a cryoSPARC ``.cs`` file (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.cs`` file or a directory of them.

    Returns
    -------
    dict of str to Particles
        Base name of ``location/micrograph_path`` without the extension, cryoSPARC's numeric uid prefix
        kept (``J3/motioncorrected/0123..._mic_001.mrc`` -> ``0123..._mic_001``) -> particles;
        :func:`cryopick.io.names.match_names` matches it to the micrograph ``mic_001`` as well as to
        ``0123..._mic_001`` (micrographs read from a cryoSPARC project folder keep the prefix).

    Raises
    ------
    InputError
        Not a numpy structured array, needs unpickling, or lacks a required field.
    """
    return read_path(path, (".cs",), _read_one)


def _read_one(path: Path) -> Picks:
    with open(path, "rb") as f:
        magic = f.read(len(_CSDAT_MAGIC))
    if magic == _CSDAT_MAGIC:
        raise InputError(
            f"{path}: uses cryoSPARC's compressed dataset format; export the particles as .star or "
            "save them with cryosparc-tools Dataset.save(..., format=1)"
        )
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{path}: holds pickled Python objects, which cryopick never loads") from None
        raise InputError(f"{path}: is not a cryoSPARC .cs (numpy) file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: is not a cryoSPARC .cs (numpy) file ({exc})") from None
    if not isinstance(data, np.ndarray) or data.dtype.names is None:
        raise InputError(f"{path}: is a numpy file but not a structured cryoSPARC particle array")
    names = data.dtype.names
    missing = [f for f in (PATH, SHAPE, X_FRAC, Y_FRAC) if f not in names]
    if missing:
        raise InputError(f"{path}: lacks field(s) {', '.join(missing)}; fields found: {', '.join(names)}")
    data = data.reshape(-1)
    shapes = np.asarray(data[SHAPE], dtype=np.float64).reshape(len(data), -1)
    if shapes.shape[1] != 2:
        raise InputError(f"{path}: field {SHAPE} has {shapes.shape[1]} values per particle, expected 2")
    x = np.asarray(data[X_FRAC], dtype=np.float64) * shapes[:, 1]
    y = np.asarray(data[Y_FRAC], dtype=np.float64) * shapes[:, 0]
    score = np.asarray(data[SCORE], dtype=np.float64) if SCORE in names else np.full(len(data), np.nan)
    mic_paths = np.array([_decode(p) for p in data[PATH]], dtype=object)
    out: Picks = {}
    for mic in dict.fromkeys(mic_paths):
        keep = mic_paths == mic
        name = micrograph_name(mic)
        part = Particles(x[keep], y[keep], score[keep])
        out[name] = Particles.concat([out[name], part]) if name in out else part
    return out


def _decode(value) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _fields(width: int) -> list:
    """The dtype of a picked-particles ``.cs``, as cryoSPARC's pickers (and cryosparc-tools) write it."""
    return [
        ("uid", "<u8"),
        ("location/micrograph_uid", "<u8"),
        ("location/exp_group_id", "<u4"),
        (PATH, f"S{width}"),
        (SHAPE, "<u4", (2,)),
        ("location/micrograph_psize_A", "<f4"),
        (X_FRAC, "<f4"),
        (Y_FRAC, "<f4"),
        ("location/min_dist_A", "<f4"),
        (SCORE, "<f4"),
        ("pick_stats/power", "<f4"),
        ("pick_stats/template_idx", "<u4"),
    ]


def _table(picks: Picks, shapes: dict[str, tuple[int, int]], uids: np.ndarray, paths: dict[str, str],
           micrographs: dict, box_size: float | None) -> np.ndarray:
    from cryopick.io.cryosparc import stable_uid

    missing = [name for name in picks if name not in shapes]
    if missing:
        raise InputError(f"the cs format needs every micrograph's shape; missing for {', '.join(missing[:5])}")
    encoded = {name: paths[name].encode() for name in picks}
    width = max((len(p) for p in encoded.values()), default=1)
    table = np.zeros(sum(len(p) for p in picks.values()), dtype=_fields(width))
    table["uid"] = uids
    start = 0
    for name, particles in picks.items():
        rows, cols = shapes[name]
        meta = micrographs.get(name)
        cryosparc = getattr(meta, "source", "") == "cryosparc"
        psize = float(getattr(meta, "pixel_size_a", None) or 0.0)
        stop = start + len(particles)
        block = table[start:stop]
        block["location/micrograph_uid"] = int(meta.source_uid) if cryosparc else stable_uid(paths[name])
        block["location/exp_group_id"] = int(meta.exp_group_id or 1) if cryosparc else 1
        block[PATH] = encoded[name]
        block[SHAPE] = (rows, cols)
        block["location/micrograph_psize_A"] = psize
        block[X_FRAC] = particles.x / cols
        block[Y_FRAC] = particles.y / rows
        block["location/min_dist_A"] = float(box_size or 0) * psize
        score = np.nan_to_num(particles.score, nan=0.0)
        block[SCORE] = score
        block["pick_stats/power"] = score  # no local power in cryopick: the score, so Inspect Picks can cut on it
        start = stop
    return table


def write_cs(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool = False,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    micrograph_files: dict[str, str] | None = None,
    micrographs: dict | None = None,
    **_,
) -> list[Path]:
    """Write picks as cryoSPARC ``.cs`` files, as cryoSPARC's own pickers write them.

    Fields: ``uid`` (distinct random 64-bit, across all files written), ``location/micrograph_uid``,
    ``location/exp_group_id``, ``location/micrograph_path``, ``location/micrograph_shape`` (rows, cols),
    ``location/micrograph_psize_A``, ``location/center_x_frac``, ``location/center_y_frac``,
    ``location/min_dist_A`` (``box_size`` in Å), ``pick_stats/ncc_score`` (the score; 0 when none),
    ``pick_stats/power`` (the score again: cryopick has no local power, and cryoSPARC's Inspect Picks cuts
    on both) and ``pick_stats/template_idx`` (0).

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels).
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Write ``<micrograph>.cs`` per micrograph instead of one ``particles.cs``.
    box_size : int, optional
        Particle diameter in pixels, written as ``location/min_dist_A``.
    shapes : dict of str to (int, int)
        Micrograph ID -> ``(rows, cols)``; required, since cryoSPARC stores fractions of the size.
    micrograph_files : dict of str to str, optional
        Micrograph ID -> file name, written as the micrograph path when the micrograph has no cryoSPARC
        origin; default ``<micrograph>.mrc``.
    micrographs : dict of str to MicrographRecord, optional
        The project's micrographs: those that came from a cryoSPARC exposures ``.cs`` (``source ==
        "cryosparc"``) keep their exposure ``uid``, ``micrograph_blob/path`` and exposure group, so that
        cryoSPARC links the particles to its exposures; others get a uid derived from their name and
        exposure group 1. Their pixel sizes fill ``location/micrograph_psize_A``.

    Returns
    -------
    list of Path
        The files written.
    """
    from cryopick.io.cryosparc import random_uids

    if shapes is None:
        raise InputError("the cs format needs the micrograph shapes (rows, cols): pass shapes")
    out = output_dir(out)
    micrographs = micrographs or {}
    files = micrograph_files or {}
    paths = {}
    for name in picks:
        meta = micrographs.get(name)
        if getattr(meta, "source", "") == "cryosparc" and meta.source_name:
            paths[name] = meta.source_name
        else:
            paths[name] = files.get(name) or f"{file_stem(name)}.mrc"
    groups = {f"{file_stem(n)}.cs": {n: p} for n, p in picks.items()} if per_micrograph else {SINGLE_FILE: picks}
    uids = random_uids(sum(len(p) for p in picks.values()))  # distinct across every file written
    written, start = [], 0
    for file_name, group in groups.items():
        count = sum(len(p) for p in group.values())
        target = out / file_name
        with open(target, "wb") as f:  # np.save(path) would append ".npy"
            np.save(f, _table(group, shapes, uids[start:start + count], paths, micrographs, box_size),
                    allow_pickle=False)
        start += count
        written.append(target)
    return written
