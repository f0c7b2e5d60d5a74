"""Benchmark harness: run pickers on a simulator suite and on real data sets, print one table, write JSON.

Every picker runs through the public CLI in a subprocess (``python -m cryopick.cli.main run ... --json``), so the
numbers are what a user gets, and peak memory is that of the picker's own process (``/usr/bin/time -v`` when
available, else ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, a running maximum over all children so far).

Protocol (per data set): the labels given to a picker are the truth of the first third of the micrographs
(at least one), or, for few-shot pickers (``--exemplars N``, or a picker class with ``demo_labels``, e.g. mae),
``N`` truth particles drawn from the first micrograph. ``cryopick run`` then evaluates on the micrographs without
labels (held-out), with IoU >= 0.5 box matching by default (``--match distance`` for Topaz-style matching).

Examples::

    python benchmarks/harness.py --pickers dog                    # sim suite (3 species) + real sets
    python benchmarks/harness.py --pickers dog,topaz,mae --quick  # small and fast
    python benchmarks/harness.py --pickers topaz --set topaz:epochs=5 --no-real --species all
    python benchmarks/harness.py --pickers dog --json-out bench.json

Peer programs: when the ``topaz`` executable (the ``topaz-em`` package) is on PATH, ``--peers topaz-em`` (the
default) also runs ``topaz preprocess/train/extract`` on the same data and labels and scores its picks with
:func:`cryopick.metrics.evaluate`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_REAL = REPO.parent / "shared" / "data" / "real"
DEFAULT_SPECIES = ("globular", "small", "asymmetric")
TIME_BIN = "/usr/bin/time"


# ----------------------------------------------------------------------------------------------------------------
# data sets

class Dataset:
    """Micrographs (paths), truth STAR file and diameter in pixels."""

    def __init__(self, name: str, kind: str, micrographs: list[Path], truth: Path, diameter_px: float):
        self.name, self.kind, self.micrographs, self.truth, self.diameter_px = (
            name, kind, micrographs, truth, float(diameter_px))


def sim_datasets(species: list[str], n_mics: int, size: int, particles: int, cache: Path) -> list[Dataset]:
    import hashlib

    import cryopick.simulate
    from cryopick.simulate import SimulationConfig, simulate_dataset, suite_configs

    # The simulator's own source is part of the key: a changed simulator makes new data sets.
    code = hashlib.sha1(b"".join(p.read_bytes() for p in sorted(Path(cryopick.simulate.__file__).parent.glob("*.py"))))
    base = SimulationConfig(shape=(size, size), n_micrographs=n_mics, particles_per_micrograph=particles)
    out = []
    for name, cfg in suite_configs(base, species).items():
        key = f"{name}-{size}-n{n_mics}-p{particles}-s{cfg.seed}-{code.hexdigest()[:8]}"
        d = cache / key
        done = d / "simulation.json"
        if not (done.exists() and json.loads(done.read_text()) == cfg.to_dict()):
            print(f"simulating {name}: {n_mics} x {size}^2 -> {d}", file=sys.stderr)
            simulate_dataset(cfg, d)
        mics = sorted(d.glob("sim_*.mrc"))
        out.append(Dataset(f"sim:{name}", "sim", mics, d / "truth.star", cfg.diameter_px))
    return out


def real_datasets(root: Path, quick: bool) -> list[Dataset]:
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        labels = d / "labels.star"
        mics = sorted((d / "mrc").glob("*.mrc")) or sorted(d.glob("*.mrc"))
        if not labels.exists() or not mics:
            continue
        meta = json.loads((d / "meta.json").read_text()) if (d / "meta.json").exists() else {}
        if "diameter_px" not in meta:
            print(f"{d.name}: no diameter_px in meta.json: skipped", file=sys.stderr)
            continue
        if quick:
            mics = mics[:3]
        out.append(Dataset(f"real:{d.name}", "real", mics, labels, meta["diameter_px"]))
    return out


def read_truth(path: Path) -> dict[str, np.ndarray]:
    """``{micrograph stem: (n, 2) xy}`` from a RELION STAR file."""
    import starfile

    df = starfile.read(path)
    if isinstance(df, dict):
        df = next(iter(df.values()))
    out: dict[str, list] = {}
    for name, x, y in zip(df["rlnMicrographName"], df["rlnCoordinateX"], df["rlnCoordinateY"], strict=True):
        out.setdefault(Path(str(name)).stem, []).append((float(x), float(y)))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def write_labels(ds: Dataset, exemplars: int | None, seed: int, path: Path) -> tuple[list[str], list[str]]:
    """Write the training labels (STAR) for ``ds``; return (labelled micrograph stems, held-out stems)."""
    import pandas as pd
    import starfile

    truth = read_truth(ds.truth)
    stems = [m.stem for m in ds.micrographs]
    if exemplars:
        first = stems[0]
        xy = truth.get(first, np.zeros((0, 2)))
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(len(xy), size=min(exemplars, len(xy)), replace=False))
        train = {first: xy[keep]}
    else:
        n_train = max(1, len(stems) // 3)
        train = {s: truth.get(s, np.zeros((0, 2))) for s in stems[:n_train]}
    rows = [(f"{s}.mrc", x, y) for s, xy in train.items() for x, y in xy]
    df = pd.DataFrame(rows, columns=["rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY"])
    starfile.write(df, path, overwrite=True)
    return list(train), [s for s in stems if s not in train]


# ----------------------------------------------------------------------------------------------------------------
# running

def timed_subprocess(cmd: list[str], log: Path, timeout: float | None, cwd: Path | None = None,
                     env: dict | None = None) -> tuple[int, str, float, float | None]:
    """Run ``cmd``; return (exit code, stdout, wall seconds, peak RSS in MiB or None)."""
    use_time = os.path.exists(TIME_BIN)
    tv = log.with_suffix(".time")
    full = [TIME_BIN, "-v", "-o", str(tv)] + cmd if use_time else cmd
    start = time.perf_counter()
    try:
        proc = subprocess.run(full, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env)
        rc, out, err = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = 124, exc.stdout or "", f"timed out after {timeout} s\n{exc.stderr or ''}"
        out = out.decode() if isinstance(out, bytes) else out
        err = err if isinstance(err, str) else err.decode()
    wall = time.perf_counter() - start
    log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{out}\n--- stderr\n{err}\n")
    peak = None
    if use_time and tv.exists():
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", tv.read_text())
        if m:
            peak = int(m.group(1)) / 1024
    if peak is None:
        # Running maximum over every child so far: an upper bound for this one.
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return rc, out, wall, peak


def picker_settings(settings: list[str], picker: str) -> list[str]:
    out = []
    for s in settings:
        name, _, kv = s.partition(":")
        if not kv:
            raise SystemExit(f"--set wants PICKER:KEY=VALUE, got {s!r}")
        if name == picker:
            out += ["--set", kv]
    return out


def few_shot(picker: str, override: int | None) -> int | None:
    if override is not None:
        return override or None
    try:
        from cryopick.host import build_host

        target = build_host().pickers.load(picker)
        return getattr(target, "demo_labels", None)
    except Exception:
        return None


def run_cryopick(picker: str, ds: Dataset, work: Path, args) -> dict:
    shots = few_shot(picker, args.exemplars)
    d = work / ds.name.replace(":", "_") / picker
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    labels = d / "labels.star"
    train, held = write_labels(ds, shots, args.seed, labels)
    mic_dir = d / "mics"  # a glob that matches exactly this data set's micrographs
    mic_dir.mkdir()
    for m in ds.micrographs:
        (mic_dir / m.name).symlink_to(m.resolve())
    cmd = [sys.executable, "-m", "cryopick.cli.main", "-q", "run", "--picker", picker,
           "--micrographs", str(mic_dir / "*.mrc"), "--labels", str(labels), "--truth", str(ds.truth),
           "--diameter", f"{ds.diameter_px:g}", "--out", str(d / "out"), "--device", args.device,
           "--match", args.match, "--seed", str(args.seed), "--json", *picker_settings(args.set, picker)]
    if picker == "topaz" and (args.topaz_em_scale or getattr(args, "topaz_exe_found", None)) and not any(
            "target_diameter_px" in a for a in picker_settings(args.set, picker)):
        # Side by side with topaz-em: the same (integer) downsampling factor on both sides.
        cmd += ["--set", f"target_diameter_px={ds.diameter_px / topaz_scale(ds):.6g}"]
    rc, out, wall, peak = timed_subprocess(cmd, d / "run.log", args.timeout)
    row = {"dataset": ds.name, "picker": picker, "n_train": len(train), "n_eval": len(held),
           "labels": f"{shots} exemplars" if shots else f"truth of {len(train)} mic(s)",
           "command": " ".join(cmd), "wall_s": round(wall, 2), "peak_rss_mib": round(peak, 1) if peak else None,
           "log": str(d / "run.log")}
    if rc != 0:
        tail = (d / "run.log").read_text().strip().splitlines()[-3:]
        return {**row, "status": f"failed (exit {rc})", "error": " | ".join(tail)}
    try:
        s = json.loads(out[out.index("{"):])
    except ValueError:
        return {**row, "status": "failed (no JSON)"}
    ev, t = s.get("evaluation", {}), s.get("times_s", {})
    n = max(1, int(s.get("micrographs", len(ds.micrographs))))
    pick = t.get("preprocess", 0) + t.get("score", 0) + t.get("threshold", 0)
    return {**row, "status": "ok", "micrographs": n, "device": s.get("device"),
            "ap": ev.get("average_precision"), "f1": ev.get("f1"), "precision": ev.get("precision"),
            "recall": ev.get("recall"), "best_f1": ev.get("best_f1"), "n_truth": ev.get("n_truth"),
            "n_picks": ev.get("n_picks"), "train_s": t.get("train", 0.0), "pick_s_per_mic": round(pick / n, 3),
            "total_s": t.get("total"), "times_s": t, "picks_per_micrograph": s.get("picks_per_micrograph")}


def find_topaz(explicit: str | None = None) -> str | None:
    """The ``topaz`` executable: ``--topaz-exe``, else on PATH, else beside this Python."""
    if explicit:
        return explicit if Path(explicit).exists() else None
    exe = shutil.which("topaz")
    if exe is None:
        cand = Path(sys.executable).parent / "topaz"
        exe = str(cand) if cand.exists() else None
    return exe


def topaz_scale(ds: Dataset) -> int:
    """topaz-em's integer downsampling factor: particles about 24 px wide, as cryopick-topaz aims for."""
    return max(1, int(round(ds.diameter_px / 24)))


def topaz_config(args):
    """cryopick-topaz's effective config under this run's ``--set topaz:...`` (and the automatic preset)."""
    from cryopick.config import build_config, parse_settings
    from cryopick_topaz.picker import PRESETS, TopazConfig, TopazPicker

    settings = parse_settings(picker_settings(args.set, "topaz")[1::2])  # the KEY=VALUE of each --set pair
    if "preset" not in settings:
        preset = TopazPicker.default_preset("cuda" if _topaz_device(args.device) != "-1" else "cpu")
        if preset:
            settings["preset"] = preset
    return build_config(TopazConfig, settings, PRESETS, owner="topaz")


_TOPAZ_METHOD = {"ge-binomial": "GE-binomial", "ge-kl": "GE-KL", "nnpu": "PU", "pn": "PN"}


def topaz_em_train_args(cfg, n_labels: int, per_mic: float) -> list[str]:
    """``topaz train`` options equal to cryopick-topaz's config ``cfg`` (matched settings)."""
    gamma = cfg.autoencoder
    if gamma is None:  # cryopick-topaz's automatic rule (paper Fig. 5b)
        gamma = 10.0 / n_labels if n_labels <= 250 else 0.0
    out = ["-m", cfg.backbone, "--units", str(cfg.units), "-r", f"{cfg.radius:g}",
           "--method", _TOPAZ_METHOD[cfg.loss], "--autoencoder", f"{gamma:g}", "--l2", f"{cfg.weight_decay:g}",
           "--learning-rate", f"{cfg.learning_rate:g}", "--minibatch-size", str(cfg.minibatch),
           "--minibatch-balance", f"{cfg.balance:g}", "--epoch-size", str(cfg.epoch_size),
           "--num-epochs", str(cfg.epochs), "--no-pretrained",
           "-n", f"{cfg.expected_particles if cfg.expected_particles is not None else per_mic:g}"]
    if cfg.slack is not None:
        out += ["--slack", f"{cfg.slack:g}"]
    return out


def _topaz_device(device: str) -> str:
    """topaz's ``--device``: a GPU index, or -1 for CPU."""
    if device.startswith("cuda"):
        return device.partition(":")[2] or "0"
    if device == "auto":
        try:
            import torch

            return "0" if torch.cuda.is_available() else "-1"
        except ImportError:
            return "-1"
    return "-1"


def score_topaz_em(predicted: Path, truth: dict, held: list[str], diameter_px: float, match: str) -> dict:
    """Score ``topaz extract`` output (image_name, x, y, score) on the held-out micrographs: AP over all
    extracted candidates, F1 at logit 0 (posterior 0.5), best F1 over all cuts."""
    from cryopick.metrics import evaluate
    from cryopick.particles import Particles

    picks: dict[str, list] = {}
    for line in predicted.read_text().splitlines()[1:]:
        name, x, y, score = line.split("\t")[:4]
        picks.setdefault(name, []).append((float(x), float(y), float(score)))
    to_p = lambda a: Particles(a[:, 0], a[:, 1], a[:, 2])  # noqa: E731
    cand = {s: to_p(np.asarray(picks.get(s, np.zeros((0, 3))), dtype=float).reshape(-1, 3)) for s in held}
    thr = 0.0  # topaz scores are logits; 0 = probability 0.5
    sel = {s: p.subset(np.flatnonzero(p.score >= thr)) for s, p in cand.items()}
    tr = {s: Particles(truth[s][:, 0], truth[s][:, 1]) if s in truth else Particles.empty() for s in held}
    return evaluate(sel, tr, diameter_px=diameter_px, candidates=cand, method=match).to_dict()


def run_topaz_em(exe: str, ds: Dataset, work: Path, args) -> dict:
    """``topaz preprocess`` -> ``train`` -> ``extract`` on the same data and labels; scored by cryopick.metrics."""
    d = work / ds.name.replace(":", "_") / "topaz-em"
    if d.exists():
        shutil.rmtree(d)
    (d / "processed").mkdir(parents=True)
    train, held = write_labels(ds, args.exemplars or None, args.seed, d / "labels.star")
    scale = topaz_scale(ds)
    cfg = topaz_config(args)
    truth = read_truth(ds.truth)
    labels = read_truth(d / "labels.star")
    with open(d / "processed" / "train_targets.txt", "w") as f:
        f.write("image_name\tx_coord\ty_coord\n")
        for stem, xy in labels.items():
            for x, y in xy:
                f.write(f"{stem}\t{int(round(x / scale))}\t{int(round(y / scale))}\n")
    # An image list (image_name, path) rather than a folder: older topaz-em releases only take a list.
    with open(d / "processed" / "train_images.txt", "w") as f:
        f.write("image_name\tpath\n")
        for stem in labels:
            f.write(f"{stem}\t{d / 'processed' / (stem + '.mrc')}\n")
    # Extraction (NMS) radius: cryopick-topaz's nms_fraction x diameter, in downsampled pixels.
    radius = max(1, int(round(cfg.nms_fraction * ds.diameter_px / scale)))
    n_labels = sum(len(xy) for xy in labels.values())
    per_mic = n_labels / max(1, len(labels))  # cryopick-topaz's default expected_particles
    steps = [
        [exe, "preprocess", "-s", str(scale), "-o", str(d / "processed"), *map(str, ds.micrographs)],
        [exe, "train", "--num-workers", "0", "--device", _topaz_device(args.device),
         *topaz_em_train_args(cfg, n_labels, per_mic),
         "--train-images", str(d / "processed" / "train_images.txt"),
         "--train-targets", str(d / "processed" / "train_targets.txt"),
         "--save-prefix", str(d / "model"), "-o", str(d / "train_log.txt")],
    ]
    times, peak, wall_total = {}, 0.0, 0.0
    for name, cmd in zip(("preprocess", "train"), steps, strict=True):
        rc, _, wall, pk = timed_subprocess(cmd, d / f"{name}.log", args.timeout)
        times[name], peak, wall_total = wall, max(peak, pk or 0), wall_total + wall
        if rc != 0:
            return {"dataset": ds.name, "picker": "topaz-em", "status": f"failed at {name} (exit {rc})",
                    "log": str(d / f"{name}.log")}
    models = sorted(d.glob("model_epoch*.sav"), key=lambda p: int(re.findall(r"\d+", p.stem)[-1]))
    processed = [str(d / "processed" / f"{m.stem}.mrc") for m in ds.micrographs]
    cmd = [exe, "extract", "-r", str(radius), "-x", str(scale), "-m", str(models[-1]),
           "-t", f"{args.topaz_extract_threshold:g}", "-d", _topaz_device(args.device),
           "-o", str(d / "predicted.txt"), *processed]
    rc, _, wall, pk = timed_subprocess(cmd, d / "extract.log", args.timeout)
    times["extract"], peak = wall, max(peak, pk or 0)
    if rc != 0:
        return {"dataset": ds.name, "picker": "topaz-em", "status": f"failed at extract (exit {rc})"}
    ev = score_topaz_em(d / "predicted.txt", truth, held, ds.diameter_px, args.match)
    n = len(ds.micrographs)
    return {"dataset": ds.name, "picker": "topaz-em", "status": "ok", "n_train": len(train), "n_eval": len(held),
            "labels": f"truth of {len(train)} mic(s)", "ap": ev["average_precision"], "f1": ev["f1"],
            "precision": ev["precision"], "recall": ev["recall"], "best_f1": ev["best_f1"],
            "train_s": round(times["train"], 2), "pick_s_per_mic": round((times["preprocess"] + times["extract"]) / n, 3),
            "peak_rss_mib": round(peak, 1), "wall_s": round(wall_total + wall, 2), "device": args.device,
            "times_s": {k: round(v, 2) for k, v in times.items()}, "scale": scale, "extract_radius": radius,
            "commands": [" ".join(c) for c in steps + [cmd]]}


# ----------------------------------------------------------------------------------------------------------------
# reporting

def machine_info() -> dict:
    info = {"platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
            "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    except AttributeError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            m = re.search(r"model name\s*:\s*(.*)", f.read())
            if m:
                info["cpu_model"] = m.group(1).strip()
    except OSError:
        pass
    try:
        info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    code = ("import json, torch; c = torch.cuda.is_available(); print(json.dumps({'torch': torch.__version__, "
            "'torch_device': torch.cuda.get_device_name(0) if c else 'cpu', 'torch_threads': torch.get_num_threads()}))")
    try:
        p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        info.update(json.loads(p.stdout) if p.returncode == 0 else {"torch": "not installed"})
    except Exception:
        info["torch"] = "not installed"
    try:
        import cryopick

        info["cryopick"] = cryopick.__version__
    except Exception:
        pass
    try:
        info["git_commit"] = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                            capture_output=True, text=True).stdout.strip()
    except OSError:
        pass
    return info


def fmt(v, spec=".3f") -> str:
    if v is None:
        return "-"
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def table(rows: list[dict]) -> str:
    head = ["data set", "picker", "labels", "eval mics", "AP", "F1", "precision", "recall", "best F1",
            "train s", "pick s/mic", "peak MiB", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["dataset"], r["picker"], r.get("labels", "-"), fmt(r.get("n_eval"), "d"), fmt(r.get("ap")),
            fmt(r.get("f1")), fmt(r.get("precision")), fmt(r.get("recall")), fmt(r.get("best_f1")),
            fmt(r.get("train_s"), ".1f"), fmt(r.get("pick_s_per_mic"), ".2f"), fmt(r.get("peak_rss_mib"), ".0f"),
            r.get("status", "-")]) + " |")
    ok = [r for r in rows if r.get("status") == "ok"]
    for picker in dict.fromkeys(r["picker"] for r in ok):
        for kind in ("sim", "real"):
            sel = [r for r in ok if r["picker"] == picker and r["dataset"].startswith(kind + ":")]
            if len(sel) > 1:
                mean = lambda k, sel=sel: float(np.mean([r[k] for r in sel]))  # noqa: E731
                lines.append("| " + " | ".join([
                    f"**{kind} mean ({len(sel)})**", picker, "", "", fmt(mean("ap")), fmt(mean("f1")),
                    fmt(mean("precision")), fmt(mean("recall")), fmt(mean("best_f1")), fmt(mean("train_s"), ".1f"),
                    fmt(mean("pick_s_per_mic"), ".2f"), "", ""]) + " |")
    return "\n".join(lines)


def machine_line(m: dict) -> str:
    return (f"machine: {m.get('platform')}, {m.get('cpu_model', m.get('processor'))}, {m.get('cpu_count')} CPUs "
            f"({m.get('cpus_usable', '?')} usable), {m.get('memory_gib', '?')} GiB; python {m.get('python')}; "
            f"torch {m.get('torch')} ({m.get('torch_device', '-')}); cryopick {m.get('cryopick', '?')} "
            f"@ {m.get('git_commit', '?')}")


# ----------------------------------------------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pickers", default="dog", help="comma-separated picker names (default: dog)")
    p.add_argument("--sim", action=argparse.BooleanOptionalAction, default=True, help="run the simulator suite")
    p.add_argument("--real", action=argparse.BooleanOptionalAction, default=True,
                   help="run the real sets in --real-dir when it exists")
    p.add_argument("--real-dir", type=Path, default=DEFAULT_REAL, help=f"default: {DEFAULT_REAL}")
    p.add_argument("--species", default=",".join(DEFAULT_SPECIES), help="comma-separated species, or 'all'")
    p.add_argument("--n-micrographs", type=int, default=4, help="simulated micrographs per species")
    p.add_argument("--size", type=int, default=1024, help="simulated micrograph size (pixels)")
    p.add_argument("--particles", type=int, default=60, help="simulated particles per micrograph")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 2 species, 3 micrographs of 512^2, 3 real micrographs per set")
    p.add_argument("--exemplars", type=int, default=None,
                   help="labels = N truth particles from the first micrograph (0: truth of the first third); "
                        "default: the picker's own few-shot count (mae: 15), else the first third")
    p.add_argument("--set", action="append", default=[], metavar="PICKER:KEY=VALUE",
                   help="picker setting passed as --set KEY=VALUE to that picker (repeatable)")
    p.add_argument("--peers", default="topaz-em", help="peer programs to run when installed ('none' to skip)")
    p.add_argument("--topaz-exe", default=None, metavar="PATH",
                   help="topaz-em's topaz executable (default: topaz on PATH); see benchmarks/topaz_em_env.sh")
    p.add_argument("--topaz-em-scale", action="store_true",
                   help="run cryopick-topaz at topaz-em's integer downsampling factor even without the peer "
                        "(automatic when topaz-em runs)")
    p.add_argument("--topaz-extract-threshold", type=float, default=-6.0,
                   help="topaz extract -t: lowest logit extracted (topaz-em's default -6)")
    p.add_argument("--match", choices=["iou", "distance"], default="iou")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=None, help="seconds per subprocess")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "cryopick" / "bench-sim", help="where simulated data sets are kept between runs")
    p.add_argument("--work", type=Path, default=None, help="run directory (default: a temporary one, removed)")
    p.add_argument("--json-out", type=Path, default=None, help="write all results and the machine info here")
    a = p.parse_args(argv)
    if a.quick:
        a.species = a.species if a.species != ",".join(DEFAULT_SPECIES) else "globular,small"
        a.n_micrographs, a.size = 3, 512
        a.particles = min(a.particles, 25)
    return a


def main(argv=None) -> int:
    args = parse_args(argv)
    pickers = [p.strip() for p in args.pickers.split(",") if p.strip()]
    from cryopick.simulate import SUITE

    species = list(SUITE) if args.species == "all" else [s.strip() for s in args.species.split(",") if s.strip()]
    datasets: list[Dataset] = []
    notes: list[str] = []
    if args.sim:
        datasets += sim_datasets(species, args.n_micrographs, args.size, args.particles, args.cache)
    if args.real:
        if args.real_dir.is_dir():
            datasets += real_datasets(args.real_dir, args.quick)
        else:
            notes.append(f"real data folder {args.real_dir} not found: real sets skipped")
            print(notes[-1], file=sys.stderr)
    peers = [] if args.peers in ("", "none") else [p.strip() for p in args.peers.split(",")]
    topaz_exe = None
    if "topaz-em" in peers:
        topaz_exe = find_topaz(args.topaz_exe)
        if topaz_exe is None:
            notes.append("topaz-em not installed: skipped")
        elif "topaz" in pickers:
            notes.append(f"topaz-em: {topaz_exe}; cryopick-topaz runs at topaz-em's integer downsampling factor "
                         "(target_diameter_px = diameter / factor) and topaz-em at cryopick-topaz's settings")
        if notes and "topaz-em" in notes[-1]:
            print(notes[-1], file=sys.stderr)
    args.topaz_exe_found = topaz_exe

    tmp = None
    work = args.work
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="cryopick-bench-")
        work = Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    rows = []
    try:
        for ds in datasets:
            for picker in pickers:
                print(f"{ds.name}: {picker} ...", file=sys.stderr, flush=True)
                r = run_cryopick(picker, ds, work, args)
                print(f"  {r['status']}" + (f" AP {r['ap']:.3f} F1 {r['f1']:.3f} in {r['wall_s']:.1f} s"
                                            if r["status"] == "ok" else f": {r.get('error', '')}"),
                      file=sys.stderr, flush=True)
                rows.append(r)
            if topaz_exe:
                print(f"{ds.name}: topaz-em ({topaz_exe}) ...", file=sys.stderr, flush=True)
                try:
                    rows.append(run_topaz_em(topaz_exe, ds, work, args))
                except Exception as exc:  # a peer's quirks must not lose the other results
                    rows.append({"dataset": ds.name, "picker": "topaz-em", "status": f"failed ({exc})"})
    finally:
        if tmp is not None:
            tmp.cleanup()

    print(machine_line(machine))
    cmd = "python benchmarks/harness.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"command: {cmd.strip()}")
    if args.sim:
        print(f"sim suite: {len(species)} species x {args.n_micrographs} micrographs of {args.size}^2, "
              f"{args.particles} particles each (default SNR, nuisances on)")
    for n in notes:
        print(n)
    print()
    print(table(rows))
    if args.json_out:
        args.json_out.write_text(json.dumps({"machine": machine, "command": cmd.strip(), "notes": notes,
                                             "results": rows}, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json_out}")
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
