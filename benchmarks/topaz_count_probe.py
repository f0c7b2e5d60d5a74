"""topaz's automatic particle count alone: the count pilots of one protocol run, without the final training.

Usage::

    python benchmarks/topaz_count_probe.py SET_DIR SPLIT_SEED OUT [--train-seed S] [--set KEY=VALUE ...]

``SET_DIR`` is one set of the harness's layout (``mrc/*.mrc``, ``labels.star``, ``meta.json``). The protocol's
sparse labels (25 on each of the first 2 micrographs, ``SPLIT_SEED``; ``harness.protocol_split``) go to
``cryopick run --picker topaz --seed TRAIN_SEED`` with the given ``--set`` options (for example
``pilot_fraction=0.125`` or ``count_folds=1``); the run stops once the pilots have estimated the count, which
is exactly the estimate a full run with the same seed and settings trains with (the pilots come first). Prints
the estimate, its curve over the held-out quantiles, the true count on the labelled micrographs and the time
the pilots took, and writes ``OUT/count.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


class _Estimated(BaseException):
    """Raised once the pilots have estimated the count: the final training is not needed here (not an
    ``Exception``, which the command would report as an error)."""


def main(argv=None) -> int:
    import attrs

    from cryopick.cli.main import main as cryopick_main
    from cryopick_topaz.picker import TopazPicker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set_dir", type=Path)
    ap.add_argument("split_seed", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train-seed", type=int, default=0)
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)

    ds = [d for d in harness.real_datasets(args.set_dir.parent, False) if d.name.endswith(":" + args.set_dir.name)][0]
    split = harness.protocol_split(ds, "sparse", 25, args.split_seed)
    mics = args.out / "mics"
    # as the protocol runs: the pilots also draw unlabelled crops from the test micrographs
    harness.link_run_micrographs(ds, split, mics)
    harness.write_split_labels(split, args.out / "labels.star")

    found = {}
    estimate = TopazPicker._estimate_count

    def stop_after(self, *a, **kw):
        t0 = time.perf_counter()
        est = estimate(self, *a, **kw)
        found["estimate"] = None if est is None else attrs.asdict(est)
        found["pilot_s"] = round(time.perf_counter() - t0, 1)
        raise _Estimated

    TopazPicker._estimate_count = stop_after
    cmd = ["-q", "run", "--picker", "topaz", "--micrographs", str(mics / "*.mrc"), "--labels",
           str(args.out / "labels.star"), "--diameter", f"{ds.diameter_px:g}", "--out", str(args.out / "out"),
           "--seed", str(args.train_seed)]
    for s in args.settings:
        cmd += ["--set", s]
    try:
        cryopick_main(cmd)
    except _Estimated:
        pass
    if "estimate" not in found:
        print("the run ended before the count pilots (see its message above)", file=sys.stderr)
        return 1
    result = {"set": ds.name, "split_seed": args.split_seed, "train_seed": args.train_seed,
              "settings": args.settings, "true": split.true_per_train_mic, **found}
    est = found["estimate"]
    if est:
        print(f"{ds.name} split {args.split_seed} train {args.train_seed} {' '.join(args.settings)}: "
              f"estimate {est['particles_per_micrograph']:.1f} (true {split.true_per_train_mic:.1f}; "
              f"ratio {est['particles_per_micrograph'] / split.true_per_train_mic:.2f}), "
              f"curve {[round(v, 1) for v in est['curve']]}, pilots {found['pilot_s']} s", flush=True)
    (args.out / "count.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
