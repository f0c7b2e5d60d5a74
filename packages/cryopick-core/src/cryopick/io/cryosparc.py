"""cryoSPARC exposures: the micrographs of a cryoSPARC job (``J5/J5_exposures_accepted.cs`` and the like).

An exposures ``.cs`` is a numpy structured array (``np.save``), one row per micrograph, with the fields
(cryosparc-tools' exposure dtype; ``micrograph_blob`` as written by Patch Motion Correction, Patch CTF,
Curate Exposures, Import Micrographs):

- ``uid`` (``<u8``): the exposure's random 64-bit id, which particles point to in ``location/micrograph_uid``;
- ``micrograph_blob/path`` (bytes): the micrograph, relative to the cryoSPARC project folder
  (``J3/motioncorrected/012..._mic_001_patch_aligned_doseweighted.mrc``);
- ``micrograph_blob/shape`` (``<u4`` x 2): ``(rows, cols)``;
- ``micrograph_blob/psize_A`` (``<f4``): pixel size in Å;
- ``ctf/exp_group_id`` or ``mscope_params/exp_group_id`` (``<u4``): the exposure group.

Files are loaded with ``allow_pickle=False``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.sources import MicrographSource, project_root, resolve

UID, PATH, SHAPE, PSIZE = "uid", "micrograph_blob/path", "micrograph_blob/shape", "micrograph_blob/psize_A"
GROUP_FIELDS = ("ctf/exp_group_id", "mscope_params/exp_group_id")
_OPTION = "--cryosparc-project"


def load_cs(path: Path, what: str = "cryoSPARC .cs") -> np.ndarray:
    """Load a ``.cs`` file as a flat numpy structured array, never unpickling anything."""
    from cryopick.io.cs import _CSDAT_MAGIC

    with open(path, "rb") as f:
        magic = f.read(len(_CSDAT_MAGIC))
    if magic == _CSDAT_MAGIC:
        raise InputError(f"{path}: uses cryoSPARC's compressed dataset format; save it with cryosparc-tools "
                         "Dataset.save(..., format=1) (numpy)")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise InputError(f"{path}: holds Python objects (text fields saved as objects), which cryopick "
                             "never unpickles; save it with fixed-width text fields") from None
        raise InputError(f"{path}: is not a {what} (numpy) file ({exc})") from None
    except (OSError, EOFError) as exc:
        raise InputError(f"{path}: is not a {what} (numpy) file ({exc})") from None
    if not isinstance(data, np.ndarray) or data.dtype.names is None:
        raise InputError(f"{path}: is a numpy file but not a structured {what} array")
    return data.reshape(-1)


def text(value) -> str:
    """A ``.cs`` text field as str."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_exposures(path: str | Path, cryosparc_project: str | Path | None = None) -> list[MicrographSource]:
    """Read a cryoSPARC exposures ``.cs``.

    Parameters
    ----------
    path : path
        The exposures file (``J5/J5_exposures_accepted.cs``, or one exported with cryosparc-tools).
    cryosparc_project : path, optional
        The cryoSPARC project folder (``P12/``) the micrograph paths are relative to. Default: the
        file's folder or the nearest ancestor holding the first micrograph.

    Returns
    -------
    list of MicrographSource
        ``name`` = ``micrograph_blob/path`` as written, ``uid``, ``exp_group_id`` (1 when the file has
        no exposure group field), pixel size and shape.

    Raises
    ------
    InputError
        A missing field (the message lists those found), or a micrograph not found.
    """
    path = Path(path)
    data = load_cs(path, "cryoSPARC exposures .cs")
    fields = data.dtype.names
    missing = [f for f in (UID, PATH) if f not in fields]
    if missing:
        hint = " (this looks like a particles file: give it as --labels)" if "location/center_x_frac" in fields else ""
        raise InputError(f"{path}: lacks exposure field(s) {', '.join(missing)}{hint}; fields found: "
                         f"{', '.join(fields)}")
    names = [text(p) for p in data[PATH]]
    group_field = next((f for f in GROUP_FIELDS if f in fields), None)
    groups = data[group_field].astype(int) if group_field else np.ones(len(data), dtype=int)
    psize = data[PSIZE].astype(float) if PSIZE in fields else np.full(len(data), np.nan)
    shapes = np.asarray(data[SHAPE], dtype=int).reshape(len(data), -1) if SHAPE in fields else None
    root = project_root(names, path.parent, cryosparc_project, _OPTION, path)
    out = []
    for i, name in enumerate(names):
        shape = (int(shapes[i, 0]), int(shapes[i, 1])) if shapes is not None and shapes.shape[1] == 2 else None
        size = float(psize[i]) if np.isfinite(psize[i]) and psize[i] > 0 else None
        out.append(MicrographSource(resolve(root, name, path, _OPTION), name, "cryosparc", size,
                                    int(data[UID][i]), int(groups[i]), shape))
    return out


def exposures_by_micrograph(exposures: list[MicrographSource], names: list[str]) -> dict[str, MicrographSource]:
    """Match micrograph IDs to exposures by base name (without cryoSPARC's uid prefix and the extension):
    ``mic_001`` <- ``J3/motioncorrected/0123..._mic_001.mrc``.

    Raises
    ------
    InputError
        None of ``names`` matches an exposure.
    """
    from cryopick.io.names import match_names

    by_name = {e.name: e for e in exposures}
    mapping, _ = match_names(list(by_name), names)
    found = {mic: by_name[name] for name, mic in mapping.items()}
    if names and not found:
        raise InputError(f"--exposures: none of its {len(exposures)} micrograph(s) (e.g. "
                         f"{exposures[0].name if exposures else '-'!r}) matches a micrograph of the project "
                         f"(e.g. {names[0]!r})")
    return found


def random_uids(n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``n`` distinct random 64-bit uids, as cryoSPARC gives every particle and exposure."""
    rng = rng or np.random.default_rng()
    uids = np.zeros(0, dtype=np.uint64)
    while len(uids) < n:
        more = rng.integers(1, np.iinfo(np.uint64).max, size=n - len(uids), dtype=np.uint64, endpoint=True)
        uids = np.unique(np.concatenate([uids, more]))  # drops the (astronomically rare) repeats
    return rng.permutation(uids)[:n]


def stable_uid(name: str) -> int:
    """A 64-bit id derived from a micrograph name, for micrographs that have no cryoSPARC uid."""
    import hashlib

    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little") or 1
