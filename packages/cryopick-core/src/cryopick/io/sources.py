"""Micrograph lists written by other programs, given as ``--micrographs``: a RELION micrographs STAR
(``micrographs_ctf.star``, ``corrected_micrographs.star``) or a cryoSPARC exposures ``.cs``.

Each entry becomes a :class:`MicrographSource`: the file to read plus what the list calls it (RELION's
``rlnMicrographName``, cryoSPARC's ``micrograph_blob/path`` and ``uid``), stored with the micrograph in
the project so that exported coordinates name the micrograph exactly as that program does.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from cryopick.errors import InputError

#: Suffixes of the micrograph lists :func:`read_micrograph_list` understands.
LIST_SUFFIXES = (".star", ".cs")


@attrs.frozen
class MicrographSource:
    """One micrograph of a RELION or cryoSPARC micrograph list.

    Parameters
    ----------
    path : Path
        The micrograph file (resolved against the RELION or cryoSPARC project folder).
    name : str
        The name the list gives it, exactly as written: RELION's ``rlnMicrographName``
        (``MotionCorr/job002/Movies/mic_001.mrc``) or cryoSPARC's ``micrograph_blob/path``.
    program : str
        ``"relion"`` or ``"cryosparc"``.
    pixel_size_a : float or None
        Pixel size in Å from the list (RELION's optics group, cryoSPARC's ``micrograph_blob/psize_A``).
    uid : int or None
        cryoSPARC's exposure ``uid`` (64-bit); None for RELION.
    exp_group_id : int or None
        cryoSPARC's exposure group; None for RELION.
    shape : tuple of int or None
        ``(rows, cols)`` the list gives (cryoSPARC's ``micrograph_blob/shape``), for checking.
    """

    path: Path
    name: str
    program: str
    pixel_size_a: float | None = None
    uid: int | None = None
    exp_group_id: int | None = None
    shape: tuple[int, int] | None = None


def is_micrograph_list(items) -> bool:
    """Whether ``--micrographs`` names one RELION micrographs STAR or cryoSPARC exposures ``.cs`` file."""
    items = [items] if isinstance(items, (str, Path)) else list(items or ())
    return len(items) == 1 and Path(str(items[0])).suffix.lower() in LIST_SUFFIXES and Path(str(items[0])).is_file()


def read_micrograph_list(path: str | Path, relion_project: str | Path | None = None,
                         cryosparc_project: str | Path | None = None) -> list[MicrographSource]:
    """Read a RELION micrographs STAR or a cryoSPARC exposures ``.cs``.

    Parameters
    ----------
    path : path
        The list file.
    relion_project, cryosparc_project : path, optional
        The folder the names in the list are relative to (where RELION / cryoSPARC runs). Default: the
        nearest of the list's folder and its ancestors in which the first micrograph exists.

    Returns
    -------
    list of MicrographSource
        In the list's order.

    Raises
    ------
    InputError
        Not a micrograph list, a missing column or field, or micrographs that cannot be found.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".star":
        from cryopick.io.relion import read_micrographs_star

        return read_micrographs_star(path, relion_project)
    if suffix == ".cs":
        from cryopick.io.cryosparc import read_exposures

        return read_exposures(path, cryosparc_project)
    raise InputError(f"{path}: not a micrograph list; give a RELION micrographs .star or a cryoSPARC exposures .cs")


def project_root(names: list[str], start: Path, given: str | Path | None, option: str, list_file: Path) -> Path:
    """The folder that the relative ``names`` of a list are relative to: ``given`` (checked), else the
    first of ``start`` and its ancestors where the first relative name exists."""
    relative = [n for n in names if not Path(n).is_absolute()]
    if given is not None:
        root = Path(given)
        if not root.is_dir():
            raise InputError(f"{option} {root}: not a folder")
        return root
    if not relative:
        return start
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / relative[0]).exists():
            return folder
    raise InputError(
        f"{list_file}: its micrograph {relative[0]!r} is relative to a project folder that is neither "
        f"{start} nor above it; give the folder with {option} DIR")


def resolve(root: Path, name: str, list_file: Path, option: str) -> Path:
    """``name`` (a path in a list) as a file, relative names under ``root``; raises if it does not exist."""
    path = Path(name) if Path(name).is_absolute() else root / name
    if not path.is_file():
        raise InputError(f"{list_file}: micrograph {name!r} not found (looked for {path}); "
                         f"check {option} (the folder the list's paths are relative to)")
    return path
