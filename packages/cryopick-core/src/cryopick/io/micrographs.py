"""Reading micrographs: MRC (modes 0, 1, 2, 6, 12), single-frame MRC stacks, TIFF, PNG and JPEG.

Every reader returns a 2-D ``float32`` image indexed ``[row, column]`` (``y``, ``x``) and a
:class:`MicrographInfo`. Bad files raise :class:`cryopick.errors.InputError` with a one-line message
naming the file.
"""

from __future__ import annotations

import glob
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
import numpy as np

from cryopick.errors import InputError

MRC_SUFFIXES = (".mrc", ".mrcs")
TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Suffixes :func:`read_micrograph` understands (compared case-insensitively).
MICROGRAPH_SUFFIXES = MRC_SUFFIXES + TIFF_SUFFIXES + PIL_SUFFIXES

# MRC modes we read: 0 int8, 1 int16, 2 float32, 6 uint16, 12 float16.
_MRC_MODES = {0: "int8", 1: "int16", 2: "float32", 6: "uint16", 12: "float16"}
_MRC_HEADER_BYTES = 1024


@attrs.define
class MicrographInfo:
    """What the header of a micrograph file says.

    Parameters
    ----------
    path : Path
        The file.
    name : str
        The micrograph ID: the file name without its extension (see :func:`micrograph_name`).
    shape : tuple of int
        ``(rows, cols)`` of the image.
    pixel_size_a : float or None
        Pixel size in Å; None when the file does not say and none was given.
    dtype : str
        The pixel type stored in the file (``"float32"``, ``"uint16"``, ...).
    """

    path: Path
    name: str
    shape: tuple[int, int]
    pixel_size_a: float | None
    dtype: str


def micrograph_name(path: str | Path) -> str:
    """The micrograph ID of a file: its base name without the extension.

    Examples
    --------
    >>> micrograph_name("/a/b/mic_001.mrc")
    'mic_001'
    """
    return Path(str(path).replace("\\", "/")).stem


def expand_micrographs(patterns: str | Path | Sequence[str | Path], option: str = "--micrographs") -> list[Path]:
    """The micrograph files that ``--micrographs`` names: each item a file, a folder (its files with a
    micrograph suffix, see ``MICROGRAPH_SUFFIXES``) or a glob (``'data/*.mrc'``, ``**`` recurses); several
    items (an unquoted glob the shell expanded) are joined. Sorted, without duplicates.

    Raises
    ------
    InputError
        An item matches no file, or nothing is left.

    Examples
    --------
    >>> expand_micrographs(["data/a.mrc", "data/b.mrc"])      # doctest: +SKIP
    [PosixPath('data/a.mrc'), PosixPath('data/b.mrc')]
    """
    items = [patterns] if isinstance(patterns, (str, Path)) else list(patterns)
    if not items:
        raise InputError(f"{option}: give a folder, a glob ('data/*.mrc') or micrograph files")
    found: dict[Path, None] = {}
    for item in items:
        item = str(item)
        path = Path(item)
        if path.is_dir():
            paths = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in MICROGRAPH_SUFFIXES)
            if not paths:
                raise InputError(f"{option} {item}: the folder holds no micrographs "
                                 f"({', '.join(MICROGRAPH_SUFFIXES)})")
        elif path.is_file():
            paths = [path]
        else:
            matches = sorted(Path(p) for p in glob.glob(item, recursive=True))
            paths = [p for p in matches if p.is_file()]
            if any(p.is_dir() for p in matches):  # 'data/*' matching folders: take micrographs only
                paths = [p for p in paths if p.suffix.lower() in MICROGRAPH_SUFFIXES]
            if not paths:
                hint = "no such file" if not glob.has_magic(item) else "the pattern matches no files"
                raise InputError(f"{option} {item!r}: {hint}; give a folder, a glob ('data/*.mrc') or files")
        for p in paths:
            found.setdefault(p, None)
    return sorted(found)


def validate_micrographs(
    paths: Sequence[str | Path], pixel_size_a: float | None = None,
    checked: Callable[[Path], bool] | None = None,
) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Split ``paths`` into usable micrographs and bad ones, reading each (header and pixels: truncated,
    corrupt, not 2-D, NaN/Inf values) without stopping at the first bad one.

    Parameters
    ----------
    paths : sequence of path
    pixel_size_a : float, optional
        As for :func:`read_micrograph`.
    checked : callable, optional
        ``checked(path)`` True for files validated before and unchanged since (already in the project):
        these are not read again.

    Returns
    -------
    good : list of Path
    bad : list of (Path, str)
        The file and why it is unusable (one line, without the path).
    """
    good: list[Path] = []
    bad: list[tuple[Path, str]] = []
    for path in paths:
        path = Path(path)
        if checked is not None and checked(path):
            good.append(path)
            continue
        try:
            read_micrograph(path, pixel_size_a=pixel_size_a, mmap=True)
        except InputError as exc:
            reason = str(exc)
            prefix = f"{path}: "
            bad.append((path, reason[len(prefix):] if reason.startswith(prefix) else reason))
        except OSError as exc:  # unreadable (permissions, I/O error)
            bad.append((path, exc.strerror or str(exc)))
        else:
            good.append(path)
    return good, bad


def usable_micrographs(
    paths: Sequence[str | Path], pixel_size_a: float | None = None, imported: dict | None = None,
    skipped: list[dict] | None = None,
) -> list[Path]:
    """The usable ``paths`` (:func:`validate_micrographs`); bad ones are reported in one line on stderr and
    appended to ``skipped`` as ``{"path": ..., "reason": ...}``.

    Parameters
    ----------
    imported : dict, optional
        A project's micrograph records by name: files imported before, with the same path, size and
        modification time, are not read again.

    Raises
    ------
    InputError
        No micrograph is usable.
    """
    from cryopick import progress

    known = {str(rec.path): rec for rec in (imported or {}).values()}

    def checked(path: Path) -> bool:
        rec = known.get(str(Path(path).resolve()))
        if rec is None:
            return False
        st = Path(path).stat()
        return int(getattr(rec, "size", -1)) == st.st_size and int(getattr(rec, "mtime_ns", -1)) == st.st_mtime_ns

    good, bad = validate_micrographs(paths, pixel_size_a, checked)
    if skipped is not None:
        skipped.extend({"path": str(p), "reason": reason} for p, reason in bad)
    if bad and not good:
        raise InputError(f"none of the {len(bad)} micrograph(s) is usable: {_list_bad(bad)}")
    if bad:
        progress.echo(f"warning: {skipped_summary(bad, len(paths))}")
    return good


def skipped_summary(bad: Sequence[tuple[Path, str]], total: int, limit: int = 5) -> str:
    """``"skipped 2 of 40 micrographs: a.mrc (truncated ...), b.mrc (NaN values ...)"``."""
    return f"skipped {len(bad)} of {total} micrographs: {_list_bad(bad, limit)}"


def _list_bad(bad: Sequence[tuple[Path, str]], limit: int = 5) -> str:
    parts = [f"{Path(p).name} ({reason})" for p, reason in bad[:limit]]
    more = f", and {len(bad) - limit} more (--json lists them all)" if len(bad) > limit else ""
    return ", ".join(parts) + more


def read_micrograph_info(path: str | Path, pixel_size_a: float | None = None) -> MicrographInfo:
    """Read the header of a micrograph (cheap: pixels are not read).

    Parameters
    ----------
    path : str or Path
        An ``.mrc``, ``.mrcs`` (one frame), ``.tif``/``.tiff``, ``.png`` or ``.jpg``/``.jpeg`` file.
    pixel_size_a : float, optional
        Pixel size in Å; overrides the one in the file.

    Returns
    -------
    MicrographInfo

    Raises
    ------
    InputError
        The file is missing, of an unknown type, corrupt, or not a single 2-D image.
    """
    path = _check_path(path)
    kind = _kind(path)
    if kind == "mrc":
        info, _ = _mrc_header(path)
    elif kind == "tiff":
        info = _tiff_info(path)
    else:
        info = _pil_info(path)
    return _with_pixel_size(info, pixel_size_a)


def read_micrograph(
    path: str | Path, pixel_size_a: float | None = None, mmap: bool = True
) -> tuple[np.ndarray, MicrographInfo]:
    """Read a micrograph as a 2-D ``float32`` image.

    Parameters
    ----------
    path : str or Path
        An ``.mrc``, ``.mrcs`` (one frame), ``.tif``/``.tiff``, ``.png`` or ``.jpg``/``.jpeg`` file.
    pixel_size_a : float, optional
        Pixel size in Å; overrides the one in the file.
    mmap : bool
        Memory-map MRC files instead of reading them into memory. A float32 MRC is then returned as a
        copy-on-write view of the file (writing to the array never changes the file).

    Returns
    -------
    image : ndarray of float32, shape (rows, cols)
    info : MicrographInfo

    Raises
    ------
    InputError
        As :func:`read_micrograph_info`, and when the image contains NaN or Inf pixels.
    """
    path = _check_path(path)
    kind = _kind(path)
    if kind == "mrc":
        info, (offset, dtype, frames) = _mrc_header(path)
        rows, cols = info.shape
        if mmap:
            raw = np.memmap(path, dtype=dtype, mode="c", offset=offset, shape=(frames, rows, cols))[0]
        else:
            with open(path, "rb") as f:
                f.seek(offset)
                raw = np.fromfile(f, dtype=dtype, count=rows * cols).reshape(rows, cols)
        image = np.asarray(raw, dtype=np.float32)
    elif kind == "tiff":
        info = _tiff_info(path)
        image = _tiff_pixels(path)
    else:
        info = _pil_info(path)
        image = _pil_pixels(path)
    if image.shape != info.shape:  # pragma: no cover - guarded by the header checks
        raise InputError(f"{path}: pixel data has shape {image.shape} but the header says {info.shape}")
    _check_finite(path, image)
    return image, _with_pixel_size(info, pixel_size_a)


def _check_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: micrograph file not found")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a micrograph file")
    return path


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in MRC_SUFFIXES:
        return "mrc"
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in PIL_SUFFIXES:
        return "pil"
    raise InputError(
        f"{path}: unknown micrograph type {suffix or '(no suffix)'!r}; supported: {', '.join(MICROGRAPH_SUFFIXES)}"
    )


def _with_pixel_size(info: MicrographInfo, pixel_size_a: float | None) -> MicrographInfo:
    if pixel_size_a is not None:
        if not np.isfinite(pixel_size_a) or pixel_size_a <= 0:
            raise InputError(f"{info.path}: pixel size must be a positive number of Å, got {pixel_size_a}")
        info.pixel_size_a = float(pixel_size_a)
    return info


def _check_2d(path: Path, shape: tuple[int, ...], what: str = "image") -> tuple[int, int]:
    """Reduce ``shape`` to ``(rows, cols)`` or raise: a leading axis of length 1 is dropped."""
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 3:
        unit = "sections" if what == "3-D volume" else "frames"
        raise InputError(f"{path}: is a {what} with {shape[0]} {unit}; cryopick reads one 2-D image per file")
    if len(shape) != 2:
        raise InputError(f"{path}: has {len(shape)} dimensions {tuple(shape)}; expected a 2-D image")
    rows, cols = int(shape[0]), int(shape[1])
    if rows == 0 or cols == 0:
        raise InputError(f"{path}: the image is empty ({cols} x {rows} pixels)")
    if rows == 1 or cols == 1:
        raise InputError(f"{path}: the image is 1-D ({cols} x {rows} pixels); expected a 2-D micrograph")
    return rows, cols


def _check_finite(path: Path, image: np.ndarray) -> None:
    if image.dtype.kind != "f":
        return
    bad = image.size - int(np.count_nonzero(np.isfinite(image)))
    if bad:
        raise InputError(f"{path}: contains {bad} NaN/Inf pixels; fix or re-export it")


# ---------------------------------------------------------------------------------------------- MRC


def _mrc_header(path: Path) -> tuple[MicrographInfo, tuple[int, np.dtype, int]]:
    """Read and validate an MRC header; return the info and ``(data offset, dtype, frames)``."""
    import mrcfile
    from mrcfile.utils import data_dtype_from_header

    size = path.stat().st_size
    if size < _MRC_HEADER_BYTES:
        raise InputError(f"{path}: is not an MRC file ({size} bytes, shorter than an MRC header)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # permissive mode warns; we validate below
            with mrcfile.open(path, mode="r", header_only=True, permissive=True) as mrc:
                header = mrc.header.copy()
                voxel_x = float(mrc.voxel_size.x)
    except Exception as exc:  # mrcfile raises ValueError, OSError, ... for garbage
        raise InputError(f"{path}: is not an MRC file (unreadable header: {exc})") from None
    mode = int(header.mode)
    nx, ny, nz = int(header.nx), int(header.ny), int(header.nz)
    has_map_id = bytes(header.map).startswith(b"MAP")
    if mode not in _MRC_MODES or min(nx, ny, nz) < 0 or int(header.nsymbt) < 0:
        if not has_map_id:
            raise InputError(f"{path}: is not an MRC file (no 'MAP' label and an invalid header)")
        raise InputError(
            f"{path}: unsupported MRC mode {mode}; cryopick reads modes "
            + ", ".join(f"{m} ({t})" for m, t in _MRC_MODES.items())
        )
    dtype = data_dtype_from_header(header)
    offset = _MRC_HEADER_BYTES + int(header.nsymbt)
    expected = offset + nx * ny * nz * dtype.itemsize
    if size < expected:
        raise InputError(
            f"{path}: is truncated or corrupt: {size} bytes but its header says {expected} "
            f"({nx} x {ny} x {nz}, mode {mode}); re-export or re-copy it"
        )
    # Space group 0 marks an image stack, anything else a volume (MRC2014).
    stack = path.suffix.lower() == ".mrcs" or int(header.ispg) == 0
    rows, cols = _check_2d(path, (nz, ny, nx), "stack" if stack else "3-D volume")
    pixel_size = voxel_x if np.isfinite(voxel_x) and voxel_x > 0 and voxel_x != 1.0 else None
    info = MicrographInfo(path, micrograph_name(path), (rows, cols), pixel_size, _MRC_MODES[mode])
    return info, (offset, dtype, max(nz, 1))


# ------------------------------------------------------------------------------------- TIFF and PIL


def _tiff_info(path: Path) -> MicrographInfo:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            shape, dtype, axes = tuple(series.shape), str(series.dtype), series.axes
    except Exception as exc:
        raise InputError(f"{path}: is not a readable TIFF file ({exc})") from None
    if axes.endswith("S") and len(shape) == 3:
        raise InputError(f"{path}: is a colour TIFF with {shape[-1]} channels; export a greyscale image")
    rows, cols = _check_2d(path, shape, "stack")
    return MicrographInfo(path, micrograph_name(path), (rows, cols), None, dtype)


def _tiff_pixels(path: Path) -> np.ndarray:
    import tifffile

    try:
        data = tifffile.imread(path, key=0)
    except Exception as exc:
        raise InputError(f"{path}: could not read the TIFF pixels ({exc})") from None
    data = np.asarray(data)
    return data.reshape(_check_2d(path, data.shape)).astype(np.float32)


def _pil_info(path: Path) -> MicrographInfo:
    from PIL import Image

    try:
        with Image.open(path) as img:
            cols, rows = img.size
            mode = img.mode
    except Exception as exc:
        raise InputError(f"{path}: is not a readable image ({exc})") from None
    rows, cols = _check_2d(path, (rows, cols))
    dtype = {"L": "uint8", "P": "uint8", "I;16": "uint16", "I;16B": "uint16", "I": "int32", "F": "float32"}
    return MicrographInfo(path, micrograph_name(path), (rows, cols), None, dtype.get(mode, "uint8"))


def _pil_pixels(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as img:
            if img.mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
                img = img.convert("L")  # colour or palette images: use the grey level
            data = np.asarray(img)
    except Exception as exc:
        raise InputError(f"{path}: could not read the image pixels ({exc})") from None
    return data.astype(np.float32)
