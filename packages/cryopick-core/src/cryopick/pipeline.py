"""The chain of stages behind ``cryopick run`` (and ``cryopick pick``), on one project store.

The stages themselves live in :mod:`cryopick.stages`, one module each; this module only chains them,
times them and summarises the run. Each stage reads its inputs from the store and writes its outputs
there, keyed by what they depend on, so a rerun of the same command skips what is already done (resume
after a crash), and a changed setting recomputes only the stages it affects.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from cryopick import progress
from cryopick.errors import InputError
from cryopick.fsutil import ensure_writable_dir, ensure_writable_file
from cryopick.host import PluginHost, build_host
from cryopick.particles import Particles
from cryopick.pickers.build import make_picker, picker_config
from cryopick.project import Project
from cryopick.stages import evaluate as evaluate_stage, export as export_stage, import_, pick, preprocess, train
from cryopick.store import ProjectStore


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
    relion_project: Path | None = None
    cryosparc_project: Path | None = None
    executor: Any = None  # cryopick.executor.ExecutorOptions; None = local


@attrs.define
class StageLog:
    """Seconds spent and micrographs skipped (resumed) per stage."""

    times: dict[str, float] = attrs.Factory(dict)
    skipped: dict[str, int] = attrs.Factory(dict)

    @contextmanager
    def timed(self, stage: str):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.times[stage] = self.times.get(stage, 0.0) + time.perf_counter() - t


@attrs.frozen
class PickOutcome:
    """What :func:`pick_micrographs` produced: store keys and the picks."""

    preprocessing: str
    model: str | None
    run: str
    picks: dict[str, Particles]
    threshold: str


def open_project(path: Path, mode: str = "a") -> Project:
    if mode == "a":
        ensure_writable_file(path, "project")
    return Project(ProjectStore(path, mode))


def pick_micrographs(project: Project, picker, diameter_px: float, names: list[str], label_set: str = "train",
                     threshold: str | None = None, threshold_scope: str | None = None,
                     log: StageLog | None = None, executor=None, model: str | None = None) -> PickOutcome:
    """preprocess -> train -> score -> threshold on ``names``; each stage gets the keys the previous one
    returned. The threshold defaults to the picker's own (read after training: a trained model may
    calibrate it). With a Dask ``executor`` (:func:`cryopick.executor.open_executor`) preprocessing and
    scoring run on its workers; training stays in this process. ``model`` (a stored model ID, e.g. from
    ``cryopick import-model``) is loaded instead of training."""
    log = log if log is not None else StageLog()
    host = picker.context.plugin_host()
    # On Dask workers an untrained picker preprocesses and scores each micrograph in one task, and the
    # preprocessed images (needed only for training) are not sent back to be cached; only the first is
    # preprocessed alone: its downsampling gives the particle diameter in preprocessed pixels.
    fused = executor is not None and not picker.trainable
    with log.timed("preprocess"):
        prep = preprocess.preprocess(project, picker, diameter_px, names[:1] if fused else names, executor)
    log.skipped["preprocess"] = prep.skipped
    with log.timed("train"):
        if model is not None:
            model = train.use_model(project, picker, model)
        else:
            model = train.train(project, picker, prep.key, diameter_px, names, label_set)
    if model.key:
        log.skipped["train"] = int(model.reused)
    with log.timed("score"):
        scored = pick.score(project, picker, prep.key, model.key, diameter_px, names, label_set, executor)
    log.skipped["score"] = scored.skipped
    with log.timed("threshold"):
        cut = pick.threshold(project, host, scored.run, threshold or picker.default_threshold, threshold_scope)
    return PickOutcome(prep.key, model.key, scored.run, cut.picks, cut.spec)


def demo_labels(truth: dict[str, Particles], names: list[str], n_exemplars: int | None,
                seed: int) -> tuple[dict[str, Particles], list[str]]:
    """Labels the built-in demo gives a picker, and the micrographs held out for evaluation.

    Few-shot pickers (``n_exemplars``) get that many truth particles from the first micrograph; others get
    all truth on the first third of the micrographs; ``n_exemplars = 0`` (zero-shot pickers) gets no labels
    and is evaluated on every micrograph. Evaluation uses the micrographs without labels.
    """
    if n_exemplars == 0:
        return {}, list(names)
    rng = np.random.default_rng(seed)
    if n_exemplars:
        first = names[0]
        t = truth[first]
        keep = np.sort(rng.choice(len(t), size=min(n_exemplars, len(t)), replace=False))
        return {first: t.subset(keep)}, names[1:]
    n_train = max(1, len(names) // 3)
    return {n: truth[n] for n in names[:n_train]}, names[n_train:]


def run_pipeline(opts: RunOptions, host: PluginHost | None = None) -> dict[str, Any]:
    """Run the chain and return the summary (also stored in the run's info record)."""
    start = time.perf_counter()
    host = host or build_host()
    # fail fast on an unknown picker, format or setting, before any work
    picker_config(host, opts.picker, opts.settings)
    host.exporters.get(opts.format)
    if opts.executor is not None:
        opts.executor.check()
    out = ensure_writable_dir(opts.out, "--out")  # before any work: not after the whole pick
    demo = opts.micrographs is None
    diameter = opts.diameter
    truth_path = opts.truth
    if demo:
        from cryopick.simulate import make_demo

        if opts.labels:
            raise InputError("--labels needs --micrographs (the demo brings its own labels)")
        data = make_demo(out / "demo")
        paths = list(data.micrographs)
        truth_path = str(data.truth)
        diameter = diameter or str(data.config.diameter_px)
        progress.echo(f"demo: {len(paths)} simulated micrographs with known particles in {out / 'demo'}")
    origins: dict = {}
    if not demo:
        paths, origins = import_.micrograph_inputs(opts.micrographs, opts.relion_project, opts.cryosparc_project)
    project_path = ensure_writable_file(Path(opts.project) if opts.project else out / "project.h5", "--project")
    from cryopick.executor import open_executor

    project = open_project(project_path, "a")
    try:
        with open_executor(opts.executor) as executor:
            return _run(project, opts, host, paths, diameter, truth_path, demo, out, start, executor,
                        origins=origins)
    finally:
        project.store.close()


def _run(project: Project, opts: RunOptions, host: PluginHost, paths: list[Path], diameter: str | None,
         truth_path: str | None, demo: bool, out: Path, start: float, executor=None,
         origins: dict | None = None) -> dict[str, Any]:
    log = StageLog()
    picker = make_picker(host, opts.picker, opts.settings, opts.device, opts.seed)
    with log.timed("import"):
        skipped: list[dict] = []
        names = import_.import_micrographs(project, paths, opts.pixel_size_a, skipped, origins)
        if origins:
            import_.remember_sources(project, opts.micrographs, origins)
        diameter_px = import_.project_diameter(project, diameter)
        project.put_settings(diameter_px=diameter_px)
        truth = (import_.import_labels(project, truth_path, "truth", host, names, opts.relion_project)
                 if truth_path else {})
        eval_names = names
        label_set = "train"
        own = getattr(picker, "label_set", None)  # a label set the picker trains on when the run brings none
        if own and not opts.labels and project.labels(own):
            label_set = own
        elif demo:
            n_demo = picker.demo_labels  # the instance's: a picker may decide by its settings
            labels, eval_names = demo_labels(truth, names, n_demo, opts.seed)
            label_set = f"demo-{'all' if n_demo is None else n_demo}"
            project.put_labels(label_set, labels, "demo truth")
        elif opts.labels:
            labels = import_.import_labels(project, opts.labels, "train", host, names, opts.relion_project)
            held_out = [n for n in names if n not in labels]
            if truth and held_out:
                eval_names = held_out
    outcome = pick_micrographs(project, picker, diameter_px, names, label_set, opts.threshold,
                               opts.threshold_scope, log, executor)
    picks = outcome.picks
    run = outcome.run
    run_out = export_stage.run_output_dir(out, run)
    with log.timed("export"):
        files = export_stage.export_picks(project, host, picks, run_out, opts.format, opts.per_micrograph,
                                          diameter_px)

    counts = np.array([len(picks[n]) for n in names])
    summary: dict[str, Any] = {
        "run": run, "picker": opts.picker, "project": str(project.store.path), "micrographs": len(names),
        "diameter_px": round(diameter_px, 2), "picks": int(counts.sum()),
        "picks_per_micrograph": {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())},
        "threshold": outcome.threshold, "device": picker.context.device,
        "resumed": dict(log.skipped), "times_s": {},
        "output_dir": str(run_out), "output": [str(f) for f in files], "skipped": skipped,
        "model": picker.facts(),
    }
    if truth:
        with log.timed("evaluate"):
            result = evaluate_stage.evaluate_run(project, run, truth, diameter_px, names=eval_names,
                                                 include_labelled=True, match=opts.match,
                                                 iou_threshold=opts.iou_threshold)
        summary["evaluation"] = {"micrographs": eval_names if len(eval_names) < 20 else len(eval_names),
                                 "excluded_labelled": len(names) - len(eval_names),
                                 "match": opts.match, **_rounded(result.evaluation.to_dict())}
    summary["times_s"] = {k: round(v, 2) for k, v in log.times.items()}
    summary["times_s"]["total"] = round(time.perf_counter() - start, 2)
    project.put_run_info(run, summary=summary, status="done", updated=time.time())
    return summary


def _rounded(d: dict) -> dict:
    keep = ("precision", "recall", "f1", "average_precision", "best_f1", "best_threshold", "auroc",
            "n_picks", "n_truth", "n_tp")
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items() if k in keep}


def format_summary(s: dict[str, Any]) -> str:
    ppm = s["picks_per_micrograph"]
    lines = [
        f"cryopick run {s['run']}: picker {s['picker']} on {s['micrographs']} micrograph(s), "
        f"diameter {s['diameter_px']} px, threshold {s['threshold']}, device {s['device']}",
        f"  picks: {s['picks']} ({ppm['mean']:.1f} per micrograph, min {ppm['min']}, max {ppm['max']})",
        "  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in s["times_s"].items()),
    ]
    if s.get("skipped"):
        from cryopick.io.micrographs import skipped_summary

        bad = [(d["path"], d["reason"]) for d in s["skipped"]]
        lines.append("  " + skipped_summary(bad, s["micrographs"] + len(bad)))
    if s.get("model"):
        lines.append("  model: " + ", ".join(f"{k} {v}" for k, v in s["model"].items()))
    resumed = {k: v for k, v in s.get("resumed", {}).items() if v}
    if resumed:
        lines.append("  resumed: " + ", ".join(f"{k} skipped {v}" for k, v in resumed.items()))
    if "evaluation" in s:
        e = s["evaluation"]
        held = e["micrographs"] if isinstance(e["micrographs"], int) else len(e["micrographs"])
        excluded = f", excluding {e['excluded_labelled']} labelled" if e.get("excluded_labelled") else ""
        lines.append(
            f"  vs truth ({held} micrograph(s){excluded}, {e['match']} matching): precision {e['precision']:.3f}  "
            f"recall {e['recall']:.3f}  F1 {e['f1']:.3f}  AP {e['average_precision']:.3f}  "
            f"(best F1 {e['best_f1']:.3f} at score {e['best_threshold']:.3g})")
    out = s["output"]
    lines.append(f"  wrote {len(out)} file(s) to {s.get('output_dir', '-')}: "
                 f"{out[0] if out else '-'}{' ...' if len(out) > 1 else ''}")
    lines.append(f"  project: {s['project']}")
    return "\n".join(lines)
