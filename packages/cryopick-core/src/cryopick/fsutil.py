"""Filesystem checks done before a command starts its work, so that a read-only ``--out`` or an unwritable
project path is reported in one line at once, not as a traceback after the whole pick has run.

Examples
--------
>>> from cryopick.fsutil import ensure_writable_dir
>>> ensure_writable_dir("picks/", "--out")          # doctest: +SKIP
PosixPath('picks')
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from cryopick.errors import CryopickError


class FilesystemError(CryopickError):
    """A path the command must write to cannot be written (read-only, a file where a folder is needed, ...)."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def _first_existing(path: Path) -> Path:
    """``path`` or its nearest existing ancestor."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe(folder: Path) -> OSError | None:
    """Try to create (and remove) a file in ``folder``; the error, if any. ``os.access`` is not enough:
    it ignores read-only mounts on some systems and ACLs, and is wrong for root."""
    try:
        fd, name = tempfile.mkstemp(prefix=".cryopick-write-test-", dir=folder)
    except OSError as exc:
        return exc
    os.close(fd)
    try:
        os.unlink(name)
    except OSError:  # pragma: no cover - written but not removable: still writable
        pass
    return None


def _reason(exc: OSError) -> str:
    return describe_os_error(exc, with_path=False)


def ensure_writable_dir(path: str | Path, what: str) -> Path:
    """Create folder ``path`` if needed and check a file can be written in it.

    Parameters
    ----------
    path : str or Path
        The folder (need not exist yet).
    what : str
        How the user named it, for the message (``"--out"``, ``"project folder"``).

    Returns
    -------
    Path

    Raises
    ------
    FilesystemError
        ``path`` is an existing file, or the folder cannot be created or written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FilesystemError(f"{what} {path}: is a file, not a folder; give a folder (it is created if missing)")
    if not path.exists():
        base = _first_existing(path)
        if not base.is_dir():
            raise FilesystemError(f"{what} {path}: {base} is a file, not a folder; choose another path")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FilesystemError(f"{what} {path}: cannot create the folder ({_reason(exc)}); "
                                  "choose a folder you can write to", _reason(exc)) from None
    exc = _probe(path)
    if exc is not None:
        raise FilesystemError(f"{what} {path}: cannot write there ({_reason(exc)}); "
                              "choose a folder you can write to", _reason(exc)) from None
    return path


def ensure_writable_file(path: str | Path, what: str) -> Path:
    """Check that file ``path`` can be created or rewritten (its folder is created if needed).

    Raises
    ------
    FilesystemError
        ``path`` is a folder, is read-only, or its folder cannot be written to.
    """
    path = Path(path)
    if path.is_dir():
        raise FilesystemError(f"{what} {path}: is a folder; give a file name, e.g. {path / 'project.h5'}")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise FilesystemError(f"{what} {path}: {parent} is a file, not a folder; choose another path")
    try:
        ensure_writable_dir(parent, what)
    except FilesystemError as exc:
        why = f" ({exc.reason})" if exc.reason else ""
        raise FilesystemError(f"{what} {path}: cannot write to its folder {parent}{why}; "
                              "choose a path you can write to (or fix the permissions)", exc.reason) from None
    if path.exists() and not os.access(path, os.W_OK):
        raise FilesystemError(f"{what} {path}: the file is read-only; make it writable (chmod u+w) or use another path")
    return path


_REASONS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
    errno.ENOTDIR: "not a folder",
    errno.EISDIR: "is a folder",
    errno.EIO: "input/output error",
}

_ADVICE = {
    errno.ENOSPC: "free some space (cryopick prune) and rerun the same command to resume",
    errno.EDQUOT: "free some space or use another --out/--project, then rerun the same command to resume",
    errno.EACCES: "choose a path you can write to, or fix its permissions",
    errno.EPERM: "choose a path you can write to, or fix its permissions",
    errno.EROFS: "choose a path on a writable file system",
}


def describe_os_error(exc: OSError, with_path: bool = True) -> str:
    """One line for an ``OSError``: what failed, on which path, and what to do.

    Examples
    --------
    >>> describe_os_error(OSError(28, "No space left on device", "/data/p.h5"))
    '/data/p.h5: disk full; free some space (cryopick prune) and rerun the same command to resume'
    """
    reason = _REASONS.get(exc.errno or -1) or (exc.strerror or str(exc) or type(exc).__name__)
    if not with_path:
        return reason
    where = exc.filename if exc.filename is not None else None
    text = f"{where}: {reason}" if where is not None else reason
    if getattr(exc, "filename2", None):
        text = f"{text} (and {exc.filename2})"
    advice = _ADVICE.get(exc.errno or -1)
    return f"{text}; {advice}" if advice else text
