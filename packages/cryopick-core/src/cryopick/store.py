"""The project store: one HDF5 file per project that ties the stages together.

Layout (``docs/store.md`` documents every attribute)::

    /                       attrs: schema_version, cryopick_version, created
    /settings               attrs: diameter_px (project defaults)
    /micrographs/<name>     attrs: path, pixel_size_a, shape, checksum
    /preprocessed/<key>/<name>   image (float32, chunked, gzip); attrs: factor_x, factor_y, chain
    /labels/<set>/<name>    x, y, score (original pixels); attrs: source
    /models/<key>           one dataset per weight array; attrs: picker, config (JSON), labels, preprocessing
    /runs/<run>/info        attrs: picker, config, preprocessing, model, diameter_px, provenance, threshold,
                            threshold_scope, status, updated, summary
    /runs/<run>/candidates/<name>   x, y, score (original pixels); attrs: seconds
    /runs/<run>/picks/<name>        x, y, score; attrs: threshold, thresholder
    /runs/<run>/metrics     attrs: metrics (JSON), micrographs

Crash safety. HDF5 files are not journaled: a process killed while it modifies a file in place can
leave it unreadable. So the main file is never modified in place. Each write is a *record* (a group of
arrays and attributes) that goes, with the other records of the same transaction, into a new small
journal file ``<project>.h5.journal/NNNNNNNN.h5`` written under a temporary name and renamed into place
(atomic). Reads see the main file overlaid with the journal. *Compaction* copies the main file, applies
the journal, and renames the copy over the main file (atomic), then deletes the journal entries; it runs
at the end of each stage and when the store is closed. A kill at any point leaves the main file as it
was before or after a compaction, and a journal that the next writer replays (replay is idempotent), so
the file always opens and a rerun resumes from the last finished record.

One writer at a time: writers hold an exclusive ``flock`` on ``<project>.h5.lock`` (released by the OS
when the process dies, so a killed run never leaves a stale lock). A second writer is refused with a
message naming the process that holds the lock. Readers need no lock.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import h5py
import numpy as np

from cryopick.errors import StoreError, StoreLockedError

SCHEMA_VERSION = 1
_JSON_PREFIX = "json:"
_SLASH = "\\"


@attrs.define
class Record:
    """A group in the store: named arrays and scalar/string/JSON attributes."""

    arrays: dict[str, np.ndarray] = attrs.Factory(dict)
    attrs: dict[str, Any] = attrs.Factory(dict)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _encode_attr(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float, np.integer, np.floating)):
        return value
    return _JSON_PREFIX + json.dumps(value, default=str)


def _decode_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, str) and value.startswith(_JSON_PREFIX):
        return json.loads(value[len(_JSON_PREFIX):])
    if isinstance(value, np.generic):
        return value.item()
    return value


def _write_record(f: h5py.File, path: str, record: Record) -> None:
    if path in f:
        del f[path]
    group = f.create_group(path)
    for name, array in record.arrays.items():
        name = name.replace("/", _SLASH)  # weight names may hold '/', HDF5 names may not
        array = np.asarray(array)
        if array.ndim >= 2 and array.size >= 4096:
            chunks = tuple(min(s, 256) for s in array.shape)
            group.create_dataset(name, data=array, chunks=chunks, compression="gzip", compression_opts=4,
                                 shuffle=True)
        else:
            group.create_dataset(name, data=array)
    for key, value in record.attrs.items():
        group.attrs[key] = _encode_attr(value)


def _read_record(group: h5py.Group) -> Record:
    arrays = {name.replace(_SLASH, "/"): group[name][()] for name in group if isinstance(group[name], h5py.Dataset)}
    return Record(arrays, {k: _decode_attr(v) for k, v in group.attrs.items()})


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ProjectStore:
    """Open a project store.

    Parameters
    ----------
    path : path
        The project file (``project.h5``).
    mode : {"r", "a"}
        ``"r"`` reads (no lock); ``"a"`` writes, creating the file if needed and taking the writer lock.
    """

    def __init__(self, path: str | Path, mode: str = "r") -> None:
        self.path = Path(path)
        self.mode = mode
        self.journal_dir = self.path.with_name(self.path.name + ".journal")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock_fd: int | None = None
        self._journal: dict[str, Path] = {}  # record path -> newest journal entry holding it
        self._entries: list[Path] = []
        self._next_seq = 1
        if mode not in ("r", "a"):
            raise ValueError("mode must be 'r' or 'a'")
        if mode == "a":
            self._acquire_lock()
            try:
                if not self.path.exists():
                    self._create()
                self._check_schema()
                self._scan_journal()
                self.compact()  # replay what a killed writer left
            except BaseException:
                self._release_lock()
                raise
        else:
            if not self.path.exists():
                raise StoreError(f"{self.path}: no such project; create it with 'cryopick init {self.path}'")
            self._check_schema()
            self._scan_journal()

    # -- lifecycle ----------------------------------------------------------------------------------
    def _acquire_lock(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise StoreLockedError(
                f"{self.path} is being written by {holder}; wait for it to finish, or use another --project"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"cryopick pid {os.getpid()} since {_now()}".encode())
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _create(self) -> None:
        from cryopick import __version__

        tmp = self.path.with_name(self.path.name + ".new")
        with h5py.File(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["cryopick_version"] = __version__
            f.attrs["created"] = _now()
            for group in ("micrographs", "preprocessed", "labels", "models", "runs"):
                f.create_group(group)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def _check_schema(self) -> None:
        try:
            with h5py.File(self.path, "r") as f:
                version = f.attrs.get("schema_version")
        except OSError as exc:
            raise StoreError(f"{self.path}: not a readable HDF5 project store ({exc})") from exc
        if version is None:
            raise StoreError(f"{self.path}: an HDF5 file but not a cryopick project (no schema_version)")
        if int(version) > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema_version {int(version)} is newer than this cryopick "
                             f"understands ({SCHEMA_VERSION}); upgrade cryopick-core")

    def close(self) -> None:
        if self.mode == "a" and self._lock_fd is not None:
            try:
                self.compact()
            finally:
                self._release_lock()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- journal ------------------------------------------------------------------------------------
    def _scan_journal(self) -> None:
        self._journal.clear()
        self._entries = sorted(self.journal_dir.glob("[0-9]*.h5")) if self.journal_dir.is_dir() else []
        for entry in self._entries:
            try:
                with h5py.File(entry, "r") as f:
                    paths = json.loads(f.attrs["records"])
            except (OSError, KeyError, ValueError):
                continue  # unreadable entries cannot exist (atomic rename); skip defensively
            for p in paths:
                self._journal[p] = entry
        if self._entries:
            self._next_seq = int(self._entries[-1].stem) + 1

    def write(self, records: dict[str, Record]) -> None:
        """Write several records as one atomic transaction."""
        if self.mode != "a":
            raise StoreError(f"{self.path} is open read-only")
        self.journal_dir.mkdir(exist_ok=True)
        entry = self.journal_dir / f"{self._next_seq:08d}.h5"
        tmp = self.journal_dir / f".{entry.name}.tmp"
        with h5py.File(tmp, "w") as f:
            f.attrs["records"] = json.dumps(list(records))
            for path, record in records.items():
                _write_record(f, path, record)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, entry)
        _fsync_dir(self.journal_dir)
        self._next_seq += 1
        self._entries.append(entry)
        for path in records:
            self._journal[path] = entry

    def put(self, record_path: str, arrays: dict[str, np.ndarray] | None = None, /, **attributes: Any) -> None:
        """Write one record."""
        self.write({record_path: Record(dict(arrays or {}), attributes)})

    def compact(self) -> None:
        """Fold the journal into the main file (copy, apply, atomic rename)."""
        if self.mode != "a" or not self._entries:
            return
        tmp = self.path.with_name(self.path.name + ".compact")
        shutil.copyfile(self.path, tmp)
        with h5py.File(tmp, "a") as dst:
            for entry in self._entries:
                with h5py.File(entry, "r") as src:
                    for path in json.loads(src.attrs["records"]):
                        if path in dst:
                            del dst[path]
                        parent = path.rsplit("/", 1)[0]
                        if parent:
                            dst.require_group(parent)
                        src.copy(src[path], dst, name=path)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        for entry in self._entries:
            entry.unlink(missing_ok=True)
        self._entries.clear()
        self._journal.clear()

    # -- reading ------------------------------------------------------------------------------------
    def _open_source(self, path: str) -> Path:
        return self._journal.get(path, self.path)

    def has(self, path: str) -> bool:
        if path in self._journal:
            return True
        with h5py.File(self.path, "r") as f:
            return path in f

    def get(self, path: str) -> Record | None:
        for attempt in (0, 1):
            source = self._open_source(path)
            try:
                with h5py.File(source, "r") as f:
                    if path not in f:
                        return None
                    return _read_record(f[path])
            except (FileNotFoundError, OSError) as exc:
                if attempt or source == self.path:
                    raise StoreError(f"{self.path}: cannot read {path}; is a writer compacting it? Try again.") from exc
                self._scan_journal()  # a writer folded the journal into the main file meanwhile
        return None

    def children(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (main file and journal)."""
        prefix = prefix.rstrip("/")
        names: set[str] = set()
        with h5py.File(self.path, "r") as f:
            if prefix in f:
                names.update(f[prefix].keys())
        for path in self._journal:
            if path.startswith(prefix + "/"):
                names.add(path[len(prefix) + 1:].split("/", 1)[0])
        return sorted(names)

    @property
    def attrs(self) -> dict[str, Any]:
        with h5py.File(self.path, "r") as f:
            return {k: _decode_attr(v) for k, v in f.attrs.items()}


def records_paths(*parts: Iterable[str]) -> str:
    return "/" + "/".join(p.strip("/") for p in parts)
