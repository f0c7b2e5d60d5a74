"""The project store: one small HDF5 file per project, large arrays in files beside it.

Layout (``docs/store.md`` documents every attribute)::

    /                       attrs: schema_version, cryopick_version, created
    /settings               attrs: diameter_px (project defaults), relion_project, relion_micrographs
    /micrographs/<name>     attrs: path, pixel_size_a, shape, checksum (sha256), size, mtime; source,
                            source_name, source_uid, exp_group_id (RELION / cryoSPARC origin)
    /preprocessed/<key>/<name>   image (an array file); attrs: factor_x, factor_y, chain, checksum
    /labels/<set>/<name>    x, y, score (original pixels); attrs: source
    /models/<key>           one dataset per weight array; attrs: picker, config (JSON), labels, preprocessing
    /runs/<run>/info        attrs: picker, config, preprocessing, model, diameter_px, provenance, threshold,
                            threshold_scope, status, updated, summary
    /runs/<run>/candidates/<name>   x, y, score (original pixels); attrs: seconds, checksum
    /runs/<run>/picks/<name>        x, y, score; attrs: threshold, thresholder
    /runs/<run>/metrics     attrs: metrics (JSON), micrographs

Files::

    project.h5                       the main file (small: attributes and small arrays); never modified in place
    project.h5.journal/NNNNNNNN.h5   transactions not yet folded into the main file
    project.h5.d/arrays/<hash>.npy   large arrays (preprocessed images, big weights), content-addressed
    project.h5.lock, .writer         the writer lock (see :mod:`cryopick.lock`)

Cost. A write costs what it writes: arrays of at least :data:`EXTERNAL_MIN_BYTES` (and every preprocessed
image) go to their own ``.npy`` file, named by the hash of their content (written once, shared by every
record that holds the same array), and the record that holds them keeps only a reference. The journal
entry of a transaction is therefore small. The main file is rewritten (*folded*) only when the journal
has grown to a quarter of it (or to :data:`MAX_ENTRIES` entries), so folding costs, amortised, a small
multiple of what was written, never a copy of the project per stage; at close a writer merges the
entries of its session into one.

Crash safety. HDF5 files are not journaled: a process killed while it modifies a file in place can
leave it unreadable. So no file is modified in place. An array file is written under a temporary name,
``fsync``-ed and renamed (atomic) before any journal entry refers to it; a journal entry likewise;
folding copies the main file, applies the journal, and renames the copy over the main file. A kill at
any point leaves a main file that opens, journal entries that are each complete (the next writer reads
them as they are; replaying them is idempotent), and at worst array or temporary files that nothing
refers to, which ``cryopick prune`` deletes.

One writer at a time (:class:`cryopick.lock.WriterLock`: ``flock``, plus a lock file on network file
systems). Readers need no lock.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import h5py
import numpy as np

from cryopick.errors import StoreError
from cryopick.lock import WriterLock

SCHEMA_VERSION = 2
#: Arrays of at least this many bytes are stored in their own file under ``<project>.h5.d/arrays/``.
EXTERNAL_MIN_BYTES = 256 * 1024
#: Fold the journal into the main file when it reaches this fraction of the main file's size ...
FOLD_RATIO = 0.25
#: ... or this many entries.
MAX_ENTRIES = 64
_JSON_PREFIX = "json:"
_SLASH = "\\"
_EXTERNAL = "external"


@attrs.define
class Record:
    """A group in the store: named arrays and scalar/string/JSON attributes.

    ``external``: ``True`` stores every array in its own array file, ``None`` those of at least
    :data:`EXTERNAL_MIN_BYTES`, ``False`` none.
    """

    arrays: dict[str, np.ndarray] = attrs.Factory(dict)
    attrs: dict[str, Any] = attrs.Factory(dict)
    external: bool | None = None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _h5(path: Path, mode: str = "r") -> h5py.File:
    # No HDF5 file locking: the store never modifies a file in place and has its own writer lock, and
    # HDF5's locks fail on some network file systems.
    return h5py.File(path, mode, locking=False)


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


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class ArrayFiles:
    """Content-addressed ``.npy`` files: ``<dir>/<first 32 hex digits of sha256>.npy``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @staticmethod
    def name_of(array: np.ndarray) -> str:
        h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
        h.update(memoryview(np.ascontiguousarray(array)).cast("B"))
        return f"arrays/{h.hexdigest()[:32]}.npy"

    def write(self, array: np.ndarray) -> str:
        """Store ``array`` (once: an existing file with its hash is complete, so it is kept); returns
        the reference, a path relative to the store's side folder."""
        array = np.ascontiguousarray(array)
        ref = self.name_of(array)
        final = self.folder.parent / ref
        if final.exists():
            return ref
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.lib.format.write_array(fh, array, allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        return ref

    def read(self, ref: str) -> np.ndarray:
        return np.load(self.folder.parent / ref, allow_pickle=False)


class ProjectStore:
    """Open a project store.

    Parameters
    ----------
    path : path
        The project file (``project.h5``).
    mode : {"r", "a"}
        ``"r"`` reads (no lock); ``"a"`` writes, creating the file if needed and taking the writer lock.
    mounts : path, optional
        Mount table used to detect network file systems (default ``/proc/mounts``; for tests).
    """

    def __init__(self, path: str | Path, mode: str = "r", mounts: str | Path | None = None) -> None:
        self.path = Path(path)
        self.mode = mode
        self.journal_dir = self.path.with_name(self.path.name + ".journal")
        self.side_dir = self.path.with_name(self.path.name + ".d")
        self.arrays = ArrayFiles(self.side_dir / "arrays")
        self.lock_path = self.path.with_name(self.path.name + ".lock")
        self._lock: WriterLock | None = None
        self._journal: dict[str, Path] = {}  # record path -> newest journal entry holding it
        self._entries: list[Path] = []
        self._next_seq = 1
        self._session_seq = 1  # entries from this number on were written by this writer
        self._main: h5py.File | None = None
        self._open_entries: dict[Path, h5py.File] = {}
        self._attr_cache: dict[str, dict[str, Any]] = {}
        if mode not in ("r", "a"):
            raise ValueError("mode must be 'r' or 'a'")
        if mode == "a":
            self._lock = WriterLock(self.path, mounts)
            self._lock.acquire()
            if self._lock.note:
                from cryopick import progress

                progress.echo(self._lock.note)
            try:
                if not self.path.exists():
                    self._create()
                self._check_schema(writing=True)
                self._scan_journal()
                self._session_seq = self._next_seq
            except BaseException:
                self._release_lock()
                raise
        else:
            if not self.path.exists():
                raise StoreError(f"{self.path}: no such project; create it with 'cryopick init {self.path}'")
            self._check_schema(writing=False)
            self._scan_journal()

    # -- lifecycle ----------------------------------------------------------------------------------
    @property
    def lock_note(self) -> str:
        """A line to show the user when the writer took over a stale lock file, else ``""``."""
        return self._lock.note if self._lock else ""

    def _release_lock(self) -> None:
        self._close_handles()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _create(self) -> None:
        from cryopick import __version__

        tmp = self.path.with_name(self.path.name + ".new")
        with _h5(tmp, "w") as f:
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["cryopick_version"] = __version__
            f.attrs["created"] = _now()
            for group in ("micrographs", "preprocessed", "labels", "models", "runs"):
                f.create_group(group)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)

    def _check_schema(self, writing: bool) -> None:
        try:
            with _h5(self.path) as f:
                version = f.attrs.get("schema_version")
        except OSError as exc:
            raise StoreError(f"{self.path}: not a readable HDF5 project store ({exc})") from exc
        if version is None:
            raise StoreError(f"{self.path}: an HDF5 file but not a cryopick project (no schema_version)")
        if int(version) > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: schema_version {int(version)} is newer than this cryopick "
                             f"understands ({SCHEMA_VERSION}); upgrade cryopick-core")
        if writing and int(version) < SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: written by an older cryopick (store schema {int(version)}); this version reads "
                f"it but writes schema {SCHEMA_VERSION} (large arrays in {self.side_dir.name}/). Export what you "
                f"need with 'cryopick export -P {self.path}', then start a new project (cryopick init NEW.h5 "
                "and cryopick import, or cryopick run with another --out)")

    def close(self) -> None:
        """End a writer's session: fold or merge the journal, release the lock. Readers: close files."""
        if self.mode == "a" and self._lock is not None:
            try:
                if not self.compact():
                    self._merge_session()
            finally:
                self._release_lock()
        else:
            self._close_handles()

    def __enter__(self) -> ProjectStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _close_handles(self) -> None:
        for f in self._open_entries.values():
            f.close()
        self._open_entries.clear()
        if self._main is not None:
            self._main.close()
            self._main = None

    def _main_file(self) -> h5py.File:
        if self._main is None:
            self._main = _h5(self.path)
        return self._main

    def _entry_file(self, entry: Path) -> h5py.File:
        f = self._open_entries.get(entry)
        if f is None:
            if len(self._open_entries) >= 32:  # bounded: one handle per entry would exhaust descriptors
                oldest = next(iter(self._open_entries))
                self._open_entries.pop(oldest).close()
            f = self._open_entries[entry] = _h5(entry)
        return f

    # -- journal ------------------------------------------------------------------------------------
    def _scan_journal(self) -> None:
        self._close_handles()
        self._attr_cache.clear()
        self._journal.clear()
        self._entries = sorted(self.journal_dir.glob("[0-9]*.h5")) if self.journal_dir.is_dir() else []
        for entry in self._entries:
            try:
                with _h5(entry) as f:
                    paths = json.loads(f.attrs["records"])
            except (OSError, KeyError, ValueError):
                continue  # unreadable entries cannot exist (atomic rename); skip defensively
            for p in paths:
                self._journal[p] = entry
        if self._entries:
            self._next_seq = max(self._next_seq, int(self._entries[-1].stem) + 1)

    def _write_record(self, f: h5py.File, path: str, record: Record, refs: dict[str, str]) -> None:
        group = f.create_group(path)
        for name, array in record.arrays.items():
            hname = name.replace("/", _SLASH)  # weight names may hold '/', HDF5 names may not
            array = np.asarray(array)
            if name in refs:
                ds = group.create_dataset(hname, data=h5py.Empty(array.dtype))
                ds.attrs[_EXTERNAL] = refs[name]
                ds.attrs["shape"] = np.asarray(array.shape, dtype=np.int64)
            elif array.ndim >= 2 and array.size >= 4096:
                chunks = tuple(min(s, 256) for s in array.shape)
                group.create_dataset(hname, data=array, chunks=chunks, compression="gzip", compression_opts=4,
                                     shuffle=True)
            else:
                group.create_dataset(hname, data=array)
        for key, value in record.attrs.items():
            group.attrs[key] = _encode_attr(value)

    def _new_entry(self, fill: Callable[[h5py.File], list[str]]) -> Path:
        """Write a journal entry atomically (temporary name, fsync, rename, fsync the folder)."""
        self.journal_dir.mkdir(exist_ok=True)
        entry = self.journal_dir / f"{self._next_seq:08d}.h5"
        tmp = self.journal_dir / f".{entry.name}.tmp"
        with _h5(tmp, "w") as f:
            f.attrs["records"] = json.dumps(fill(f))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, entry)
        _fsync_dir(self.journal_dir)
        self._next_seq += 1
        return entry

    def write(self, records: dict[str, Record]) -> None:
        """Write several records as one atomic transaction."""
        if self.mode != "a":
            raise StoreError(f"{self.path} is open read-only")
        refs: dict[str, dict[str, str]] = {}
        for path, record in records.items():
            refs[path] = {}
            for name, array in record.arrays.items():
                array = np.asarray(array)
                big = array.nbytes >= EXTERNAL_MIN_BYTES if record.external is None else record.external
                if big and array.dtype.kind in "biufc":
                    refs[path][name] = self.arrays.write(array)
        if any(refs.values()):
            _fsync_dir(self.arrays.folder)  # array files are durable before any entry refers to them

        def fill(f: h5py.File) -> list[str]:
            for path, record in records.items():
                self._write_record(f, path, record, refs[path])
            return list(records)

        entry = self._new_entry(fill)
        self._entries.append(entry)
        for path in records:
            self._journal[path] = entry
            self._attr_cache.pop(path, None)

    def put(self, record_path: str, arrays: dict[str, np.ndarray] | None = None, /, **attributes: Any) -> None:
        """Write one record."""
        self.write({record_path: Record(dict(arrays or {}), attributes)})

    def journal_bytes(self) -> int:
        return sum(_size(e) for e in self._entries)

    def compact(self, force: bool = False) -> bool:
        """Fold the journal into the main file if it has grown past :data:`FOLD_RATIO` of the main file
        or :data:`MAX_ENTRIES` entries (always with ``force``); returns whether it folded. Cheap to call
        after every stage: below the threshold it does nothing."""
        if self.mode != "a" or not self._entries:
            return False
        if not force and len(self._entries) <= MAX_ENTRIES \
                and self.journal_bytes() < FOLD_RATIO * _size(self.path):
            return False
        self._close_handles()
        tmp = self.path.with_name(self.path.name + ".compact")
        shutil.copyfile(self.path, tmp)
        with _h5(tmp, "a") as dst:
            for entry in self._entries:
                with _h5(entry) as src:
                    for path in json.loads(src.attrs["records"]):
                        if path in dst:
                            del dst[path]
                        parent = path.rsplit("/", 1)[0]
                        if parent:
                            dst.require_group(parent)
                        src.copy(src[path], dst, name=path)
        self._replace_main(tmp)
        return True

    def _replace_main(self, tmp: Path) -> None:
        """Atomically put ``tmp`` in place of the main file, then drop the (now folded) journal."""
        self._close_handles()
        self._attr_cache.clear()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        for entry in self._entries:
            entry.unlink(missing_ok=True)
        self._entries.clear()
        self._journal.clear()

    def _merge_session(self) -> None:
        """Merge the journal entries this writer wrote into one (the newest version of each record), so
        that the journal grows by one entry per command, not one per micrograph."""
        mine = [e for e in self._entries if int(e.stem) >= self._session_seq]
        if len(mine) < 2:
            return
        self._close_handles()
        newest: dict[str, Path] = {}
        for entry in mine:
            with _h5(entry) as f:
                for p in json.loads(f.attrs["records"]):
                    newest[p] = entry

        def fill(dst: h5py.File) -> list[str]:
            for entry in mine:
                with _h5(entry) as src:
                    for p, e in newest.items():
                        if e == entry:
                            src.copy(src[p], dst, name=p)
            return list(newest)

        self._new_entry(fill)
        for entry in mine:
            entry.unlink(missing_ok=True)
        _fsync_dir(self.journal_dir)
        self._scan_journal()

    # -- reading ------------------------------------------------------------------------------------
    def _read_record(self, group: h5py.Group) -> Record:
        arrays = {}
        for name in group:
            ds = group[name]
            if not isinstance(ds, h5py.Dataset):
                continue
            ref = ds.attrs.get(_EXTERNAL)
            if ref is not None:
                ref = ref.decode() if isinstance(ref, bytes) else str(ref)
                try:
                    arrays[name.replace(_SLASH, "/")] = self.arrays.read(ref)
                except FileNotFoundError:
                    raise StoreError(f"{self.path}: array file {self.side_dir.name}/{ref} of {group.name} is "
                                     "missing (was the project folder copied without it?)") from None
            else:
                arrays[name.replace(_SLASH, "/")] = ds[()]
        return Record(arrays, {k: _decode_attr(v) for k, v in group.attrs.items()})

    def has(self, path: str) -> bool:
        if path in self._journal:
            return True
        return path in self._main_file()

    def get(self, path: str) -> Record | None:
        for attempt in (0, 1):
            source = self._journal.get(path)
            try:
                f = self._entry_file(source) if source is not None else self._main_file()
                if path not in f:
                    return None
                return self._read_record(f[path])
            except (FileNotFoundError, OSError) as exc:
                if attempt or self.mode == "a":
                    raise StoreError(f"{self.path}: cannot read {path}; is a writer compacting it? "
                                     "Try again.") from exc
                self._scan_journal()  # a writer folded the journal into the main file meanwhile
        return None

    def attributes(self, path: str) -> dict[str, Any] | None:
        """The attributes of a record without reading its arrays (``None`` if there is no such record).
        Cached: resume checks ask for the same few attributes of every micrograph several times."""
        if path in self._attr_cache:
            return dict(self._attr_cache[path])
        source = self._journal.get(path)
        f = self._entry_file(source) if source is not None else self._main_file()
        if path not in f:
            return None
        found = {k: _decode_attr(v) for k, v in f[path].attrs.items()}
        self._attr_cache[path] = found
        return dict(found)

    def children(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (main file and journal)."""
        prefix = prefix.rstrip("/")
        names: set[str] = set()
        f = self._main_file()
        if prefix in f:
            names.update(f[prefix].keys())
        for path in self._journal:
            if path.startswith(prefix + "/"):
                names.add(path[len(prefix) + 1:].split("/", 1)[0])
        return sorted(names)

    @property
    def attrs(self) -> dict[str, Any]:
        return {k: _decode_attr(v) for k, v in self._main_file().attrs.items()}

    # -- space ----------------------------------------------------------------------------------------
    def disk_usage(self) -> dict[str, int]:
        """Bytes on disk: ``main``, ``journal``, ``arrays`` (array files) and ``temporary`` files."""
        arrays = sum(_size(p) for p in self.arrays.folder.glob("*.npy")) if self.arrays.folder.is_dir() else 0
        return {"main": _size(self.path), "journal": self.journal_bytes(), "arrays": arrays,
                "temporary": sum(_size(p) for p in self._temporary_files())}

    def _temporary_files(self) -> list[Path]:
        found = [p for p in (self.path.with_name(self.path.name + ".compact"),
                             self.path.with_name(self.path.name + ".new")) if p.exists()]
        if self.journal_dir.is_dir():
            found += list(self.journal_dir.glob(".*.tmp"))
        if self.arrays.folder.is_dir():
            found += list(self.arrays.folder.glob(".*.tmp"))
        return found

    def array_refs(self, exclude: Callable[[str], bool] | None = None) -> dict[str, int]:
        """Array files referred to by records (main file and journal), with how many references each;
        records for which ``exclude(path)`` is true are not counted."""
        counts: dict[str, int] = {}

        def count(f: h5py.File, current: Callable[[str], bool]) -> None:
            def visit(name: str, obj: Any) -> None:
                if isinstance(obj, h5py.Dataset) and _EXTERNAL in obj.attrs:
                    rec = "/" + name.rsplit("/", 1)[0]
                    if current(rec) and not (exclude is not None and exclude(rec)):
                        ref = obj.attrs[_EXTERNAL]
                        ref = ref.decode() if isinstance(ref, bytes) else str(ref)
                        counts[ref] = counts.get(ref, 0) + 1
            f.visititems(visit)

        count(self._main_file(), lambda rec: rec not in self._journal)
        for entry in sorted(set(self._journal.values())):
            with _h5(entry) as f:
                count(f, lambda rec, entry=entry: self._journal.get(rec) == entry)
        return counts

    def rewrite(self, drop: Callable[[str], bool]) -> None:
        """Fold the journal, then write the main file afresh without the records (and groups) for which
        ``drop(path)`` is true: this is how records are deleted, and it also returns the space HDF5 does
        not reuse. Atomic like a fold. Array files are not touched (see :meth:`sweep`)."""
        if self.mode != "a":
            raise StoreError(f"{self.path} is open read-only")
        self.compact(force=True)
        self._close_handles()
        tmp = self.path.with_name(self.path.name + ".compact")

        def copy_tree(src: h5py.Group, dst: h5py.Group) -> None:
            for key, value in src.attrs.items():
                dst.attrs[key] = value
            for name in src:
                obj = src[name]
                path = obj.name
                if drop(path):
                    continue
                top = path.count("/") == 1  # top-level groups stay, even empty
                if isinstance(obj, h5py.Group) and (top or any(isinstance(c, h5py.Group) for c in obj.values())):
                    copy_tree(obj, dst.create_group(name))
                    if not top and not len(dst[name]) and not len(dst[name].attrs):
                        del dst[name]  # e.g. /preprocessed/<key> once all its images are dropped
                else:
                    src.copy(obj, dst, name=name)

        with _h5(self.path) as src, _h5(tmp, "w") as dst:
            copy_tree(src, dst)
        self._replace_main(tmp)

    def unreferenced(self, exclude: Callable[[str], bool] | None = None) -> list[Path]:
        """Array files no record refers to (also not records for which ``exclude(path)`` is true), and
        temporary files left by killed writers: what :meth:`sweep` deletes."""
        used = self.array_refs(exclude)
        found = [p for p in (self.arrays.folder.glob("*.npy") if self.arrays.folder.is_dir() else [])
                 if f"arrays/{p.name}" not in used]
        return found + self._temporary_files()

    def sweep(self) -> tuple[int, int]:
        """Delete what :meth:`unreferenced` lists; returns ``(files, bytes)``. Writers only (a reader's
        view may still refer to them, which is why only ``cryopick prune`` calls this)."""
        if self.mode != "a":
            raise StoreError(f"{self.path} is open read-only")
        doomed = self.unreferenced()
        total = sum(_size(p) for p in doomed)
        for p in doomed:
            p.unlink(missing_ok=True)
        if doomed:
            _fsync_dir(self.arrays.folder)
        return len(doomed), total

    def record_paths(self, prefix: str, depth: int) -> list[str]:
        """Record paths ``depth`` levels below ``prefix`` (e.g. ``("/preprocessed", 2)`` lists
        ``/preprocessed/<key>/<name>``)."""
        level = [prefix.rstrip("/")]
        for _ in range(depth):
            level = [f"{p}/{c}" for p in level for c in self.children(p)]
        return level


def records_paths(*parts: Iterable[str]) -> str:
    return "/" + "/".join(p.strip("/") for p in parts)
