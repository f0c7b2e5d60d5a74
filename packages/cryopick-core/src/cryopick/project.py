"""Domain operations on the project store: micrographs, preprocessed images, labels, models, runs.

All coordinates stored here are in original-micrograph pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cryopick.errors import InputError
from cryopick.particles import Particles
from cryopick.picker import ModelState
from cryopick.store import ProjectStore, Record


def digest(obj: Any, n: int = 12) -> str:
    """A short stable hash of a JSON-serialisable object (for cache keys and run ids)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def file_checksum(path: Path, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@attrs.define
class MicrographRecord:
    """A micrograph of the project (``/micrographs/<name>``, see docs/store.md).

    ``source`` is ``"relion"`` or ``"cryosparc"`` for micrographs read from a RELION micrographs STAR or a
    cryoSPARC exposures ``.cs`` (empty otherwise); ``source_name`` is the name that list gives the
    micrograph (``rlnMicrographName`` / ``micrograph_blob/path``), ``source_uid`` and ``exp_group_id`` the
    cryoSPARC exposure's uid and group. Exporters write them back, so the other program recognises its
    micrographs.
    """

    name: str
    path: str
    shape: tuple[int, int]
    pixel_size_a: float | None
    checksum: str
    size: int = 0
    mtime_ns: int = 0
    source: str = ""
    source_name: str = ""
    source_uid: int | None = None
    exp_group_id: int | None = None


def _origin_attributes(origin) -> dict[str, Any]:
    """Store attributes for a :class:`cryopick.io.sources.MicrographSource` (the uid as decimal text: a
    cryoSPARC uid does not fit a signed 64-bit integer)."""
    if origin is None:
        return {}
    out: dict[str, Any] = {"source": origin.program, "source_name": origin.name}
    if origin.uid is not None:
        out["source_uid"] = str(int(origin.uid))
    if origin.exp_group_id is not None:
        out["exp_group_id"] = int(origin.exp_group_id)
    return out


def particles_record(p: Particles, **attributes: Any) -> Record:
    return Record({"x": p.x, "y": p.y, "score": p.score}, attributes)


def record_particles(record: Record) -> Particles:
    a = record.arrays
    return Particles(a["x"], a["y"], a.get("score"))


def _origin_attributes_of(rec: MicrographRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rec.source:
        out = {"source": rec.source, "source_name": rec.source_name}
        if rec.source_uid is not None:
            out["source_uid"] = str(rec.source_uid)
        if rec.exp_group_id is not None:
            out["exp_group_id"] = rec.exp_group_id
    return out


class Project:
    """A project store seen through the nouns of particle picking."""

    def __init__(self, store: ProjectStore) -> None:
        self.store = store

    # micrographs ------------------------------------------------------------------------------------
    def add_micrograph(self, path: Path, pixel_size_a: float | None = None,
                       origin=None) -> tuple[MicrographRecord, bool]:
        """Register a micrograph; returns ``(record, added)``; unchanged files are not re-added.

        ``origin`` (a :class:`cryopick.io.sources.MicrographSource`) records what a RELION or cryoSPARC
        micrograph list calls the file; its pixel size is used when ``pixel_size_a`` is None.

        A file already imported under the same path with the same size and modification time is taken
        as unchanged without reading it again; otherwise its SHA-256 decides (a touched but unchanged
        file only gets its size and time updated, which keeps its cached preprocessing valid).
        """
        from cryopick.io.micrographs import micrograph_name, read_micrograph_info

        name = micrograph_name(path)
        resolved = str(Path(path).resolve())
        st = os.stat(path)
        if pixel_size_a is None and origin is not None:
            pixel_size_a = origin.pixel_size_a
        info = read_micrograph_info(path, pixel_size_a=pixel_size_a)  # the header only
        old = self.micrograph(name)
        extra = _origin_attributes(origin)
        if old is not None and origin is None and old.source:  # re-imported as a plain file: keep the origin
            extra = {"source": old.source, "source_name": old.source_name}
            extra.update({"source_uid": str(old.source_uid)} if old.source_uid is not None else {})
            extra.update({"exp_group_id": old.exp_group_id} if old.exp_group_id is not None else {})
        same_origin = old is not None and _origin_attributes_of(old) == extra
        if old is not None and old.path == resolved and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns \
                and old.pixel_size_a == info.pixel_size_a and same_origin:
            return old, False  # same file, same size and time: not read again
        checksum = file_checksum(Path(path))
        if old is not None:
            if old.path != resolved and old.checksum != checksum:
                raise InputError(
                    f"{path}: another micrograph named {name!r} ({old.path}) is already in the project; "
                    "micrographs are identified by file name, so rename one of them")
        if origin is not None and origin.shape is not None and tuple(origin.shape) != tuple(info.shape):
            raise InputError(f"{path}: is {info.shape[1]} x {info.shape[0]} pixels but its micrograph list says "
                             f"{origin.shape[1]} x {origin.shape[0]}; is the list for other (binned) micrographs?")
        self.store.put(f"/micrographs/{name}", path=resolved, shape=[int(s) for s in info.shape],
                       pixel_size_a=float(info.pixel_size_a or 0.0), checksum=checksum, size=int(st.st_size),
                       mtime_ns=int(st.st_mtime_ns), **extra)
        rec = self.micrograph(name)
        unchanged = old is not None and old.checksum == checksum and old.pixel_size_a == rec.pixel_size_a
        return rec, not unchanged

    def micrograph(self, name: str) -> MicrographRecord | None:
        a = self.store.attributes(f"/micrographs/{name}")
        if a is None:
            return None
        uid = a.get("source_uid")
        group = a.get("exp_group_id")
        return MicrographRecord(name, a["path"], tuple(a["shape"]), a["pixel_size_a"] or None, a["checksum"],
                                int(a.get("size", 0)), int(a.get("mtime_ns", 0)), str(a.get("source", "")),
                                str(a.get("source_name", "")), int(uid) if uid not in (None, "") else None,
                                int(group) if group is not None else None)

    def micrographs(self) -> dict[str, MicrographRecord]:
        return {n: self.micrograph(n) for n in self.store.children("/micrographs")}

    def read_image(self, name: str) -> np.ndarray:
        from cryopick.io.micrographs import read_micrograph

        rec = self.micrograph(name)
        image, _ = read_micrograph(rec.path, pixel_size_a=rec.pixel_size_a)
        return np.asarray(image, dtype=np.float32)

    # preprocessed -----------------------------------------------------------------------------------
    def put_preprocessed(self, key: str, name: str, image: np.ndarray, factor: tuple[float, float],
                         chain: list) -> None:
        """Cache a preprocessed image (in an array file), valid for the micrograph's current checksum."""
        mic = self.micrograph(name)
        self.store.write({f"/preprocessed/{key}/{name}": Record(
            {"image": image.astype(np.float32)},
            {"factor_x": float(factor[0]), "factor_y": float(factor[1]), "chain": chain,
             "checksum": mic.checksum if mic else ""},
            external=True)})

    def has_preprocessed(self, key: str, name: str) -> bool:
        """Whether the chain ``key`` was applied to the micrograph as it is now (same checksum): the
        cache key of a preprocessed image is the chain and the micrograph's checksum."""
        return self._current(f"/preprocessed/{key}/{name}", name)

    def _current(self, record_path: str, name: str) -> bool:
        a = self.store.attributes(record_path)
        if a is None:
            return False
        mic = self.store.attributes(f"/micrographs/{name}")
        return mic is not None and a.get("checksum") == mic.get("checksum")

    def preprocessed(self, key: str, name: str) -> tuple[np.ndarray, tuple[float, float]]:
        r = self.store.get(f"/preprocessed/{key}/{name}")
        return r.arrays["image"], (r.attrs["factor_x"], r.attrs["factor_y"])

    # labels -----------------------------------------------------------------------------------------
    def put_labels(self, label_set: str, picks: dict[str, Particles], source: str) -> None:
        self.store.write({f"/labels/{label_set}/{name}": particles_record(p, source=source)
                          for name, p in picks.items()})

    def labels(self, label_set: str) -> dict[str, Particles]:
        return {n: record_particles(self.store.get(f"/labels/{label_set}/{n}"))
                for n in self.store.children(f"/labels/{label_set}")}

    # models -----------------------------------------------------------------------------------------
    def put_model(self, key: str, picker: str, state: ModelState, **attributes: Any) -> None:
        self.store.put(f"/models/{key}", state.arrays, picker=picker, config=state.config, **attributes)

    def model(self, key: str) -> ModelState | None:
        r = self.store.get(f"/models/{key}")
        return None if r is None else ModelState(r.arrays, r.attrs["config"])

    # runs -------------------------------------------------------------------------------------------
    def put_candidates(self, run: str, name: str, candidates: Particles, seconds: float) -> None:
        mic = self.micrograph(name)
        self.store.write({f"/runs/{run}/candidates/{name}": particles_record(
            candidates, seconds=seconds, checksum=mic.checksum if mic else "")})

    def has_candidates(self, run: str, name: str) -> bool:
        """Whether the run scored the micrograph as it is now (same checksum)."""
        return self._current(f"/runs/{run}/candidates/{name}", name)

    def candidates(self, run: str) -> dict[str, Particles]:
        return {n: record_particles(self.store.get(f"/runs/{run}/candidates/{n}"))
                for n in self.store.children(f"/runs/{run}/candidates")}

    def put_picks(self, run: str, picks: dict[str, Particles], thresholds: dict[str, float], spec: str) -> None:
        """Store a run's picks (one transaction). Micrographs whose picks are unchanged (same ``digest``
        attribute) are not written again: re-thresholding after one more micrograph writes that one."""
        records = {}
        for n, p in picks.items():
            h = hashlib.sha256(f"{float(thresholds[n])!r} {spec}".encode())
            for a in (p.x, p.y, p.score):
                h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
            path = f"/runs/{run}/picks/{n}"
            old = self.store.attributes(path)
            if old is not None and old.get("digest") == h.hexdigest()[:32]:
                continue
            records[path] = particles_record(p, threshold=float(thresholds[n]), thresholder=spec,
                                             digest=h.hexdigest()[:32])
        if records:
            self.store.write(records)

    def picks(self, run: str) -> dict[str, Particles]:
        return {n: record_particles(self.store.get(f"/runs/{run}/picks/{n}"))
                for n in self.store.children(f"/runs/{run}/picks")}

    def put_run_info(self, run: str, **attributes: Any) -> None:
        old = self.store.get(f"/runs/{run}/info")
        merged = dict(old.attrs) if old else {}
        merged.update(attributes)
        self.store.put(f"/runs/{run}/info", **merged)

    def run_info(self, run: str) -> dict[str, Any]:
        r = self.store.get(f"/runs/{run}/info")
        return dict(r.attrs) if r else {}

    def runs(self) -> list[str]:
        return self.store.children("/runs")

    def latest_run(self) -> str | None:
        infos = [(self.run_info(r).get("updated", ""), r) for r in self.runs()]
        return max(infos)[1] if infos else None

    def put_settings(self, **settings: Any) -> None:
        old = self.settings()
        old.update({k: v for k, v in settings.items() if v is not None})
        self.store.put("/settings", **old)

    def settings(self) -> dict[str, Any]:
        r = self.store.get("/settings")
        return dict(r.attrs) if r else {}

    # pruning ----------------------------------------------------------------------------------------
    def prune(self, keep_runs: int | None = None, dry_run: bool = False) -> PruneReport:
        """Drop runs beyond the ``keep_runs`` most recent (all kept when ``None``), then the models and
        preprocessed image sets no kept run uses, preprocessed images of micrographs that changed since,
        and array and temporary files nothing refers to; rewrite the main file without them.

        Labels, micrographs, settings and imported models (``cryopick import-model``: inputs, not caches)
        are never dropped. With ``dry_run`` nothing changes and the
        report's ``returned`` counts only the files that would be deleted (the main file shrinks too).
        """
        if keep_runs is not None and keep_runs < 0:
            raise InputError(f"--keep-runs {keep_runs}: give 0 or more")
        runs = sorted(self.runs(), key=lambda r: float(self.run_info(r).get("updated") or 0), reverse=True)
        kept = runs if keep_runs is None else runs[:keep_runs]
        infos = [self.run_info(r) for r in kept]
        models_used = {i.get("model") for i in infos} - {None}
        sets_used = {i.get("preprocessing") for i in infos} - {None}
        report = PruneReport(dry_run=dry_run)
        report.runs = [r for r in runs if r not in kept]
        report.models = [m for m in self.store.children("/models") if m not in models_used
                         and not (self.store.attributes(f"/models/{m}") or {}).get("imported_from")]
        report.preprocessed_sets = [k for k in self.store.children("/preprocessed") if k not in sets_used]
        report.preprocessed_images = sum(len(self.store.children(f"/preprocessed/{k}"))
                                         for k in report.preprocessed_sets)
        stale = {f"/preprocessed/{k}/{n}" for k in self.store.children("/preprocessed") if k in sets_used
                 for n in self.store.children(f"/preprocessed/{k}") if not self.has_preprocessed(k, n)}
        report.stale_images = len(stale)
        dropped = ({f"/runs/{r}" for r in report.runs} | {f"/models/{m}" for m in report.models}
                   | {f"/preprocessed/{k}" for k in report.preprocessed_sets} | stale)

        def drop(path: str) -> bool:
            return any(path == d or path.startswith(d + "/") for d in dropped)

        report.bytes_before = sum(self.store.disk_usage().values())
        if dry_run:
            doomed = self.store.unreferenced(exclude=drop)
            report.files = len(doomed)
            report.bytes_after = report.bytes_before - sum(p.stat().st_size for p in doomed if p.exists())
            return report
        self.store.rewrite(drop)
        report.files, _ = self.store.sweep()
        report.bytes_after = sum(self.store.disk_usage().values())
        return report


@attrs.define
class PruneReport:
    """What :meth:`Project.prune` dropped (or would drop, with ``dry_run``)."""

    dry_run: bool = False
    runs: list[str] = attrs.Factory(list)
    models: list[str] = attrs.Factory(list)
    preprocessed_sets: list[str] = attrs.Factory(list)
    preprocessed_images: int = 0
    stale_images: int = 0
    files: int = 0  # array and temporary files deleted
    bytes_before: int = 0
    bytes_after: int = 0

    @property
    def returned(self) -> int:
        return max(0, self.bytes_before - self.bytes_after)

    def to_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "returned": self.returned}
