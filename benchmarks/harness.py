"""Benchmark harness: run pickers on a simulator suite and on real data sets, print one table, write JSON.

Every picker runs through the public CLI in a subprocess (``python -m cryopick.cli.main run ... --json``), so the
numbers are what a user gets, and peak memory is that of the picker's own process (``/usr/bin/time -v`` when
available, else ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, a running maximum over all children so far).

Protocol (per data set; ``../shared/BENCHMARKING.md``): micrographs sorted by name, the first N (2 for 5-12
micrographs, 4 for more) train and all after them are the test set. ``--labels sparse`` (default): K = 25 truth
particles drawn per training micrograph (``df.sample(frac=1, random_state=seed).groupby(micrograph).head(K)``);
``--labels exemplars``: 15 drawn the same way from the first micrograph only; ``--labels full``: the old rule
(all truth on the first third, or a few-shot picker's exemplars). ``--seeds`` repeats learned pickers and the
reference per seed (label draw and training seed) and reports mean and std. Scored with IoU >= 0.5 box matching
by default (``--match distance`` for Topaz-style matching).

Examples::

    python benchmarks/harness.py --pickers dog                    # sim suite (3 species) + real sets
    python benchmarks/harness.py --pickers dog,topaz,mae --quick  # small and fast
    python benchmarks/harness.py --pickers topaz --set topaz:epochs=5 --no-real --species all
    python benchmarks/harness.py --pickers dog --json-out bench.json

Peer programs: when the ``topaz`` executable (the ``topaz-em`` package) is on PATH or given by ``--topaz-exe``,
``--peers topaz-em`` (the default) also runs ``topaz preprocess/train/extract`` as its users run it (the protocol's
settings, ``-n`` = the true count) on the same micrographs and labels, scores its picks with
:func:`cryopick.metrics.evaluate`, and caches its results (``--cache``) by a hash of data, labels, commands and
version. ``--aspire-dir`` adds the sets of ``benchmarks/aspire_sim.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
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


def real_datasets(root: Path, quick: bool, kind: str = "real") -> list[Dataset]:
    """Every ``<root>/<set>/`` with ``mrc/*.mrc``, ``labels.star`` and ``meta.json`` (``diameter_px``): the real
    sets in ``shared/data/real`` and the ASPIRE sets of ``benchmarks/aspire_sim.py`` share this layout."""
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
        out.append(Dataset(f"{kind}:{d.name}", kind, mics, labels, meta["diameter_px"]))
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


def truth_frame(path: Path):
    """The truth STAR file as a DataFrame (``rlnMicrographName``, ``rlnCoordinateX/Y``), in file order."""
    import starfile

    df = starfile.read(path)
    if isinstance(df, dict):
        df = next(iter(df.values()))
    return df


def n_train_micrographs(n: int) -> int:
    """The protocol's N: 2 training micrographs for sets of 5-12, 4 for larger ones (1 for sets under 5, which
    the protocol does not cover: a note says so)."""
    return 4 if n > 12 else 2 if n >= 5 else 1


class Split:
    """One label draw: ``labels`` ({stem: (n, 2) xy}), the training and test micrographs (stems), and the
    micrographs a program is run on (``run``: training + test for sparse labels, the first + test for few-shot)."""

    def __init__(self, setting: str, k: int | None, seed: int, labels: dict, train: list[str], test: list[str],
                 run: list[str], true_per_train_mic: float):
        self.setting, self.k, self.seed, self.labels = setting, k, seed, labels
        self.train, self.test, self.run, self.true_per_train_mic = train, test, run, true_per_train_mic

    @property
    def description(self) -> str:
        n = sum(len(v) for v in self.labels.values())
        if self.setting == "sparse":
            return f"sparse: {self.k}/mic on {len(self.train)} mic(s) ({n})"
        if self.setting == "exemplars":
            return f"{n} exemplars, 1 mic"
        if self.setting == "zero":
            return "none (zero-shot)"
        return self.k and f"{n} exemplars (first mic)" or f"truth of {len(self.train)} mic(s)"


def protocol_split(ds: Dataset, setting: str, k: int | None, seed: int, full_exemplars: int | None = None) -> Split:
    """Labels of BENCHMARKING.md. Micrographs sorted by name; the first N (n_train_micrographs) train, all after
    them test (the same test set for both settings).

    - ``sparse``: ``df.sample(frac=1, random_state=seed).groupby(micrograph).head(k)`` of the whole truth table,
      kept on the N training micrographs (k = 25 by default);
    - ``exemplars``: the same draw, kept on the first micrograph only (k = 15 by default); the other training
      micrographs are left out of the run altogether (neither labelled nor scored);
    - ``full`` (the harness's old protocol): all truth on the first third of the micrographs, or, with
      ``full_exemplars``, that many truth particles of the first micrograph; every other micrograph is scored;
    - ``zero``: no labels (zero-shot pickers); run and scored on the test micrographs of the other settings.
    """
    truth = read_truth(ds.truth)
    stems = [m.stem for m in ds.micrographs]  # Dataset.micrographs is sorted by file name
    true_count = lambda names: float(np.mean([len(truth.get(s, ())) for s in names]))  # noqa: E731
    if setting == "full":
        if full_exemplars:
            first = stems[0]
            xy = truth.get(first, np.zeros((0, 2)))
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(xy), size=min(full_exemplars, len(xy)), replace=False))
            labels = {first: xy[keep]}
        else:
            n_train = max(1, len(stems) // 3)
            labels = {s: truth.get(s, np.zeros((0, 2))) for s in stems[:n_train]}
        train = list(labels)
        test = [s for s in stems if s not in labels]
        return Split(setting, full_exemplars, seed, labels, train, test, stems, true_count(train))
    n = n_train_micrographs(len(stems))
    if len(stems) <= n:
        raise SystemExit(f"{ds.name}: {len(stems)} micrograph(s): none left to test after {n} for training")
    if setting == "zero":  # no labels at all; the same test micrographs as the other settings
        return Split(setting, 0, seed, {}, [], stems[n:], stems[n:], true_count(stems[:n]))
    train_mics = stems[:n] if setting == "sparse" else stems[:1]
    df = truth_frame(ds.truth)
    df = df.assign(_stem=[Path(str(m)).stem for m in df["rlnMicrographName"]])
    draw = df.sample(frac=1, random_state=seed).groupby("rlnMicrographName", sort=False).head(k)
    draw = draw[draw["_stem"].isin(train_mics)]
    labels = {s: draw.loc[draw["_stem"] == s, ["rlnCoordinateX", "rlnCoordinateY"]].to_numpy(dtype=np.float64)
              for s in train_mics}
    labels = {s: xy for s, xy in labels.items() if len(xy)}
    test = stems[n:]
    run = stems if setting == "sparse" else train_mics + test
    return Split(setting, k, seed, labels, train_mics, test, run, true_count(train_mics))


def write_split_labels(split: Split, path: Path) -> None:
    """The labels of ``split`` as a RELION STAR file (``rlnMicrographName``, ``rlnCoordinateX/Y``). Written by
    hand, not by ``starfile``, so the same labels give the same bytes (no time stamp): the cache key hashes them."""
    with open(path, "w") as f:
        f.write("data_particles\n\nloop_\n_rlnMicrographName #1\n_rlnCoordinateX #2\n_rlnCoordinateY #3\n")
        for s, xy in split.labels.items():
            for x, y in xy:
                f.write(f"{s}.mrc\t{float(x):.6f}\t{float(y):.6f}\n")


def link_run_micrographs(ds: Dataset, split: Split, mic_dir: Path) -> None:
    """Symlinks in ``mic_dir`` to the micrographs of ``split.run``: a glob over it matches exactly the run's
    micrographs (existing links are kept, so a probe can be rerun into the same folder)."""
    mic_dir.mkdir(parents=True, exist_ok=True)
    by_stem = {m.stem: m for m in ds.micrographs}
    for stem in split.run:
        if not (mic_dir / by_stem[stem].name).exists():
            (mic_dir / by_stem[stem].name).symlink_to(by_stem[stem].resolve())


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


def make_split(picker: str | None, ds: Dataset, setting: str, seed: int, args) -> Split:
    """The label draw of ``setting`` for this seed; ``full`` keeps the old per-picker few-shot rule."""
    if setting == "full":
        shots = few_shot(picker, args.exemplars) if picker and picker != "topaz-em" else (args.exemplars or None)
        return protocol_split(ds, "full", None, seed, full_exemplars=shots)
    k = args.label_k if args.label_k is not None else (25 if setting == "sparse" else 15)
    return protocol_split(ds, setting, k, seed)


def _run_dir(work: Path, ds: Dataset, setting: str, seed: int, who: str) -> Path:
    d = work / ds.name.replace(":", "_") / f"{setting}-seed{seed}" / who
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def run_cryopick(picker: str, ds: Dataset, setting: str, seed: int, work: Path, args) -> dict:
    split = make_split(picker, ds, setting, seed, args)
    d = _run_dir(work, ds, setting, seed, picker)
    labels = d / "labels.star"
    write_split_labels(split, labels)
    mic_dir = d / "mics"  # a glob that matches exactly the micrographs of this run
    link_run_micrographs(ds, split, mic_dir)
    cmd = [sys.executable, "-m", "cryopick.cli.main", "-q", "run", "--picker", picker,
           "--micrographs", str(mic_dir / "*.mrc"), *(["--labels", str(labels)] if split.labels else []),
           "--truth", str(ds.truth),
           "--diameter", f"{ds.diameter_px:g}", "--out", str(d / "out"), "--device", args.device,
           "--match", args.match, "--seed", str(seed), "--json", *picker_settings(args.set, picker)]
    matched = args.topaz_em_scale or (args.topaz_em_matched and getattr(args, "topaz_exe_found", None))
    if picker == "topaz" and matched and not any(
            "target_diameter_px" in a for a in picker_settings(args.set, picker)):
        # Matched mode only: the same (integer) downsampling factor as topaz-em. The protocol judges our
        # defaults, so there cryopick-topaz keeps its own (particles 24 px wide).
        cmd += ["--set", f"target_diameter_px={ds.diameter_px / topaz_scale(ds):.6g}"]
    rc, out, wall, peak = timed_subprocess(cmd, d / "run.log", args.timeout)
    row = {"dataset": ds.name, "setting": setting, "seed": seed, "picker": picker, "labels": split.description,
           "n_labels": int(sum(len(v) for v in split.labels.values())), "n_train": len(split.train),
           "n_eval": len(split.test), "test_micrographs": split.test, "command": " ".join(cmd),
           "wall_s": round(wall, 2), "peak_rss_mib": round(peak, 1) if peak else None, "log": str(d / "run.log")}
    if rc != 0:
        tail = (d / "run.log").read_text().strip().splitlines()[-3:]
        return {**row, "status": f"failed (exit {rc})", "error": " | ".join(tail)}
    try:
        s = json.loads(out[out.index("{"):])
    except ValueError:
        return {**row, "status": "failed (no JSON)"}
    ev, t = s.get("evaluation", {}), s.get("times_s", {})
    scored = ev.get("micrographs")
    if isinstance(scored, list) and sorted(Path(str(m)).stem for m in scored) != sorted(split.test):
        row["warning"] = f"cryopick scored {scored}, the protocol's test set is {split.test}"
    n = max(1, int(s.get("micrographs", len(split.run))))
    pick = t.get("preprocess", 0) + t.get("score", 0) + t.get("threshold", 0)
    return {**row, "status": "ok", "micrographs": n, "device": s.get("device"),
            "ap": ev.get("average_precision"), "f1": ev.get("f1"), "precision": ev.get("precision"),
            "recall": ev.get("recall"), "best_f1": ev.get("best_f1"), "n_truth": ev.get("n_truth"),
            "n_picks": ev.get("n_picks"), "threshold": s.get("threshold"), "train_s": t.get("train", 0.0),
            "pick_s_per_mic": round(pick / n, 3), "total_s": t.get("total"), "times_s": t,
            "picks_per_micrograph": s.get("picks_per_micrograph")}


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


def score_topaz_em(predicted: str, truth: dict, held: list[str], diameter_px: float, match: str) -> dict:
    """Score ``topaz extract`` output (image_name, x, y, score; its text) on the test micrographs.

    AP and best F1 over all extracted candidates; ``f1`` (and precision, recall) at topaz-em's own automatic cut,
    which is the extraction threshold itself (``topaz extract -t``, -6 by default: every extracted pick is kept);
    ``f1_logit0`` etc. at logit 0 (posterior 0.5) for reference."""
    from cryopick.metrics import evaluate
    from cryopick.particles import Particles

    picks: dict[str, list] = {}
    for line in predicted.splitlines()[1:]:
        if line.strip():
            name, x, y, score = line.split("\t")[:4]
            picks.setdefault(name, []).append((float(x), float(y), float(score)))
    to_p = lambda a: Particles(a[:, 0], a[:, 1], a[:, 2])  # noqa: E731
    cand = {s: to_p(np.asarray(picks.get(s, np.zeros((0, 3))), dtype=float).reshape(-1, 3)) for s in held}
    tr = {s: Particles(truth[s][:, 0], truth[s][:, 1]) if s in truth else Particles.empty() for s in held}
    ev = evaluate(cand, tr, diameter_px=diameter_px, candidates=cand, method=match).to_dict()
    at0 = {s: p.subset(np.flatnonzero(p.score >= 0.0)) for s, p in cand.items()}
    ev0 = evaluate(at0, tr, diameter_px=diameter_px, candidates=cand, method=match).to_dict()
    return {**ev, "f1_logit0": ev0["f1"], "precision_logit0": ev0["precision"], "recall_logit0": ev0["recall"],
            "n_picks_logit0": ev0["n_picks"]}


_TOPAZ_VERSION: dict[str, str] = {}
_FILE_HASH: dict[str, str] = {}


def topaz_version(exe: str) -> str:
    if exe not in _TOPAZ_VERSION:
        p = subprocess.run([exe, "--version"], capture_output=True, text=True)
        _TOPAZ_VERSION[exe] = (p.stdout.strip() or p.stderr.strip()).splitlines()[-1] if p.returncode == 0 else "?"
    return _TOPAZ_VERSION[exe]


def _file_hash(path: Path) -> str:
    key = str(path.resolve())
    if key not in _FILE_HASH:
        import hashlib

        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _FILE_HASH[key] = h.hexdigest()
    return _FILE_HASH[key]


def topaz_em_cache_key(exe: str, micrographs: list[Path], labels: Path, commands: list[list[str]], d: Path,
                       device: str) -> str:
    """sha256 of the micrographs' bytes (name and content hash of each), the labels file, the command lines
    (run folder, data folder and executable path replaced by placeholders), topaz-em's version and the device."""
    import hashlib

    def norm_arg(c: str) -> str:
        c = c.replace(str(d), "<run>")
        for m in micrographs:  # where the data lie does not matter, their bytes do
            c = c.replace(str(m.parent), "<data>")
        return c

    norm = [[norm_arg(str(c)) for c in ([Path(cmd[0]).name] + cmd[1:])] for cmd in commands]
    blob = json.dumps({"micrographs": [[m.name, _file_hash(m)] for m in micrographs],
                       "labels": labels.read_text(), "commands": norm, "topaz_em": topaz_version(exe),
                       "device": device}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def topaz_em_protocol_train_args(n_true: float, quick: bool) -> list[str]:
    """``topaz train`` as BENCHMARKING.md runs it: the true particle count per micrograph and these settings;
    everything else at topaz-em's defaults (pretrained initialisation included). ``quick``: smoke tests only."""
    epochs, size = ("1", "5") if quick else ("4", "250")
    return ["-n", f"{n_true:g}", "--model", "resnet8", "--units", "32", "--radius", "3", "--method", "GE-binomial",
            "--num-epochs", epochs, "--epoch-size", size, "--minibatch-size", "256"]


def run_topaz_em(exe: str, ds: Dataset, setting: str, seed: int, work: Path, args) -> dict:
    """``topaz preprocess`` -> ``train`` -> ``extract`` on the same micrographs and labels as the pickers; scored by
    cryopick.metrics on the protocol's test micrographs. Cached by a hash of data, labels, commands and version."""
    split = make_split(None, ds, setting, seed, args)
    d = _run_dir(work, ds, setting, seed, "topaz-em")
    (d / "processed").mkdir()
    labels_star = d / "labels.star"
    write_split_labels(split, labels_star)
    scale = topaz_scale(ds)
    truth = read_truth(ds.truth)
    by_stem = {m.stem: m for m in ds.micrographs}
    run_mics = [by_stem[s] for s in split.run]
    with open(d / "processed" / "train_targets.txt", "w") as f:
        f.write("image_name\tx_coord\ty_coord\n")
        for stem, xy in split.labels.items():
            for x, y in xy:
                f.write(f"{stem}\t{int(round(x / scale))}\t{int(round(y / scale))}\n")
    # An image list (image_name, path) rather than a folder: older topaz-em releases only take a list.
    with open(d / "processed" / "train_images.txt", "w") as f:
        f.write("image_name\tpath\n")
        for stem in split.labels:
            f.write(f"{stem}\t{d / 'processed' / (stem + '.mrc')}\n")
    n_labels = sum(len(xy) for xy in split.labels.values())
    if args.topaz_em_matched:
        # The old mode: topaz-em at cryopick-topaz's effective settings and NMS radius.
        cfg = topaz_config(args)
        radius = max(1, int(round(cfg.nms_fraction * ds.diameter_px / scale)))
        train_args = ["--num-workers", "0", *topaz_em_train_args(cfg, n_labels, n_labels / max(1, len(split.labels)))]
    else:
        radius = max(1, int(round(ds.diameter_px / 2 / scale)))
        train_args = topaz_em_protocol_train_args(split.true_per_train_mic, args.topaz_em_quick)
    # Ablations of the reference (e.g. --no-pretrained); part of the commands, so of the cache key too.
    train_args = [*train_args, *shlex.split(args.topaz_em_train_args or "")]
    last_epoch = next((int(train_args[i + 1]) for i, a in enumerate(train_args) if a == "--num-epochs"), 10)
    preprocess = [exe, "preprocess", "-s", str(scale), "-o", str(d / "processed"), *map(str, run_mics)]
    train = [exe, "train", "--device", _topaz_device(args.device), *train_args,
             "--train-images", str(d / "processed" / "train_images.txt"),
             "--train-targets", str(d / "processed" / "train_targets.txt"),
             "--save-prefix", str(d / "model"), "-o", str(d / "train_log.txt")]
    extract = [exe, "extract", "-r", str(radius), "-x", str(scale), "-m", str(d / f"model_epoch{last_epoch}.sav"),
               "-t", f"{args.topaz_extract_threshold:g}", "-d", _topaz_device(args.device),
               "-o", str(d / "predicted.txt"), *(str(d / "processed" / f"{s}.mrc") for s in split.test)]
    steps = {"preprocess": preprocess, "train": train, "extract": extract}
    base = {"dataset": ds.name, "setting": setting, "seed": seed, "picker": "topaz-em", "labels": split.description,
            "n_labels": n_labels, "n_train": len(split.train), "n_eval": len(split.test),
            "test_micrographs": split.test, "scale": scale, "extract_radius": radius,
            "num_particles": None if args.topaz_em_matched else split.true_per_train_mic,
            "mode": "matched" if args.topaz_em_matched else ("quick" if args.topaz_em_quick else "protocol"),
            "topaz_em_version": topaz_version(exe), "commands": [" ".join(c) for c in steps.values()]}
    key = topaz_em_cache_key(exe, run_mics, labels_star, list(steps.values()), d, args.device)
    cache_file = args.cache / "topaz-em" / f"{key}.json"
    base["cache_key"] = key
    if args.use_cache and cache_file.exists():
        cached = json.loads(cache_file.read_text())
        predicted = cached["predicted"]
        row = {**cached["result"], **base, "cached": True, "cache_file": str(cache_file)}
    else:
        times, peak = {}, 0.0
        for name, cmd in steps.items():
            rc, _, wall, pk = timed_subprocess(cmd, d / f"{name}.log", args.timeout)
            times[name], peak = wall, max(peak, pk or 0)
            if rc != 0:
                tail = (d / f"{name}.log").read_text().strip().splitlines()[-3:]
                return {**base, "status": f"failed at {name} (exit {rc})", "error": " | ".join(tail),
                        "log": str(d / f"{name}.log")}
        predicted = (d / "predicted.txt").read_text()
        n = len(run_mics)
        row = {**base, "status": "ok", "cached": False, "device": args.device,
               "wall_s": round(sum(times.values()), 2), "train_s": round(times["train"], 2),
               "pick_s_per_mic": round((times["preprocess"] + times["extract"]) / n, 3),
               "peak_rss_mib": round(peak, 1), "times_s": {k: round(v, 2) for k, v in times.items()},
               "micrographs": n}
        if True:  # --no-cache re-runs and overwrites
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            keep = {k: row[k] for k in ("wall_s", "train_s", "pick_s_per_mic", "peak_rss_mib", "times_s",
                                        "micrographs", "device", "status")}
            tmp = cache_file.with_suffix(".tmp")
            tmp.write_text(json.dumps({"key": key, "created": time.strftime("%Y-%m-%d %H:%M:%S"),
                                       "machine": platform.node(), "result": keep, "predicted": predicted,
                                       "commands": base["commands"]}, indent=1) + "\n")
            tmp.replace(cache_file)
    # Scored afresh every time (also on a cache hit): the cache holds topaz-em's picks, not our verdict on them.
    ev = score_topaz_em(predicted, truth, split.test, ds.diameter_px, args.match)
    row.update({"ap": ev["average_precision"], "f1": ev["f1"], "precision": ev["precision"],
                "recall": ev["recall"], "best_f1": ev["best_f1"], "best_threshold": ev["best_threshold"],
                "n_truth": ev["n_truth"], "n_picks": ev["n_picks"], "threshold": args.topaz_extract_threshold,
                "f1_logit0": ev["f1_logit0"], "precision_logit0": ev["precision_logit0"],
                "recall_logit0": ev["recall_logit0"], "log": str(d)})
    return row


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


def _ms(vals: list, spec: str = ".3f") -> str:
    """``mean ± std`` (population std over seeds) or the single value."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    if len(vals) == 1:
        return format(vals[0], spec)
    return f"{format(float(np.mean(vals)), spec)} ± {format(float(np.std(vals)), spec)}"


METRICS = ("ap", "f1", "precision", "recall", "best_f1", "wall_s", "train_s", "pick_s_per_mic", "peak_rss_mib")


def summarize(rows: list[dict]) -> list[dict]:
    """One record per (data set, label setting, picker): mean and std over the seeds that ran, the seeds, and
    the AP difference to topaz-em (mean over seeds of each picker minus topaz-em's) on the same set and labels."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r.get("setting", "-"), r["picker"]), []).append(r)
    out = []
    for (ds, setting, picker), rs in groups.items():
        ok = [r for r in rs if r.get("status") == "ok"]
        rec = {"dataset": ds, "setting": setting, "picker": picker, "labels": rs[0].get("labels"),
               "n_eval": rs[0].get("n_eval"), "seeds": [r.get("seed") for r in ok],
               "failed_seeds": [r.get("seed") for r in rs if r.get("status") != "ok"],
               "cached": sum(bool(r.get("cached")) for r in ok)}
        for k in METRICS:
            v = [r[k] for r in ok if r.get(k) is not None]
            rec[k] = float(np.mean(v)) if v else None
            rec[k + "_std"] = float(np.std(v)) if len(v) > 1 else (0.0 if v else None)
            rec[k + "_values"] = v
        out.append(rec)
    ref = {(r["dataset"], r["setting"]): r for r in out if r["picker"] == "topaz-em" and r["ap"] is not None}
    for r in out:
        t = ref.get((r["dataset"], r["setting"]))
        if t is not None and r["picker"] != "topaz-em" and r["ap"] is not None:
            r["ap_minus_topaz_em"] = r["ap"] - t["ap"]
            r["f1_over_topaz_em_best_f1"] = r["f1"] / t["best_f1"] if r["f1"] is not None and t["best_f1"] else None
    return out


def table(summary: list[dict]) -> str:
    """Markdown table of ``summarize``'s records (mean ± std over seeds) and per-kind means over the sets."""
    head = ["data set", "labels", "picker", "seeds", "test mics", "AP", "F1 @ own threshold", "best F1",
            "AP − topaz-em", "wall s (end to end)", "train s", "peak MiB", "status"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary:
        vals = lambda k, r=r: r[k + "_values"]  # noqa: E731
        n_ok, n_bad = len(r["seeds"]), len(r["failed_seeds"])
        status = "ok" if not n_bad else f"{n_bad} failed" + (f", {n_ok} ok" if n_ok else "")
        if r["cached"]:
            status += f" (cached {r['cached']}/{n_ok})"
        lines.append("| " + " | ".join([
            r["dataset"], r.get("labels") or r["setting"], r["picker"], ",".join(map(str, r["seeds"])) or "-",
            fmt(r.get("n_eval"), "d"), _ms(vals("ap")), _ms(vals("f1")), _ms(vals("best_f1")),
            fmt(r.get("ap_minus_topaz_em"), "+.3f"), _ms(vals("wall_s"), ".1f"), _ms(vals("train_s"), ".1f"),
            fmt(r.get("peak_rss_mib"), ".0f"), status]) + " |")
    for kind in ("sim", "aspire", "real"):
        for setting in dict.fromkeys(r["setting"] for r in summary):
            for picker in dict.fromkeys(r["picker"] for r in summary):
                sel = [r for r in summary if r["picker"] == picker and r["setting"] == setting
                       and r["dataset"].startswith(kind + ":") and r["ap"] is not None]
                if len(sel) > 1:
                    mean = lambda k, sel=sel: (float(np.mean([r[k] for r in sel]))  # noqa: E731
                                               if all(r.get(k) is not None for r in sel) else None)
                    lines.append("| " + " | ".join([
                        f"**{kind} mean ({len(sel)} sets)**", setting, picker, "", "", fmt(mean("ap")),
                        fmt(mean("f1")), fmt(mean("best_f1")), fmt(mean("ap_minus_topaz_em"), "+.3f"),
                        fmt(mean("wall_s"), ".1f"), fmt(mean("train_s"), ".1f"), "", ""]) + " |")
    return "\n".join(lines)


TABLE_NOTES = (
    "AP: over all scored candidates of the test micrographs (IoU >= 0.5 boxes, one-to-one, no interpolation). "
    "F1 @ own threshold: each program's automatic cut; cryopick pickers at the threshold they choose, topaz-em "
    "at its extraction threshold (`topaz extract -t`, default -6: every extracted pick; topaz-em has no other "
    "automatic cut; F1 at logit 0 is in the JSON as f1_logit0). best F1: the best over all thresholds. "
    "Values are mean ± std (population) over seeds; a seed sets the label draw (random_state) and cryopick's "
    "--seed (topaz train has no seed option: its training is not seeded). AP − topaz-em: mean AP minus "
    "topaz-em's mean AP on the same set and labels. wall s: the whole program end to end (preprocess + train + "
    "pick, process start-up included; cryopick: one `cryopick run`, also scoring; topaz-em: preprocess + train "
    "+ extract; a cached topaz-em row reports the time of the run that filled the cache)."
)


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
    p.add_argument("--aspire-dir", type=Path, default=None,
                   help="ASPIRE sets made by benchmarks/aspire_sim.py (same layout as --real-dir); default: none")
    p.add_argument("--species", default=",".join(DEFAULT_SPECIES), help="comma-separated species, or 'all'")
    p.add_argument("--n-micrographs", type=int, default=4, help="simulated micrographs per species")
    p.add_argument("--size", type=int, default=1024, help="simulated micrograph size (pixels)")
    p.add_argument("--particles", type=int, default=60, help="simulated particles per micrograph")
    p.add_argument("--quick", action="store_true",
                   help="small and fast: 2 species, 3 micrographs of 512^2, 3 real micrographs per set")
    p.add_argument("--labels", default="sparse",
                   help="comma-separated label settings: sparse (K per training micrograph on the first N), "
                        "exemplars (K from the first micrograph), full (old: truth of the first third, or the "
                        "picker's few-shot count from the first micrograph), zero (no labels: zero-shot pickers "
                        "such as hydra and dog, run and scored on sparse's test micrographs; topaz-em is skipped); "
                        "default: sparse")
    p.add_argument("--label-k", type=int, default=None,
                   help="K: labels per training micrograph (sparse, default 25) or exemplars (default 15)")
    p.add_argument("--exemplars", type=int, default=None,
                   help="--labels full only: N truth particles from the first micrograph (0: truth of the first "
                        "third); default: the picker's own few-shot count (mae: 15), else the first third")
    p.add_argument("--set", action="append", default=[], metavar="PICKER:KEY=VALUE",
                   help="picker setting passed as --set KEY=VALUE to that picker (repeatable)")
    p.add_argument("--peers", default="topaz-em", help="peer programs to run when installed ('none' to skip)")
    p.add_argument("--topaz-exe", default=None, metavar="PATH",
                   help="topaz-em's topaz executable (default: topaz on PATH); see benchmarks/topaz_em_env.sh")
    p.add_argument("--topaz-em-matched", action="store_true",
                   help="run topaz-em at cryopick-topaz's effective settings (old mode) instead of the protocol's")
    p.add_argument("--topaz-em-train-args", default="", metavar="ARGS",
                   help="extra arguments for topaz-em's `topaz train` (ablations, e.g. '--no-pretrained')")
    p.add_argument("--topaz-em-quick", action="store_true", help=argparse.SUPPRESS)  # smoke tests: 1 x 5 steps
    p.add_argument("--topaz-em-scale", action="store_true",
                   help="run cryopick-topaz at topaz-em's integer downsampling factor even without the peer "
                        "(automatic when topaz-em runs)")
    p.add_argument("--topaz-extract-threshold", type=float, default=-6.0,
                   help="topaz extract -t: lowest logit extracted (topaz-em's default -6)")
    p.add_argument("--match", choices=["iou", "distance"], default="iou")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0, help="one seed (see --seeds)")
    p.add_argument("--seeds", default=None,
                   help="comma-separated seeds: each learned picker (and topaz-em) runs once per seed; a seed "
                        "sets the label draw and the picker's --seed (default: --seed)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per subprocess")
    p.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "cryopick-bench", help="reference results are cached in CACHE/topaz-em/<key>.json")
    p.add_argument("--no-cache", dest="use_cache", action="store_false",
                   help="run topaz-em even when a cached result exists (and overwrite it)")
    p.add_argument("--sim-cache", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cryopick" / "bench-sim",
                   help="where simulated data sets are kept between runs")
    p.add_argument("--work", type=Path, default=None, help="run directory (default: a temporary one, removed)")
    p.add_argument("--json-out", type=Path, default=None, help="write all results and the machine info here")
    a = p.parse_args(argv)
    if a.quick:
        a.species = a.species if a.species != ",".join(DEFAULT_SPECIES) else "globular,small"
        a.n_micrographs, a.size = 3, 512
        a.particles = min(a.particles, 25)
    a.settings = [x.strip() for x in a.labels.split(",") if x.strip()]
    bad = [x for x in a.settings if x not in ("sparse", "exemplars", "full", "zero")]
    if bad:
        p.error(f"--labels: unknown setting(s) {bad}; choose from sparse, exemplars, full, zero")
    a.seed_list = [int(x) for x in a.seeds.split(",") if x.strip()] if a.seeds else [a.seed]
    return a


def learned(picker: str) -> bool:
    """Whether ``picker`` trains (so seeds matter); unknown pickers count as learned."""
    try:
        from cryopick.host import build_host

        target = build_host().pickers.load(picker)
        return bool(getattr(target, "trainable", True))
    except Exception:
        return True


def main(argv=None) -> int:
    args = parse_args(argv)
    pickers = [p.strip() for p in args.pickers.split(",") if p.strip()]
    from cryopick.simulate import SUITE

    species = list(SUITE) if args.species == "all" else [s.strip() for s in args.species.split(",") if s.strip()]
    datasets: list[Dataset] = []
    notes: list[str] = []
    if args.sim:
        datasets += sim_datasets(species, args.n_micrographs, args.size, args.particles, args.sim_cache)
    if args.aspire_dir is not None:
        if args.aspire_dir.is_dir():
            datasets += real_datasets(args.aspire_dir, args.quick, kind="aspire")
        else:
            notes.append(f"ASPIRE folder {args.aspire_dir} not found (benchmarks/aspire_sim.py makes it): skipped")
            print(notes[-1], file=sys.stderr)
    if args.real:
        if args.real_dir.is_dir():
            datasets += real_datasets(args.real_dir, args.quick)
        else:
            notes.append(f"real data folder {args.real_dir} not found: real sets skipped")
            print(notes[-1], file=sys.stderr)
    if any(s != "full" for s in args.settings):
        small = [ds.name for ds in datasets if len(ds.micrographs) < 5]
        if small:
            notes.append(f"fewer than 5 micrographs (outside the protocol; 1 training micrograph): {', '.join(small)}")
    peers = [] if args.peers in ("", "none") else [p.strip() for p in args.peers.split(",")]
    topaz_exe = None
    if "topaz-em" in peers:
        topaz_exe = find_topaz(args.topaz_exe)
        if topaz_exe is None:
            notes.append("topaz-em not installed: skipped")
        else:
            mode = ("matched to cryopick-topaz's settings (--topaz-em-matched)" if args.topaz_em_matched else
                    "as BENCHMARKING.md runs it (resnet8, 32 units, GE-binomial, 4 x 250 x 256, -n = true count"
                    " per training micrograph, last epoch, extract -r diameter/2)")
            if args.topaz_em_quick:
                mode += "; QUICK (1 epoch x 5 steps): a smoke test, not a benchmark"
            notes.append(f"topaz-em {topaz_version(topaz_exe)} ({topaz_exe}) {mode}; cache {args.cache / 'topaz-em'}"
                         + ("" if args.use_cache else " (not read: --no-cache)"))
            if "topaz" in pickers and args.topaz_em_matched:
                notes.append("cryopick-topaz runs at topaz-em's integer downsampling factor "
                             "(target_diameter_px = diameter / round(diameter / 24))")
        for n in notes[-2:]:
            if "topaz" in n:
                print(n, file=sys.stderr)
    args.topaz_exe_found = topaz_exe

    tmp = None
    work = args.work
    if work is None:
        tmp = tempfile.TemporaryDirectory(prefix="cryopick-bench-")
        work = Path(tmp.name)
    work.mkdir(parents=True, exist_ok=True)
    machine = machine_info()
    rows = []
    is_learned = {p: learned(p) for p in pickers}
    try:
        for ds in datasets:
            for setting in args.settings:
                for picker in pickers:
                    for seed in (args.seed_list if is_learned[picker] else args.seed_list[:1]):
                        print(f"{ds.name} [{setting}, seed {seed}]: {picker} ...", file=sys.stderr, flush=True)
                        try:
                            r = run_cryopick(picker, ds, setting, seed, work, args)
                        except Exception as exc:
                            r = {"dataset": ds.name, "setting": setting, "seed": seed, "picker": picker,
                                 "status": f"failed ({exc})"}
                        print(f"  {r['status']}" + (f" AP {r['ap']:.3f} F1 {r['f1']:.3f} in {r['wall_s']:.1f} s"
                                                    if r["status"] == "ok" else f": {r.get('error', '')}"),
                              file=sys.stderr, flush=True)
                        rows.append(r)
                if topaz_exe and setting != "zero":  # topaz-em needs labels
                    for seed in args.seed_list:
                        print(f"{ds.name} [{setting}, seed {seed}]: topaz-em ...", file=sys.stderr, flush=True)
                        try:
                            r = run_topaz_em(topaz_exe, ds, setting, seed, work, args)
                        except Exception as exc:  # a peer's quirks must not lose the other results
                            r = {"dataset": ds.name, "setting": setting, "seed": seed, "picker": "topaz-em",
                                 "status": f"failed ({exc})"}
                        print(f"  {r['status']}" + (
                            f" AP {r['ap']:.3f} F1@-6 {r['f1']:.3f} best F1 {r['best_f1']:.3f} in {r['wall_s']:.1f} s"
                            + (" (cached)" if r.get("cached") else "") if r["status"] == "ok" else
                            f": {r.get('error', '')}"), file=sys.stderr, flush=True)
                        rows.append(r)
    finally:
        if tmp is not None:
            tmp.cleanup()

    summary = summarize(rows)
    print(machine_line(machine))
    cmd = "python benchmarks/harness.py " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"command: {cmd.strip()}")
    if args.sim:
        print(f"sim suite: {len(species)} species x {args.n_micrographs} micrographs of {args.size}^2, "
              f"{args.particles} particles each (default SNR, nuisances on)")
    print(f"labels: {', '.join(args.settings)}; seeds {','.join(map(str, args.seed_list))}")
    for n in notes:
        print(n)
    print()
    print(table(summary))
    print()
    print(TABLE_NOTES)
    if args.json_out:
        protocol = {"labels": args.settings, "label_k": args.label_k, "seeds": args.seed_list,
                    "train_micrographs": "first N by name: 2 for 5-12 micrographs, 4 for more (1 under 5)",
                    "label_draw": "df.sample(frac=1, random_state=seed).groupby(rlnMicrographName).head(K)",
                    "topaz_em": "matched" if args.topaz_em_matched else "protocol",
                    "topaz_extract_threshold": args.topaz_extract_threshold, "match": args.match}
        args.json_out.write_text(json.dumps({"machine": machine, "command": cmd.strip(), "notes": notes,
                                             "protocol": protocol, "table_notes": TABLE_NOTES,
                                             "summary": summary, "results": rows},
                                            indent=2, default=str) + "\n")
        print(f"\nwrote {args.json_out}")
    return 0 if all(r.get("status") == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
