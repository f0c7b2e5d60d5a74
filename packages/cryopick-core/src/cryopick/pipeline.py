"""The picking pipeline: import -> preprocess -> train -> score -> threshold -> export -> evaluate.

Each stage reads its inputs from the project store and writes its outputs there, keyed by what they
depend on, so a rerun of the same command skips what is already done (resume after a crash), and a
changed setting recomputes only the stages it affects. ``cryopick run`` calls :meth:`Pipeline.run`;
the single-stage commands call the stage methods.
"""

from __future__ import annotations

import glob
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cryopick import progress
from cryopick.config import build_config, config_to_dict, parse_diameter
from cryopick.errors import ConfigError, InputError
from cryopick.host import PluginHost, build_host
from cryopick.particles import Particles
from cryopick.picker import Picker, PickerContext, TrainingData, TrainingItem
from cryopick.preprocess import apply_chain
from cryopick.project import Project, digest
from cryopick.store import ProjectStore

#: Thresholders applied per micrograph by default (others across the whole dataset).
PER_MICROGRAPH = {"density", "topk"}


@attrs.define
class RunOptions:
    """Everything ``cryopick run`` takes (see ``cryopick run --help``)."""

    picker: str = "dog"
    micrographs: str | None = None
    labels: str | None = None
    truth: str | None = None
    diameter: str | None = None
    pixel_size_a: float | None = None
    project: Path | None = None
    out: Path = Path("cryopick-out")
    format: str = "star"
    per_micrograph: bool | None = None
    device: str = "auto"
    settings: dict[str, str] = attrs.Factory(dict)
    threshold: str | None = None
    threshold_scope: str | None = None
    seed: int = 0
    match: str = "iou"
    iou_threshold: float = 0.5


def parse_threshold(spec: str) -> tuple[str, dict]:
    """``"fixed:0.5"`` -> ``("fixed", {"value": 0.5})``; ``"topk:100"``, ``"density:20"``, ``"otsu"``."""
    name, _, value = spec.partition(":")
    params: dict[str, Any] = {}
    if value:
        key = {"fixed": "value", "topk": "k", "density": "k", "otsu": "bins"}.get(name, "value")
        try:
            params[key] = float(value) if key == "value" else int(value)
        except ValueError:
            raise ConfigError(f"--threshold {spec}: {value!r} is not a number") from None
    return name, params


def expand_micrographs(pattern: str) -> list[Path]:
    paths = sorted(Path(p) for p in glob.glob(pattern, recursive=True))
    if not paths and Path(pattern).is_dir():
        paths = sorted(p for p in Path(pattern).iterdir()
                       if p.suffix.lower() in (".mrc", ".mrcs", ".tif", ".tiff", ".png", ".jpg", ".jpeg"))
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise InputError(f"--micrographs {pattern!r} matches no files; quote the pattern, e.g. 'data/*.mrc'")
    return paths


def package_versions() -> dict[str, str]:
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"] or ""
        if name.startswith("cryopick") or name in ("torch", "numpy", "h5py", "scipy"):
            out[name] = dist.version
    return out


class Pipeline:
    """One picker on one project store."""

    def __init__(self, project: Project, picker_name: str, host: PluginHost | None = None,
                 settings: dict[str, str] | None = None, device: str = "auto", seed: int = 0) -> None:
        self.project = project
        self.host = host or build_host()
        self.picker_name = picker_name
        entry = self.host.pickers.get(picker_name)
        cls: type[Picker] = self.host.pickers.load(picker_name)
        self.device = "cpu"
        if getattr(entry, "requires_torch", False):
            from cryopick.torchutil import resolve_device

            try:
                import torch  # noqa: F401
            except ImportError as exc:
                raise ConfigError(f"picker {picker_name!r} needs torch: pip install torch") from exc
            self.device = resolve_device(device)
        settings = dict(settings or {})
        if "preset" not in settings:
            preset = cls.default_preset(self.device)
            if preset:
                settings["preset"] = preset
        self.config = build_config(cls.Config, settings, cls.presets, owner=f"picker {picker_name}")
        self.picker: Picker = cls(self.config, PickerContext(device=self.device, seed=seed, host=self.host))
        self.seed = seed
        self.times: dict[str, float] = {}
        self.skipped: dict[str, int] = {}

    # -- helpers ------------------------------------------------------------------------------------
    def _timed(self, stage: str, start: float) -> None:
        self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - start

    def diameter_px(self, diameter: str | float | None) -> float:
        mics = self.project.micrographs()
        pixel = next((m.pixel_size_a for m in mics.values() if m.pixel_size_a), None)
        if diameter is None:
            stored = self.project.settings().get("diameter_px")
            if stored:
                return float(stored)
            raise ConfigError("--diameter is required (pixels, e.g. 40, or Ångström, e.g. 150A)")
        return parse_diameter(diameter, pixel)

    # -- stages ---------------------------------------------------------------------------------------
    def preprocess(self, diameter_px: float, names: list[str]) -> str:
        t = time.perf_counter()
        mics = self.project.micrographs()
        pixel = next((m.pixel_size_a for m in mics.values() if m.pixel_size_a), None)
        chain = self.picker.preprocessing(diameter_px, pixel)
        key = digest(chain)
        steps = []
        for name, params in chain:
            factory = self.host.preprocessors.load(name)
            if name == "downsample":
                params = {"pixel_size_a": pixel, **params}
            steps.append(factory(**params))
        todo = [n for n in names if not self.project.has_preprocessed(key, n)]
        self.skipped["preprocess"] = len(names) - len(todo)
        for name in progress.progress(todo, "preprocess"):
            result = apply_chain(self.project.read_image(name), steps)
            self.project.put_preprocessed(key, name, result.image, result.factor, chain)
        self.project.store.compact()
        self._timed("preprocess", t)
        self.prep_key = key
        return key

    def factor(self, name: str) -> tuple[float, float]:
        return self.project.preprocessed(self.prep_key, name)[1]

    def preprocessed_diameter(self, diameter_px: float, names: list[str]) -> float:
        fx, fy = self.factor(names[0])
        return diameter_px / ((fx + fy) / 2)

    def train(self, diameter_px: float, names: list[str], label_set: str = "train") -> str | None:
        """Train (or load the stored model trained on the same inputs); returns the model key."""
        if not self.picker.trainable:
            self.model_key = None
            return None
        t = time.perf_counter()
        labels = self.project.labels(label_set)
        label_digest = digest({n: [p.x.round(2).tolist(), p.y.round(2).tolist()] for n, p in sorted(labels.items())})
        key = f"{self.picker_name}-" + digest([self.picker_name, config_to_dict(self.config), self.prep_key,
                                               label_digest, self.seed, sorted(names)])
        state = self.project.model(key)
        if state is not None:
            progress.echo(f"train: using the model trained earlier ({key})")
            self.picker.load(state)
            self.skipped["train"] = 1
        else:
            items, unlabelled = [], []
            for name in names:
                image, factor = self.project.preprocessed(self.prep_key, name)
                if name in labels:
                    items.append(TrainingItem(name, image, labels[name].scaled(factor)))
                else:
                    unlabelled.append(TrainingItem(name, image, None))
            if not items and self.picker.needs_labels:
                raise InputError(f"picker {self.picker_name!r} needs labelled particles: give --labels FILE "
                                 "(STAR, .box, Topaz .txt, CSV or cryoSPARC .cs)")
            data = TrainingData(items, self.preprocessed_diameter(diameter_px, names), unlabelled)
            state = self.picker.train(data)
            if state is not None:
                self.project.put_model(key, self.picker_name, state, labels=label_set,
                                       preprocessing=self.prep_key)
                self.project.store.compact()
        self.model_key = key
        self._timed("train", t)
        return key

    def run_id(self) -> str:
        return f"{self.picker_name}-" + digest([self.picker_name, config_to_dict(self.config), self.prep_key,
                                                getattr(self, "model_key", None)], 8)

    def score(self, diameter_px: float, names: list[str]) -> str:
        t = time.perf_counter()
        run = self.run_id()
        mics = self.project.micrographs()
        d_pre = self.preprocessed_diameter(diameter_px, names)
        todo = [n for n in names if not self.project.has_candidates(run, n)]
        self.skipped["score"] = len(names) - len(todo)
        if self.skipped["score"]:
            progress.echo(f"score: resuming run {run}, {self.skipped['score']} micrograph(s) already done")
        self.project.put_run_info(run, picker=self.picker_name, config=config_to_dict(self.config),
                                  preprocessing=self.prep_key, model=getattr(self, "model_key", None),
                                  diameter_px=diameter_px, status="scoring", updated=time.time(),
                                  provenance={"versions": package_versions(), "python": platform.python_version(),
                                              "machine": platform.machine(), "device": self.device,
                                              "seed": self.seed})
        for name in progress.progress(todo, "score"):
            t0 = time.perf_counter()
            image, factor = self.project.preprocessed(self.prep_key, name)
            cands = self.picker.score(image, d_pre)
            cands = cands.scaled((1.0 / factor[0], 1.0 / factor[1]))
            cands = cands.subset(cands.inside(mics[name].shape))
            self.project.put_candidates(run, name, cands, time.perf_counter() - t0)
        self.project.put_run_info(run, status="scored", updated=time.time())
        self.project.store.compact()
        self._timed("score", t)
        self.run = run
        return run

    def threshold(self, run: str, spec: str | None, scope: str | None) -> dict[str, Particles]:
        t = time.perf_counter()
        spec = spec or self.picker.default_threshold
        name, params = parse_threshold(spec)
        thresholder = self.host.thresholders.load(name)(**params)
        scope = scope or ("micrograph" if name in PER_MICROGRAPH else "dataset")
        if scope not in ("micrograph", "dataset"):
            raise ConfigError(f"--threshold-scope {scope}: use micrograph or dataset")
        cands = self.project.candidates(run)
        if scope == "dataset":
            all_scores = np.concatenate([c.score for c in cands.values()]) if cands else np.zeros(0)
            cut = thresholder.cutoff(all_scores)
            cutoffs = {n: cut for n in cands}
        else:
            cutoffs = {n: thresholder.cutoff(c.score) for n, c in cands.items()}
        picks = {n: c.above(cutoffs[n]) for n, c in cands.items()}
        self.project.put_picks(run, picks, cutoffs, spec)
        self.project.put_run_info(run, threshold=spec, threshold_scope=scope, status="picked", updated=time.time())
        self._timed("threshold", t)
        return picks


def import_micrographs(project: Project, paths: list[Path], pixel_size_a: float | None) -> list[str]:
    names, added = [], 0
    for path in progress.progress(paths, "import"):
        rec, new = project.add_micrograph(path, pixel_size_a)
        names.append(rec.name)
        added += new
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"several micrographs share the name(s) {', '.join(dup)}; names must be unique")
    return names


def import_labels(project: Project, path: str | Path, label_set: str, host: PluginHost,
                  names: list[str] | None = None) -> dict[str, Particles]:
    """Read a coordinate file, match its micrograph names to the project's, check coordinates lie inside
    the micrographs, and store it as ``label_set``."""
    from cryopick.io.coords import check_inside
    from cryopick.io.names import match_names

    raw = read_labels_file(path, host)
    mics = project.micrographs()
    known = names if names is not None else list(mics)
    mapping, unmatched = match_names(list(raw), known)
    if not mapping:
        raise InputError(f"{path}: none of its {len(raw)} micrograph name(s) (e.g. {next(iter(raw), '-')!r}) "
                         f"match the imported micrographs (e.g. {known[0] if known else '-'!r})")
    if unmatched:
        progress.echo(f"warning: {path}: {len(unmatched)} micrograph name(s) match no imported micrograph, "
                      f"ignored: {', '.join(unmatched[:5])}{' ...' if len(unmatched) > 5 else ''}")
    picks: dict[str, Particles] = {}
    for file_name, name in mapping.items():
        picks[name] = Particles.concat([picks[name], raw[file_name]]) if name in picks else raw[file_name]
    check_inside(picks, {n: tuple(mics[n].shape) for n in picks}, str(path))
    project.put_labels(label_set, picks, str(path))
    return picks


def read_labels_file(path: str | Path, host: PluginHost) -> dict[str, Particles]:
    """Read coordinates with the importer registered for the file's suffix (plugins can add formats);
    core formats and folders go through :func:`cryopick.io.coords.read_coordinates`."""
    from cryopick.io.coords import read_coordinates

    suffix = Path(path).suffix.lower()
    for reg in host.importers.items():
        if suffix and suffix in reg.entry.suffixes and reg.distribution != "cryopick-core":
            return host.importers.load(reg.entry.name)(path)
    return read_coordinates(path)


def open_project(path: Path, mode: str = "a") -> Project:
    return Project(ProjectStore(path, mode))
