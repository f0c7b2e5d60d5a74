"""``cryopick run``: the whole chain on user data or on the built-in demo, ending with a summary."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from cryopick import progress
from cryopick.config import build_config
from cryopick.errors import InputError
from cryopick.host import PluginHost, build_host
from cryopick.particles import Particles
from cryopick.pipeline import (
    Pipeline,
    RunOptions,
    expand_micrographs,
    import_labels,
    import_micrographs,
    open_project,
)
from cryopick.project import Project


def demo_labels(truth: dict[str, Particles], names: list[str], n_exemplars: int | None,
                seed: int) -> tuple[dict[str, Particles], list[str]]:
    """Labels the built-in demo gives a picker, and the micrographs held out for evaluation.

    Few-shot pickers (``n_exemplars``) get that many truth particles from the first micrograph; others get
    all truth on the first third of the micrographs. Evaluation uses the micrographs without labels.
    """
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
    picker_cls = host.pickers.load(opts.picker)
    build_config(picker_cls.Config, opts.settings, picker_cls.presets, owner=f"picker {opts.picker}")
    host.exporters.get(opts.format)
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
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
    else:
        paths = expand_micrographs(opts.micrographs)
    project_path = Path(opts.project) if opts.project else out / "project.h5"
    project = open_project(project_path, "a")
    try:
        return _run(project, opts, host, paths, diameter, truth_path, demo, out, start)
    finally:
        project.store.close()


def _run(project: Project, opts: RunOptions, host: PluginHost, paths: list[Path], diameter: str | None,
         truth_path: str | None, demo: bool, out: Path, start: float) -> dict[str, Any]:
    pipe = Pipeline(project, opts.picker, host, opts.settings, opts.device, opts.seed)
    names = import_micrographs(project, paths, opts.pixel_size_a)
    diameter_px = pipe.diameter_px(diameter)
    project.put_settings(diameter_px=diameter_px)
    truth = import_labels(project, truth_path, "truth", host, names) if truth_path else {}
    eval_names = names
    label_set = "train"
    if demo:
        labels, eval_names = demo_labels(truth, names, type(pipe.picker).demo_labels, opts.seed)
        label_set = f"demo-{type(pipe.picker).demo_labels or 'all'}"
        project.put_labels(label_set, labels, "demo truth")
    elif opts.labels:
        labels = import_labels(project, opts.labels, "train", host, names)
        held_out = [n for n in names if n not in labels]
        if truth and held_out:
            eval_names = held_out
    pipe.preprocess(diameter_px, names)
    pipe.train(diameter_px, names, label_set)
    run = pipe.score(diameter_px, names)
    picks = pipe.threshold(run, opts.threshold, opts.threshold_scope)

    t = time.perf_counter()
    files = export_picks(project, host, picks, out, opts.format, opts.per_micrograph, diameter_px)
    pipe.times["export"] = time.perf_counter() - t

    counts = np.array([len(picks[n]) for n in names])
    summary: dict[str, Any] = {
        "run": run, "picker": opts.picker, "project": str(project.store.path), "micrographs": len(names),
        "diameter_px": round(diameter_px, 2), "picks": int(counts.sum()),
        "picks_per_micrograph": {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())},
        "threshold": project.run_info(run).get("threshold"), "device": pipe.device,
        "resumed": dict(pipe.skipped), "times_s": {k: round(v, 2) for k, v in pipe.times.items()},
        "output": [str(f) for f in files],
    }
    if truth:
        from cryopick.metrics import evaluate

        eval_truth = {n: truth.get(n, Particles.empty()) for n in eval_names}
        ev = evaluate({n: picks[n] for n in eval_names}, eval_truth, diameter_px=diameter_px,
                      candidates={n: c for n, c in project.candidates(run).items() if n in eval_names},
                      method=opts.match, iou_threshold=opts.iou_threshold)
        summary["evaluation"] = {"micrographs": eval_names if len(eval_names) < 20 else len(eval_names),
                                 "match": opts.match, **_rounded(ev.to_dict())}
        project.store.put(f"/runs/{run}/metrics", metrics=ev.to_dict(), micrographs=eval_names)
    summary["times_s"]["total"] = round(time.perf_counter() - start, 2)
    project.put_run_info(run, summary=summary, status="done", updated=time.time())
    return summary


def export_picks(project: Project, host: PluginHost, picks: dict[str, Particles], out: Path, fmt: str,
                 per_micrograph: bool | None, diameter_px: float) -> list[Path]:
    """Write ``picks`` with exporter ``fmt``; every writer gets the same keywords (and ignores the rest)."""
    mics = project.micrographs()
    layout = {} if per_micrograph is None else {"per_micrograph": per_micrograph}
    return host.exporters.load(fmt)(
        picks, out, **layout, box_size=int(round(diameter_px)), shapes={n: tuple(m.shape) for n, m in mics.items()},
        micrograph_files={n: Path(m.path).name for n, m in mics.items()})


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
    resumed = {k: v for k, v in s.get("resumed", {}).items() if v}
    if resumed:
        lines.append("  resumed: " + ", ".join(f"{k} skipped {v}" for k, v in resumed.items()))
    if "evaluation" in s:
        e = s["evaluation"]
        held = e["micrographs"] if isinstance(e["micrographs"], int) else len(e["micrographs"])
        lines.append(
            f"  vs truth ({held} micrograph(s), {e['match']} matching): precision {e['precision']:.3f}  "
            f"recall {e['recall']:.3f}  F1 {e['f1']:.3f}  AP {e['average_precision']:.3f}  "
            f"(best F1 {e['best_f1']:.3f} at score {e['best_threshold']:.3g})")
    out = s["output"]
    lines.append(f"  wrote {len(out)} file(s): {out[0] if out else '-'}{' ...' if len(out) > 1 else ''}")
    lines.append(f"  project: {s['project']}")
    return "\n".join(lines)
