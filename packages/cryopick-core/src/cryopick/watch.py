"""Streaming: pick micrographs as they appear in a folder while the microscope runs (``cryopick watch``).

A file counts as complete when its size and modification time have not changed for ``settle_s`` seconds
of watching, or, with ``done_marker``, when its marker file exists (``mic_001.mrc.done`` or
``mic_001.done`` for ``--done-marker .done``), for software or transfer scripts that write one. Each
complete micrograph is imported into the project, read, preprocessed and scored (in this process or on
Dask workers), cut with the thresholder per micrograph (the data set is not known yet) and written at once
as RELION's ``<name>_autopick.star`` in ``OUT/<run>/``. Candidates and picks go to the project store
first, so a restart skips every micrograph already scored (and rewrites a coordinate file lost in a
crash from the stored picks): nothing is picked twice.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cryopick import progress
from cryopick.errors import ConfigError, CryopickError, InputError
from cryopick.executor import ExecutorOptions, MicrographJob, MicrographResult, MicrographWorker, open_executor
from cryopick.particles import Particles


@attrs.define
class WatchOptions:
    """Everything ``cryopick watch`` takes (see ``cryopick watch --help``)."""

    folder: Path
    pattern: str = "*.mrc"
    picker: str = "dog"
    model: str | None = None
    project: Path | None = None
    out: Path = Path("cryopick-out")
    diameter: str | None = None
    pixel_size_a: float | None = None
    device: str = "auto"
    settings: dict[str, str] = attrs.Factory(dict)
    seed: int = 0
    threshold: str | None = None
    settle_s: float = 5.0
    done_marker: str | None = None
    poll_s: float = 2.0
    max_micrographs: int | None = None
    timeout_s: float | None = None
    once: bool = False
    executor: ExecutorOptions | None = None


class FolderWatcher:
    """The complete files of ``folder`` matching ``pattern`` that were not handed out before."""

    def __init__(self, folder: Path, pattern: str, settle_s: float, done_marker: str | None = None) -> None:
        self.folder = Path(folder)
        self.pattern = pattern
        self.settle_s = settle_s
        self.done_marker = done_marker
        self.observed: dict[Path, tuple[tuple[int, int], float]] = {}  # path -> ((size, mtime_ns), since)
        self.taken: set[Path] = set()

    def marked(self, path: Path) -> bool:
        marker = self.done_marker or ""
        return (path.parent / (path.name + marker)).exists() or (path.parent / (path.stem + marker)).exists()

    def scan(self, now: float | None = None) -> tuple[list[Path], int]:
        """``(complete, waiting)``: files complete now (sorted by name, not handed out before) and the
        number still being written (or waiting for their marker)."""
        now = time.monotonic() if now is None else now
        complete, waiting = [], 0
        for path in sorted(self.folder.glob(self.pattern)):
            if path in self.taken or not path.is_file():
                continue
            if self.done_marker is not None:
                if self.marked(path):
                    complete.append(path)
                else:
                    waiting += 1
                continue
            try:
                st = path.stat()
            except FileNotFoundError:  # renamed or removed between the listing and now
                continue
            key = (st.st_size, st.st_mtime_ns)
            seen = self.observed.get(path)
            if seen is None or seen[0] != key:
                self.observed[path] = (key, now)
                waiting += 1
            elif st.st_size > 0 and now - seen[1] >= self.settle_s:
                complete.append(path)
            else:
                waiting += 1
        return complete, waiting

    def take(self, path: Path) -> None:
        self.taken.add(path)
        self.observed.pop(path, None)


class _LocalQueue:
    """Micrographs processed in this process, one per call of :meth:`finished`."""

    def __init__(self, worker: MicrographWorker) -> None:
        self.worker = worker
        self.jobs: list[MicrographJob] = []

    def submit(self, job: MicrographJob) -> None:
        self.jobs.append(job)

    def __len__(self) -> int:
        return len(self.jobs)

    def finished(self, wait_s: float) -> list[tuple[MicrographJob, Any]]:
        if not self.jobs:
            return []
        job = self.jobs.pop(0)
        try:
            return [(job, self.worker.process(job))]
        except (CryopickError, OSError, ValueError) as exc:
            return [(job, exc)]


class _DaskQueue:
    """Micrographs on Dask workers; :meth:`finished` waits up to ``wait_s`` for the next to finish."""

    def __init__(self, executor, payload) -> None:
        self.executor = executor
        self.payload = payload
        self.futures: dict[Any, MicrographJob] = {}

    def submit(self, job: MicrographJob) -> None:
        self.futures[self.executor.submit(self.payload, job)] = job

    def __len__(self) -> int:
        return len(self.futures)

    def finished(self, wait_s: float) -> list[tuple[MicrographJob, Any]]:
        from distributed import wait

        if not self.futures:
            return []
        done, _ = wait(list(self.futures), timeout=wait_s, return_when="FIRST_COMPLETED") \
            if wait_s > 0 else ([f for f in self.futures if f.done()], None)
        out = []
        for future in sorted(done, key=lambda f: self.futures[f].name):
            job = self.futures.pop(future)
            try:
                result = self.executor.result(future, job)
            except CryopickError:
                raise
            except Exception as exc:  # a bad file: reported, the watch goes on
                out.append((job, exc))
                continue
            if result is None:  # the payload was lost with every worker that held it
                self.executor.forget(self.payload)
                self.submit(job)
            else:
                out.append((job, result))
            future.release()
        return out


def _wait_timeout(exc: Exception) -> bool:
    return isinstance(exc, TimeoutError) or type(exc).__name__ == "TimeoutError"


class Watch:
    """One ``cryopick watch`` session on an open project (see :func:`watch`)."""

    def __init__(self, opts: WatchOptions, project, host, report: Callable[[str], None]) -> None:
        from cryopick.pickers.build import make_picker
        from cryopick.stages.pick import parse_threshold

        self.opts, self.project, self.host, self.report = opts, project, host, report
        self.picker = make_picker(host, opts.picker, opts.settings, opts.device, opts.seed)
        self.model_key = self._load_model()
        self.spec = opts.threshold or self.picker.default_threshold
        name, params = parse_threshold(self.spec, host)
        self.thresholder = host.thresholders.load(name)(**params)
        self.run: str | None = None
        self.run_dir: Path | None = None
        self.payload = None
        self.d_pre: float | None = None
        self.counts: list[int] = []  # picks per micrograph picked in this session
        self.resumed = 0
        self.failed: list[dict[str, str]] = []
        self.start = time.monotonic()

    def _load_model(self) -> str | None:
        opts, project = self.opts, self.project
        if not self.picker.trainable:
            if opts.model:
                raise ConfigError(f"--model {opts.model}: picker {opts.picker!r} needs no trained model")
            return None
        key = opts.model
        if key is None:  # the project's one model of this picker
            ours = [k for k in project.store.children("/models")
                    if (project.store.attributes(f"/models/{k}") or {}).get("picker") == opts.picker]
            if not ours:
                raise InputError(f"picker {opts.picker!r} needs a trained model and {project.store.path} has none: "
                                 f"cryopick train -P {project.store.path} --picker {opts.picker} first")
            if len(ours) > 1:
                raise InputError(f"{project.store.path} holds {len(ours)} {opts.picker} models; choose one with "
                                 f"--model ({', '.join(ours)})")
            key = ours[0]
        state = project.model(key)
        if state is None:
            known = ", ".join(project.store.children("/models")) or "none"
            raise InputError(f"--model {key}: not in {project.store.path} (models: {known})")
        info = project.store.attributes(f"/models/{key}") or {}
        if info.get("picker") not in (None, opts.picker):
            raise InputError(f"--model {key} was trained with picker {info['picker']!r}, not {opts.picker!r}")
        if opts.diameter is None and info.get("diameter_px") and not project.settings().get("diameter_px"):
            project.put_settings(diameter_px=float(info["diameter_px"]))
        self.picker.load(state)
        self.report(f"watch: model {key}")
        return key

    # set up on the first micrograph: the pixel size and so the preprocessing chain are known from then on
    def _setup(self, first: str, executor) -> _LocalQueue | _DaskQueue:
        from cryopick.executor import job_for, payload_for
        from cryopick.stages import import_
        from cryopick.stages.export import run_output_dir
        from cryopick.stages.pick import package_versions, run_id
        from cryopick.stages.preprocess import picker_chain

        project, picker = self.project, self.picker
        pixel = self.opts.pixel_size_a or import_.project_pixel_size(project)
        diameter_px = import_.project_diameter(project, self.opts.diameter)
        project.put_settings(diameter_px=diameter_px)
        prep_key, chain = picker_chain(picker, diameter_px, pixel)
        self.run = run_id(picker, prep_key, self.model_key)
        self.run_dir = run_output_dir(self.opts.out, self.run)
        info = project.run_info(self.run)
        self.d_pre = info.get("diameter_pre_px")
        local = MicrographWorker.local(picker, chain, pixel)
        if self.d_pre is None:  # the preprocessed diameter, from the first micrograph's downsampling
            factor = local.process(job_for(project, first)).factor
            self.d_pre = diameter_px / ((factor[0] + factor[1]) / 2)
        from cryopick.config import config_to_dict

        project.put_run_info(self.run, picker=picker.context.name, config=config_to_dict(picker.config),
                             preprocessing=prep_key, model=self.model_key, diameter_px=diameter_px,
                             diameter_pre_px=float(self.d_pre), status="watching", updated=time.time(),
                             watch={"folder": str(Path(self.opts.folder).resolve()), "pattern": self.opts.pattern},
                             provenance={"versions": package_versions(), "device": picker.context.device,
                                         "seed": picker.context.seed})
        self.report(f"watch: run {self.run}, coordinates in {self.run_dir}")
        if executor is None:
            return _LocalQueue(local)
        self.payload = payload_for(picker, chain, pixel, project.model(self.model_key) if self.model_key else None,
                                   device=self.opts.device)
        return _DaskQueue(executor, self.payload)

    def star_path(self, name: str) -> Path:
        from cryopick.io.coords import file_stem

        return self.run_dir / f"{file_stem(name)}_autopick.star"

    def write_coordinates(self, name: str, picks: Particles) -> None:
        """``<name>_autopick.star`` in the run folder, written whole or not at all."""
        rec = self.project.micrograph(name)
        tmp = self.run_dir / ".writing"
        tmp.mkdir(parents=True, exist_ok=True)
        files = self.host.exporters.load("star")(
            {name: picks}, tmp, per_micrograph=True, box_size=int(round(self.project.settings()["diameter_px"])),
            shapes={name: tuple(rec.shape)}, micrograph_files={name: Path(rec.path).name})
        for f in files:
            target = self.run_dir / Path(f).relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(f, target)
        shutil.rmtree(tmp, ignore_errors=True)

    def cut(self, name: str, candidates: Particles) -> Particles:
        cutoff = self.thresholder.cutoff(candidates.score)
        picks = candidates.above(cutoff)
        self.project.put_picks(self.run, {name: picks}, {name: cutoff}, self.spec)
        return picks

    def store(self, result: MicrographResult) -> None:
        self.project.put_candidates(self.run, result.name, result.candidates, result.seconds)
        picks = self.cut(result.name, result.candidates)
        self.write_coordinates(result.name, picks)
        self.counts.append(len(picks))
        self.project.store.compact()
        minutes = (time.monotonic() - self.start) / 60
        self.report(f"watch: {result.name}: {len(picks)} picks | {len(self.counts)} micrograph(s) picked"
                    f"{f', {self.resumed} earlier' if self.resumed else ''}, "
                    f"{np.mean(self.counts):.1f} picks each, {len(self.counts) / max(minutes, 1e-9):.1f}/min")

    def resume(self, name: str) -> None:
        """A micrograph scored before: its coordinate file is rewritten from the store if it is missing."""
        from cryopick.project import record_particles

        self.resumed += 1
        if self.star_path(name).exists():
            return
        record = self.project.store.get(f"/runs/{self.run}/picks/{name}")
        picks = record_particles(record) if record is not None else \
            self.cut(name, record_particles(self.project.store.get(f"/runs/{self.run}/candidates/{name}")))
        self.write_coordinates(name, picks)

    def summary(self, status: str) -> dict[str, Any]:
        counts = np.array(self.counts or [0])
        minutes = (time.monotonic() - self.start) / 60
        return {"run": self.run, "picker": self.opts.picker, "model": self.model_key, "status": status,
                "micrographs": len(self.counts), "resumed": self.resumed, "failed": self.failed,
                "picks": int(counts.sum()) if self.counts else 0,
                "picks_per_micrograph": float(counts.mean()) if self.counts else 0.0,
                "micrographs_per_minute": round(len(self.counts) / max(minutes, 1e-9), 2),
                "minutes": round(minutes, 2), "threshold": self.spec, "output_dir": str(self.run_dir or "-"),
                "project": str(self.project.store.path)}

    def loop(self, executor) -> str:
        """Watch until a stop condition; returns why it stopped."""
        opts = self.opts
        watcher = FolderWatcher(opts.folder, opts.pattern, opts.settle_s, opts.done_marker)
        queue = None
        idle_since = time.monotonic()
        limit = opts.max_micrographs
        while True:
            progress.check_interrupted()
            complete, waiting = watcher.scan()
            for path in complete:
                if limit is not None and len(self.counts) + (len(queue) if queue else 0) >= limit:
                    break
                watcher.take(path)
                idle_since = time.monotonic()
                name = self.add(path)
                if name is None:
                    continue
                if queue is None:
                    queue = self._setup(name, executor)
                if self.project.has_candidates(self.run, name):
                    self.resume(name)
                    continue
                from cryopick.executor import job_for

                queue.submit(job_for(self.project, name, self.d_pre))
            wait_s = opts.poll_s if queue is not None and len(queue) and not complete else 0.0
            try:
                done = queue.finished(wait_s) if queue is not None else []
            except Exception as exc:
                if not _wait_timeout(exc):
                    raise
                done = []
            for job, result in done:
                idle_since = time.monotonic()
                if isinstance(result, Exception):
                    self.fail(job.path, f"{type(result).__name__}: {result}")
                else:
                    self.store(result)
            pending = len(queue) if queue is not None else 0
            if limit is not None and len(self.counts) >= limit:
                return f"--max-micrographs {limit} reached"
            # --once: files still being written are waited for; files without their marker are not there yet
            if opts.once and not pending and not complete and (not waiting or opts.done_marker is not None):
                return "--once: every micrograph there is done"
            if opts.timeout_s is not None and not pending and time.monotonic() - idle_since >= opts.timeout_s:
                return f"no new micrograph for {opts.timeout_s:g} s (--timeout)"
            if not done and not pending:
                _sleep(min(opts.poll_s, opts.settle_s) if waiting else opts.poll_s)

    def add(self, path: Path) -> str | None:
        """Import ``path`` into the project; ``None`` (reported) when it is not a usable micrograph."""
        from cryopick.io.micrographs import validate_micrographs

        good, bad = validate_micrographs([path], self.opts.pixel_size_a)
        if bad:
            self.fail(path, bad[0][1])
            return None
        try:
            rec, _ = self.project.add_micrograph(path, self.opts.pixel_size_a)
        except InputError as exc:
            self.fail(path, str(exc))
            return None
        return rec.name

    def fail(self, path, reason: str) -> None:
        self.failed.append({"path": str(path), "reason": reason})
        self.report(f"watch: skipped {path}: {reason}")


def _sleep(seconds: float) -> None:
    """Sleep in short steps, so that Ctrl-C ends the wait at once."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.2))
        progress.check_interrupted()


def watch(opts: WatchOptions, host=None, report: Callable[[str], None] = progress.echo) -> dict[str, Any]:
    """Pick micrographs as they appear in ``opts.folder`` until a stop condition (``max_micrographs``,
    ``timeout_s`` idle, ``once``) or Ctrl-C; returns the summary (also stored in the run's info).

    Raises
    ------
    KeyboardInterrupt
        On Ctrl-C, after storing what was finished (the summary says ``interrupted``); rerunning the same
        command resumes.
    """
    from cryopick.fsutil import ensure_writable_dir, ensure_writable_file
    from cryopick.host import build_host
    from cryopick.pickers.build import picker_config
    from cryopick.pipeline import open_project

    host = host or build_host()
    folder = Path(opts.folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder to watch")
    picker_config(host, opts.picker, opts.settings)  # fail fast on a bad picker or setting
    if opts.executor is not None:
        opts.executor.check()
    for name, value in (("--settle", opts.settle_s), ("--poll", opts.poll_s)):
        if not value >= 0:
            raise ConfigError(f"{name} {value}: must be 0 or more seconds")
    out = ensure_writable_dir(opts.out, "--out")
    project_path = ensure_writable_file(Path(opts.project) if opts.project else out / "project.h5", "--project")
    project = open_project(project_path, "a")
    try:
        session = Watch(opts, project, host, report)
        with open_executor(opts.executor) as executor:
            try:
                why = session.loop(executor)
            except KeyboardInterrupt:
                if session.run:
                    project.put_run_info(session.run, watch_summary=session.summary("interrupted"),
                                         status="interrupted", updated=time.time())
                raise
        summary = session.summary("stopped: " + why)
        if session.run:
            project.put_run_info(session.run, watch_summary=summary, status="watched", updated=time.time())
        project.store.compact(force=True)
        return summary
    finally:
        project.store.close()


def format_watch_summary(s: dict[str, Any]) -> str:
    lines = [f"cryopick watch {s['run'] or '-'}: {s['status']}",
             f"  micrographs: {s['micrographs']} picked ({s['picks']} picks, {s['picks_per_micrograph']:.1f} each, "
             f"{s['micrographs_per_minute']:.1f} per minute)"
             + (f", {s['resumed']} done earlier" if s["resumed"] else "")
             + (f", {len(s['failed'])} skipped" if s["failed"] else ""),
             f"  coordinates: {s['output_dir']} (<micrograph>_autopick.star), threshold {s['threshold']}",
             f"  project: {s['project']}"]
    return "\n".join(lines)
