"""Benchmark of cryopick-active (paper Table 1 protocol; issue 12): AP after 10, 25, 50 and 100 labels chosen by
the loop with the simulated oracle (entropy acquisition), against random acquisition (same loop, random
regions) and against topaz trained on the same number of truth particles drawn at random.

Per data set, micrographs sorted by name: the first N train (2 for 5-12 micrographs, 4 for more, as in
benchmarks/harness.py) and the others are the test set. The loop asks only about the training micrographs;
every AP is measured on the test micrographs (IoU >= 0.5 box matching, cryopick.metrics). Topaz runs through
the public CLI (``cryopick run --picker topaz --labels ... --truth ... --json``), which evaluates on the
micrographs without labels; its time includes its own preprocessing. Active times are the loop's (features
once, then fits), without the person.

Examples::

    # everything: the real sets of ../shared/data/real and three simulated species
    python benchmarks/bench_active.py --json-out bench_active.json
    # a quick smoke test on one small simulated set
    python benchmarks/bench_active.py --no-real --species globular --sim-micrographs 3 --sim-size 384 \\
        --budgets 10,25 --topaz-set preset=tiny --features filters
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import DEFAULT_REAL, Dataset, n_train_micrographs, read_truth, real_datasets, sim_datasets  # noqa: E402


def load_items(picker, ds: Dataset, names: list[Path]):
    """Preprocessed images, features and truth (preprocessed pixels) of ``names``."""
    from cryopick.io.micrographs import read_micrograph
    from cryopick.particles import Particles
    from cryopick.progress import progress
    from cryopick.stages.preprocess import preprocess_image
    from cryopick_active.session import Item

    truth_xy = read_truth(ds.truth)
    items, truth = [], {}
    for path in progress(names, f"{ds.name}: features"):
        image, info = read_micrograph(path)
        pre = preprocess_image(picker, np.asarray(image, dtype=np.float32), ds.diameter_px, info.pixel_size_a)
        items.append(Item(path.stem, pre.image, picker.features(pre.image), pre.factor))
        xy = truth_xy.get(path.stem, np.zeros((0, 2)))
        truth[path.stem] = Particles(xy[:, 0], xy[:, 1]).scaled(pre.factor)
    return items, truth


def add_dataset_arguments(ap: argparse.ArgumentParser) -> None:
    """The data set options of this script and ``active_ceiling.py``: real sets and simulated species."""
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL, help="Folder of real sets (<set>/mrc, labels.star).")
    ap.add_argument("--no-real", action="store_true")
    ap.add_argument("--species", default="globular,small,asymmetric",
                    help="Simulated species ('' for none); a species' set depends on its place in the list.")
    ap.add_argument("--sim-micrographs", type=int, default=6)
    ap.add_argument("--sim-size", type=int, default=1024)
    ap.add_argument("--sim-particles", type=int, default=80)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cryopick-bench-sim")


def datasets(args) -> list[Dataset]:
    """The data sets ``add_dataset_arguments``' options name."""
    sets: list[Dataset] = []
    if not args.no_real and args.real.is_dir():
        sets += real_datasets(args.real, quick=False)
    species = [s for s in args.species.split(",") if s]
    if species:
        sets += sim_datasets(species, args.sim_micrographs, args.sim_size, args.sim_particles, args.cache)
    return sets


#: --active-set values, for every loop of the run.
ACTIVE_SET: dict[str, str] = {}


def run_loop(ds: Dataset, train: list[Path], test: list[Path], acquisition: str, budgets: list[int], per_round: int,
             features: str, seed: int) -> dict:
    from cryopick.host import build_host
    from cryopick.pickers import make_picker
    from cryopick_active.oracles import SimulatedOracle
    from cryopick_active.session import ActiveSession

    picker = make_picker(build_host(), "active", {**ACTIVE_SET, "features": features, "acquisition": acquisition},
                         "cpu", seed)
    t0 = time.perf_counter()
    items, truth = load_items(picker, ds, train + test)
    t_features = time.perf_counter() - t0
    d_pre = ds.diameter_px / items[0].factor[0]
    session = ActiveSession(picker, items, d_pre, truth=truth, eval_names=[p.stem for p in test],
                            query_names=[p.stem for p in train], seed=seed)
    oracle = SimulatedOracle(truth, d_pre)
    session.fit()
    out = {"features_s": round(t_features, 1), "ap0": round(session.evaluate()["ap"], 4), "ap": {}, "f1": {},
           "best_f1": {}, "loop_s": {}}
    t1 = time.perf_counter()
    todo = sorted(budgets)
    while todo:
        report = session.run_round(oracle, min(per_round, todo[0] - session.asked))
        if report is None:
            break
        while todo and session.asked >= todo[0]:
            out["ap"][todo[0]] = round(report.ap, 4)
            out["f1"][todo[0]] = round(report.f1, 4)  # at the picker's default cut-off
            out["best_f1"][todo[0]] = round(report.best_f1, 4)
            out["loop_s"][todo[0]] = round(time.perf_counter() - t1, 1)
            todo.pop(0)
    out["positives"], out["negatives"] = session.n_labels()
    return out


def random_truth(train: list[str], truth: dict, n: int, rng: np.random.Generator) -> list[tuple[str, int]]:
    """``(micrograph, index)`` of ``n`` truth particles (``truth``: name -> ``(k, 2)`` centres) drawn at random over
    the ``train`` micrographs, fewer where they hold fewer: topaz's labels here, and ``active_ceiling.py``'s
    ``random`` label set (the same draw for the same seed)."""
    pool = [(m, i) for m in train for i in range(len(truth.get(m, ())))]
    return [pool[i] for i in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]


def run_topaz(ds: Dataset, train: list[Path], test: list[Path], n: int, seed: int, settings: list[str],
              work: Path) -> dict:
    """topaz on ``n`` truth particles drawn at random from the training micrographs (through the CLI)."""
    import pandas as pd
    import starfile

    truth = read_truth(ds.truth)
    drawn = random_truth([p.stem for p in train], truth, n, np.random.default_rng(seed))
    work.mkdir(parents=True, exist_ok=True)
    labels = work / f"labels-{n}.star"
    starfile.write(pd.DataFrame({"rlnMicrographName": [m + ".mrc" for m, _ in drawn],
                                 "rlnCoordinateX": [truth[m][i][0] for m, i in drawn],
                                 "rlnCoordinateY": [truth[m][i][1] for m, i in drawn]}), labels, overwrite=True)
    labelled = {m for m, _ in drawn}
    mics = [str(p) for p in train if p.stem in labelled] + [str(p) for p in test]
    cmd = [sys.executable, "-m", "cryopick.cli.main", "-q", "run", "--picker", "topaz", "--micrographs", *mics,
           "--labels", str(labels), "--truth", str(ds.truth), "--diameter", str(ds.diameter_px), "--seed", str(seed),
           "--out", str(work / f"topaz-{n}"), "--json"]
    for s in settings:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1], "seconds": round(seconds, 1)}
    e = json.loads(proc.stdout)["evaluation"]
    return {"ap": e["average_precision"], "best_f1": e["best_f1"], "seconds": round(seconds, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(ap)
    ap.add_argument("--budgets", default="10,25,50,100", help="Label counts at which AP is reported.")
    ap.add_argument("--per-round", type=int, default=5, help="Regions per round (5 reaches 10, 25, 50, 100 exactly).")
    ap.add_argument("--features", default=None, help="Feature provider (default: the active picker's).")
    ap.add_argument("--active-set", action="append", default=[], metavar="KEY=VALUE",
                    help="active picker settings (e.g. nms=local-max).")
    ap.add_argument("--topaz-set", action="append", default=[], metavar="KEY=VALUE", help="topaz --set values.")
    ap.add_argument("--no-topaz", action="store_true")
    ap.add_argument("--no-random", action="store_true", help="Skip the random-questions loop.")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)
    ACTIVE_SET.update(kv.split("=", 1) for kv in args.active_set)
    budgets = [int(b) for b in args.budgets.split(",")]
    if args.features is None:
        from cryopick_active.picker import ActiveConfig

        args.features = ActiveConfig().features
    sets = datasets(args)
    results = []
    work = Path(tempfile.mkdtemp(prefix="bench-active-"))
    for ds in sets:
        mics = sorted(ds.micrographs)
        n_train = n_train_micrographs(len(mics))
        train, test = mics[:n_train], mics[n_train:]
        row = {"dataset": ds.name, "train": len(train), "test": len(test), "features": args.features}
        row["active"] = run_loop(ds, train, test, ACTIVE_SET.get("acquisition", "entropy"), budgets, args.per_round,
                                 args.features, args.seed)
        if not args.no_random:
            row["random"] = run_loop(ds, train, test, "random", budgets, args.per_round, args.features, args.seed)
        if not args.no_topaz:
            row["topaz"] = {n: run_topaz(ds, train, test, n, args.seed, args.topaz_set, work / ds.name.replace(":", "-"))
                            for n in budgets}
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(table(results, budgets))
    if args.json_out:
        args.json_out.write_text(json.dumps({"budgets": budgets, "per_round": args.per_round, "results": results},
                                            indent=2) + "\n")
    return 0


def table(results: list[dict], budgets: list[int]) -> str:
    head = f"{'data set':28} {'method':8} " + " ".join(f"{'AP@' + str(b):>7}" for b in budgets) + "   time (s)"
    lines = [head, "-" * len(head)]
    for r in results:
        for method in ("active", "random", "topaz"):
            if method not in r:
                continue
            m = r[method]
            if method == "topaz":
                aps = [m[b].get("ap") for b in budgets]
                secs = "/".join(str(m[b].get("seconds")) for b in budgets)
            else:
                aps = [m["ap"].get(b) for b in budgets]
                secs = f"{m['features_s']} + " + "/".join(str(m["loop_s"].get(b)) for b in budgets)
            cells = " ".join(f"{a:7.3f}" if isinstance(a, float) else f"{'-':>7}" for a in aps)
            lines.append(f"{r['dataset']:28} {method:8} {cells}   {secs}")
    lines += ["", "F1 at the default cut-off (best F1), active questions"]
    for r in results:
        if "active" in r and "f1" in r["active"]:
            m = r["active"]
            cells = "  ".join(f"{b}: {m['f1'].get(b, float('nan')):.3f} ({m['best_f1'].get(b, float('nan')):.3f})"
                              for b in budgets)
            lines.append(f"{r['dataset']:28} {cells}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
