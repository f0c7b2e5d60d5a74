"""RELION project conventions: micrographs STAR files in, coordinate files where RELION looks for them.

Facts from RELION 5's sources (``src/autopicker.cpp``, ``src/preprocessing.cpp``, ``src/pipeline_jobs.cpp``,
``src/apps/import.cpp``, ``src/filename.cpp``; read, not copied):

- A micrographs STAR (``CtfFind/job003/micrographs_ctf.star``, ``MotionCorr/job002/corrected_micrographs.star``)
  has ``data_optics`` (``rlnOpticsGroup``, ``rlnMicrographPixelSize``) and ``data_micrographs``
  (``rlnMicrographName``, ``rlnOpticsGroup``); names are relative to the project folder, where RELION runs.
- AutoPick writes the picks of micrograph ``M`` to ``<job dir>/<P without extension>_autopick.star``, where
  ``P`` is ``M`` after its ``<Type>/jobNNN/`` part (the first path component after a ``/`` that is ``job``
  and three digits, and everything before it); ``M`` without such a part is used whole. The file has one
  block ``data_`` with ``rlnCoordinateX``, ``rlnCoordinateY``, ``rlnClassNumber``,
  ``rlnAutopickFigureOfMerit``, ``rlnAnglePsi``.
- AutoPick and ManualPick (RELION 4+) also write ``autopick.star`` / ``manualpick.star``: block
  ``data_coordinate_files`` with ``rlnMicrographName`` (as in the micrographs STAR) and
  ``rlnMicrographCoordinates`` (the coordinate file, relative to the project folder). Extract reads it
  with ``--coord_list`` and looks micrographs up by the exact ``rlnMicrographName``.
- The older layout: a file named ``coords_suffix_<suffix>.star`` in the coordinate folder (its first word is
  the micrographs STAR); Extract then reads ``<folder>/<P without extension>_<suffix>.star``
  (``--coord_dir <folder>/ --coord_suffix _<suffix>.star``), and Import of coordinates writes such a file.
- Extract's ``--minimum_pick_fom`` keeps particles with ``rlnAutopickFigureOfMerit`` at or above it;
  RELION writes ``-999`` for "no figure of merit" (its default minimum) and class 0 / psi 0 for pickers
  without references (its Topaz wrapper).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import Picks, merge_picks, output_dir
from cryopick.io.sources import MicrographSource, project_root, resolve
from cryopick.particles import Particles

NAME, COORDINATES = "rlnMicrographName", "rlnMicrographCoordinates"
X, Y, SCORE, CLASS, PSI = ("rlnCoordinateX", "rlnCoordinateY", "rlnAutopickFigureOfMerit", "rlnClassNumber",
                           "rlnAnglePsi")
LIST_BLOCK = "coordinate_files"
#: RELION's "no figure of merit" (manual picks; Extract's default ``--minimum_pick_fom``).
NO_FOM = -999.0
SUFFIX = "_autopick"
LIST_FILE = "autopick.star"
COORDS_SUFFIX_PREFIX = "coords_suffix"
_JOB = re.compile(r"job\d{3}")
_OPTION = "--relion-project"


def pipeline_tail(name: str) -> str:
    """The part of a RELION file name after its ``<Type>/jobNNN/`` directories (RELION's
    ``decomposePipelineFileName``): the whole name when it has none.

    Examples
    --------
    >>> pipeline_tail("MotionCorr/job002/Movies/mic_001.mrc")
    'Movies/mic_001.mrc'
    >>> pipeline_tail("Movies/mic_001.mrc")
    'Movies/mic_001.mrc'
    """
    parts = name.split("/")
    # RELION checks the components that follow a '/' (never the first one) for 'job' + 3 digits.
    for i in range(1, len(parts)):
        if _JOB.match(parts[i]):
            return "/".join(parts[i + 1:])
    return name


def without_extension(name: str) -> str:
    """``name`` without the extension of its last component (``Movies/mic.001.mrc`` -> ``Movies/mic.001``)."""
    head, _, base = name.rpartition("/")
    stem = base.rpartition(".")[0] if "." in base.lstrip(".") else base
    return f"{head}/{stem}" if head else stem


def coordinate_file(name: str, suffix: str = SUFFIX) -> str:
    """Where RELION looks for the coordinates of micrograph ``name`` inside a coordinate folder:
    ``Movies/mic_001_autopick.star`` for ``MotionCorr/job002/Movies/mic_001.mrc``.

    Raises
    ------
    InputError
        The name would lead outside the folder (``..``).
    """
    tail = without_extension(pipeline_tail(name)).lstrip("/")
    if not tail or ".." in tail.split("/"):
        raise InputError(f"micrograph name {name!r} cannot be turned into a coordinate file inside the output folder")
    return f"{tail}{suffix}.star"


# ------------------------------------------------------------------------------------ reading


def _blocks(path: Path) -> dict:
    import pandas as pd
    import starfile

    try:
        blocks = starfile.read(path, always_dict=True, parse_as_string=[NAME, COORDINATES])
    except Exception as exc:  # starfile raises many kinds on malformed input
        raise InputError(f"{path}: is not a readable STAR file ({type(exc).__name__}: {exc})") from None
    return {k: b if isinstance(b, pd.DataFrame) else pd.DataFrame([b])
            for k, b in blocks.items() if isinstance(b, (pd.DataFrame, dict))}


def read_micrographs_star(path: str | Path, relion_project: str | Path | None = None) -> list[MicrographSource]:
    """Read a RELION micrographs STAR (3.1+: ``data_optics`` + ``data_micrographs``; 3.0: one block).

    Parameters
    ----------
    path : path
        ``micrographs_ctf.star``, ``corrected_micrographs.star``, ``micrographs_selected.star``...
    relion_project : path, optional
        The RELION project folder the names are relative to; default: the STAR's folder or the nearest
        ancestor holding the first micrograph (``CtfFind/job003/`` -> the project).

    Returns
    -------
    list of MicrographSource
        With ``name`` = ``rlnMicrographName`` as written and the optics group's pixel size
        (``rlnMicrographPixelSize``, else ``rlnImagePixelSize``).

    Raises
    ------
    InputError
        No block with ``rlnMicrographName``, or a micrograph not found.
    """
    import pandas as pd

    path = Path(path)
    blocks, table = _micrographs_table(path)
    pixel_by_group: dict[str, float] = {}
    optics = blocks.get("optics")
    if optics is not None and "rlnOpticsGroup" in optics.columns:
        column = next((c for c in ("rlnMicrographPixelSize", "rlnImagePixelSize") if c in optics.columns), None)
        if column is not None:
            values = pd.to_numeric(optics[column], errors="coerce")
            pixel_by_group = {str(g): float(v) for g, v in zip(optics["rlnOpticsGroup"], values) if v > 0}
    names = [str(n) for n in table[NAME]]
    groups = [str(g) for g in table["rlnOpticsGroup"]] if "rlnOpticsGroup" in table.columns else [""] * len(names)
    root = project_root(names, path.parent, relion_project, _OPTION, path)
    return [MicrographSource(resolve(root, n, path, _OPTION), n, "relion", pixel_by_group.get(g))
            for n, g in zip(names, groups)]


def _micrographs_table(path: Path):
    """The blocks of a micrographs STAR and its table of micrographs (``data_micrographs``, else the first
    block with ``rlnMicrographName`` that is not a coordinate list)."""
    blocks = _blocks(path)
    table = blocks.get("micrographs")
    if table is None or NAME not in table.columns:
        table = next((b for k, b in blocks.items() if k not in ("optics", LIST_BLOCK) and NAME in b.columns), None)
    if table is None:
        found = ", ".join(f"data_{k}" for k in blocks) or "none"
        raise InputError(f"{path}: no block with rlnMicrographName (blocks: {found}); give a RELION micrographs "
                         "STAR such as CtfFind/job003/micrographs_ctf.star")
    return blocks, table


def is_coordinate_list(path: Path) -> bool:
    """Whether a STAR file is a RELION 4+ coordinate list (``data_coordinate_files``) or an old-style
    ``coords_suffix_*.star`` file."""
    if path.name.startswith(COORDS_SUFFIX_PREFIX):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return b"data_" + LIST_BLOCK.encode() in head


def read_coordinate_list(path: str | Path, relion_project: str | Path | None = None) -> Picks:
    """Read the picks a RELION coordinate list points to: ``autopick.star`` / ``manualpick.star``
    (``data_coordinate_files``) or ``coords_suffix_<suffix>.star``.

    Parameters
    ----------
    path : path
        The list file.
    relion_project : path, optional
        The RELION project folder the list's paths are relative to. Default: tried in order, the list's
        folder and each of its ancestors (``ManualPick/job004/manualpick.star`` -> the project).

    Returns
    -------
    dict of str to Particles
        ``rlnMicrographName`` -> its particles; a micrograph whose coordinate file does not exist has
        none (RELION writes no file for a micrograph without picks in some versions).

    Raises
    ------
    InputError
        A missing column, no folder in which the coordinate files exist, or a bad coordinate file.
    """
    path = Path(path)
    if path.name.startswith(COORDS_SUFFIX_PREFIX):
        return _read_coords_suffix(path, relion_project)
    blocks = _blocks(path)
    table = blocks.get(LIST_BLOCK)
    if table is None or NAME not in table.columns or COORDINATES not in table.columns:
        found = ", ".join(map(str, table.columns)) if table is not None else "no data_coordinate_files block"
        raise InputError(f"{path}: a RELION coordinate list needs rlnMicrographName and rlnMicrographCoordinates "
                         f"in data_coordinate_files; found: {found}")
    names = [str(n) for n in table[NAME]]
    files = [str(f) for f in table[COORDINATES]]
    root = _list_root(files, path, relion_project)
    return _read_files(path, names, [Path(f) if Path(f).is_absolute() else root / f for f in files])


def _list_root(files: list[str], path: Path, relion_project) -> Path:
    relative = [f for f in files if not Path(f).is_absolute()]
    candidates = [Path(relion_project)] if relion_project is not None else []
    here = path.resolve().parent
    candidates += [here, *here.parents]
    if not relative:
        return candidates[0]
    for folder in candidates:
        if any((folder / f).is_file() for f in relative[:20]):
            return folder
    where = f"{relion_project} (--relion-project), " if relion_project is not None else ""
    raise InputError(f"{path}: its coordinate files (e.g. {relative[0]!r}) are in none of {where}{here} and "
                     "its ancestors; give the RELION project folder with --relion-project DIR")


def _read_files(list_file: Path, names: list[str], files: list[Path]) -> Picks:
    parts = []
    for name, file in zip(names, files):
        if not file.is_file():
            parts.append({name: Particles.empty()})
            continue
        parts.append({name: read_coordinate_file(file)})
    if not parts:
        raise InputError(f"{list_file}: lists no micrographs")
    return merge_picks(parts)


def read_coordinate_file(path: Path) -> Particles:
    """One RELION per-micrograph coordinate file (``rlnCoordinateX/Y``, optional figure of merit)."""
    from cryopick.io.star import read_star

    picks = read_star(path)
    return next(iter(picks.values())) if len(picks) == 1 else Particles.concat(list(picks.values()))


def _read_coords_suffix(path: Path, relion_project) -> Picks:
    suffix = path.name[len(COORDS_SUFFIX_PREFIX):]  # "_autopick.star"
    words = path.read_text(errors="replace").split()
    if not words:
        raise InputError(f"{path}: is empty; a coords_suffix file names the micrographs STAR it belongs to")
    star = Path(words[0])
    if star.suffix != ".star":
        # RELION's Import writes a micrograph pattern (``Movies/*.mrc``) here, not a STAR: read the
        # coordinate files it copied, named by their path below the folder without the suffix.
        files = sorted(f for f in path.parent.rglob(f"*{suffix}") if f.is_file() and f != path)
        if not files:
            raise InputError(f"{path}: no *{suffix} coordinate files below {path.parent}")
        names = [str(f.relative_to(path.parent))[: -len(suffix)] for f in files]
        return _read_files(path, names, files)
    candidates = [Path(relion_project)] if relion_project is not None else []
    here = path.resolve().parent
    candidates += [here, *here.parents]
    mics = next((c / star for c in candidates if (c / star).is_file()), None) if not star.is_absolute() else star
    if mics is None or not mics.is_file():
        raise InputError(f"{path}: names {words[0]!r}, a micrographs STAR not found from here; give "
                         "the RELION project folder with --relion-project DIR, or use the job's autopick.star")
    names = [str(n) for n in _micrographs_table(mics)[1][NAME]]  # the micrographs need not be here
    files = [path.parent / f"{without_extension(pipeline_tail(n)).lstrip('/')}{suffix}" for n in names]
    return _read_files(path, names, files)


# ------------------------------------------------------------------------------------ writing


def write_relion_layout(picks: Picks, out: Path, names: dict[str, str], relion_project: str | Path | None = None,
                        micrographs_star: str | None = None) -> list[Path]:
    """Write picks as RELION 5's AutoPick does, for Extract.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels); every micrograph gets a file, empty or not.
    out : Path
        The coordinate folder (like ``AutoPick/job006/``).
    names : dict of str to str
        Micrograph ID -> ``rlnMicrographName`` as the micrographs STAR writes it.
    relion_project : path, optional
        The RELION project folder: ``rlnMicrographCoordinates`` is written relative to it when ``out`` is
        inside it (as RELION does), else as an absolute path.
    micrographs_star : str, optional
        The micrographs STAR (as RELION names it), written into ``coords_suffix_autopick.star``.

    Returns
    -------
    list of Path
        The per-micrograph files, then ``autopick.star`` and (with ``micrographs_star``)
        ``coords_suffix_autopick.star``.
    """
    import pandas as pd
    import starfile

    out = output_dir(out)
    base = _relative_base(out, relion_project)
    rows, written, taken = [], [], {}
    for mic, particles in picks.items():
        name = names.get(mic, mic)
        rel = coordinate_file(name)
        if rel in taken:
            raise InputError(f"micrographs {taken[rel]!r} and {name!r} would share the coordinate file {rel}")
        taken[rel] = name
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        n = len(particles)
        score = np.where(np.isnan(particles.score), NO_FOM, particles.score)
        table = pd.DataFrame({X: particles.x, Y: particles.y, CLASS: np.zeros(n, dtype=int), SCORE: score,
                              PSI: np.zeros(n)})
        starfile.write({"": table}, target, float_format="%.6f")
        written.append(target)
        rows.append((name, str(base / rel) if base is not None else str(target.resolve())))
    listing = pd.DataFrame({NAME: [r[0] for r in rows], COORDINATES: [r[1] for r in rows]}, dtype=str)
    list_file = out / LIST_FILE
    starfile.write({LIST_BLOCK: listing}, list_file)
    if micrographs_star is None:  # the node names its micrographs STAR; without one, the list alone
        return [*written, list_file]
    suffix_file = out / f"{COORDS_SUFFIX_PREFIX}{SUFFIX}.star"
    suffix_file.write_text(f"{micrographs_star}\n")
    return [*written, list_file, suffix_file]


def _relative_base(out: Path, relion_project) -> Path | None:
    if relion_project is None:
        return None
    try:
        return out.resolve().relative_to(Path(relion_project).resolve())
    except ValueError:
        return None
