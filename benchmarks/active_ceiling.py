"""The ceiling of cryopick-active's model (issue 12): the per-pixel regression (eq. 1-4, with the template terms)
fitted once on labels as good as they get, with no question asked, AP on the loop's test micrographs.

Where the loop's 50 answers do not reach topaz with 50 random labels (bench_active.py), this says whether better
questions could: if the model given every particle of the training micrographs stays below topaz, no acquisition
can close the gap and the features (or the model) are the limit. Label sets, per data set (the same train/test
split as bench_active.py: the first micrographs by name are asked about, the others scored):

- ``all``: every truth particle of the training micrographs as a positive answer, and twice as many background
  points (uniform, at least half a diameter from any particle and a diameter from the edge);
- ``random``: N truth particles drawn at random over the training micrographs (the very labels topaz gets in
  bench_active.py with the same seed), no background;
- ``random+bg``: the same N, and N background points.

Examples::

    python benchmarks/active_ceiling.py --real REAL_TRPV1_ONLY --species '' --n 50
    python benchmarks/active_ceiling.py --no-real --species small,asymmetric --active-set nms_fraction=0.4
    python benchmarks/active_ceiling.py --no-real --species globular --sim-micrographs 3 --sim-size 384  # smoke
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_active import add_dataset_arguments, datasets, load_items, random_truth  # noqa: E402
from harness import n_train_micrographs  # noqa: E402

LABEL_SETS = ("all", "random", "random+bg")


def background(shape: tuple[int, int], particles: np.ndarray, diameter: float, k: int,
               rng: np.random.Generator) -> np.ndarray:
    """``k`` uniform points at least a diameter from the edge and half a diameter from every particle."""
    from scipy.spatial import cKDTree

    h, w = shape
    if h <= 2 * diameter or w <= 2 * diameter:
        raise SystemExit(f"micrograph {w}x{h} px is too small for background points of a {diameter:g} px particle")
    tree = cKDTree(particles) if len(particles) else None
    out: list[np.ndarray] = []
    for _ in range(1000):
        p = rng.uniform([diameter, diameter], [w - diameter, h - diameter], size=(4 * k, 2))
        if tree is not None:
            p = p[tree.query(p)[0] > 0.5 * diameter]
        out.extend(p)
        if len(out) >= k:
            return np.asarray(out[:k])
    raise SystemExit(f"no room for {k} background points half a diameter from every particle")


def label_sets(items, truth: dict, train: list[str], diameter: float, n: int, rng: np.random.Generator) -> dict:
    """``{label set: {micrograph: Particles (score 1 particle, 0 background)}}`` (module docs)."""
    from cryopick.particles import Particles

    shapes = {it.name: it.image.shape for it in items}

    def labels(pos: np.ndarray, neg: np.ndarray) -> Particles:
        xy = np.concatenate([pos.reshape(-1, 2), neg.reshape(-1, 2)])
        return Particles(xy[:, 0], xy[:, 1], np.r_[np.ones(len(pos)), np.zeros(len(neg))])

    every = {m: truth[m].xy for m in train}
    drawn = random_truth(train, every, n, rng)  # topaz's labels in bench_active.py, for the same seed
    if len(drawn) < n:
        raise SystemExit(f"the training micrographs hold {len(drawn)} particles, fewer than --n {n}")
    some = {m: every[m][[i for mm, i in drawn if mm == m]] for m in train}
    per_mic = -(-n // len(train))
    return {
        "all": {m: labels(every[m], background(shapes[m], every[m], diameter, 2 * len(every[m]), rng)) for m in train},
        "random": {m: labels(some[m], np.zeros((0, 2))) for m in train},
        "random+bg": {m: labels(some[m], background(shapes[m], every[m], diameter, per_mic, rng)) for m in train},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_dataset_arguments(ap)
    ap.add_argument("--n", type=int, default=50, help="Truth particles drawn for the 'random' label sets.")
    ap.add_argument("--active-set", action="append", default=[], metavar="KEY=VALUE",
                    help="active picker settings (e.g. features=hydra, nms_fraction=0.4).")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json-out", type=Path)
    args = ap.parse_args(argv)

    from cryopick.host import build_host
    from cryopick.pickers import make_picker
    from cryopick_active.session import ActiveSession

    settings = dict(kv.split("=", 1) for kv in args.active_set)
    sets = datasets(args)
    if not sets:
        raise SystemExit("no data sets: give --real DIR or --species")
    rows = []
    for ds in sets:
        mics = sorted(ds.micrographs)
        n_train = n_train_micrographs(len(mics))
        train, test = mics[:n_train], mics[n_train:]
        picker = make_picker(build_host(), "active", settings, "cpu", args.seed)
        items, truth = load_items(picker, ds, train + test)
        d_pre = ds.diameter_px / items[0].factor[0]
        rng = np.random.default_rng(args.seed)
        row = {"dataset": ds.name, "train": len(train), "test": len(test), "settings": settings}
        for name, labels in label_sets(items, truth, [p.stem for p in train], d_pre, args.n, rng).items():
            session = ActiveSession(picker, items, d_pre, labels=labels, truth=truth, eval_names=[p.stem for p in test],
                                    query_names=[p.stem for p in train], seed=args.seed)
            session.fit()
            e = session.evaluate()
            pos, neg = session.n_labels()
            row[name] = {"ap": round(e["ap"], 4), "f1": round(e["f1"], 4), "best_f1": round(e["best_f1"], 4),
                         "positives": pos, "background": neg}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    print(f"| data set | {' | '.join(LABEL_SETS)} (AP; F1 at the cut / best F1) |")
    print("|---|" + "---|" * len(LABEL_SETS))
    for row in rows:
        cells = [f"{row[k]['ap']:.3f} ({row[k]['f1']:.3f} / {row[k]['best_f1']:.3f}; {row[k]['positives']}+"
                 f"{row[k]['background']})" for k in LABEL_SETS]
        print(f"| {row['dataset']} | {' | '.join(cells)} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({"n": args.n, "seed": args.seed, "results": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
