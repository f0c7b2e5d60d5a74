"""Domain operations on the project store: micrographs, preprocessed images, labels, models, runs.

All coordinates stored here are in original-micrograph pixels.
"""

from __future__ import annotations

import hashlib
import json
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
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


@attrs.define
class MicrographRecord:
    name: str
    path: str
    shape: tuple[int, int]
    pixel_size_a: float | None
    checksum: str


def particles_record(p: Particles, **attributes: Any) -> Record:
    return Record({"x": p.x, "y": p.y, "score": p.score}, attributes)


def record_particles(record: Record) -> Particles:
    a = record.arrays
    return Particles(a["x"], a["y"], a.get("score"))


class Project:
    """A project store seen through the nouns of particle picking."""

    def __init__(self, store: ProjectStore) -> None:
        self.store = store

    # micrographs ------------------------------------------------------------------------------------
    def add_micrograph(self, path: Path, pixel_size_a: float | None = None) -> tuple[MicrographRecord, bool]:
        """Register a micrograph; returns ``(record, added)``; unchanged files are not re-added."""
        from cryopick.io.micrographs import micrograph_name, read_micrograph_info

        info = read_micrograph_info(path, pixel_size_a=pixel_size_a)
        name = micrograph_name(path)
        checksum = file_checksum(Path(path))
        old = self.micrograph(name)
        if old is not None:
            if old.checksum == checksum and old.pixel_size_a == info.pixel_size_a:
                return old, False
            if Path(old.path).resolve() != Path(path).resolve() and old.checksum != checksum:
                raise InputError(
                    f"{path}: another micrograph named {name!r} ({old.path}) is already in the project; "
                    "micrographs are identified by file name, so rename one of them")
        rec = MicrographRecord(name, str(Path(path).resolve()), tuple(int(s) for s in info.shape),
                               info.pixel_size_a, checksum)
        self.store.put(f"/micrographs/{name}", path=rec.path, shape=list(rec.shape),
                       pixel_size_a=float(rec.pixel_size_a or 0.0), checksum=checksum)
        return rec, True

    def micrograph(self, name: str) -> MicrographRecord | None:
        r = self.store.get(f"/micrographs/{name}")
        if r is None:
            return None
        a = r.attrs
        return MicrographRecord(name, a["path"], tuple(a["shape"]), a["pixel_size_a"] or None, a["checksum"])

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
        self.store.put(f"/preprocessed/{key}/{name}", {"image": image.astype(np.float32)},
                       factor_x=float(factor[0]), factor_y=float(factor[1]), chain=chain)

    def has_preprocessed(self, key: str, name: str) -> bool:
        return self.store.has(f"/preprocessed/{key}/{name}")

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
        self.store.write({f"/runs/{run}/candidates/{name}": particles_record(candidates, seconds=seconds)})

    def has_candidates(self, run: str, name: str) -> bool:
        return self.store.has(f"/runs/{run}/candidates/{name}")

    def candidates(self, run: str) -> dict[str, Particles]:
        return {n: record_particles(self.store.get(f"/runs/{run}/candidates/{n}"))
                for n in self.store.children(f"/runs/{run}/candidates")}

    def put_picks(self, run: str, picks: dict[str, Particles], thresholds: dict[str, float], spec: str) -> None:
        records = {f"/runs/{run}/picks/{n}": particles_record(p, threshold=float(thresholds[n]), thresholder=spec)
                   for n, p in picks.items()}
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
