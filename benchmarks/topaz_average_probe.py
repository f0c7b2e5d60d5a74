"""Paired test of topaz's weight averaging: one training, scored with its last weights and its averaged weights.

Usage::

    python benchmarks/topaz_average_probe.py SET_DIR SPLIT_SEED TRAIN_SEED OUT [--count N] [--fraction 0.5] [--set KEY=VALUE ...]

``SET_DIR`` is one set of the harness's layout (``mrc/*.mrc``, ``labels.star``, ``meta.json`` with
``diameter_px``: a real set of ../shared/data/real or an ASPIRE set of ``aspire_sim.py``). The protocol's sparse
labels (25 on each of the first 2 micrographs, ``SPLIT_SEED``; ``harness.protocol_split``) train one topaz
network with ``cryopick run --seed TRAIN_SEED --set average_fraction=F`` (``--count``: the particles per
micrograph, given, so both networks share pi and no count pilots run). The weights before averaging are kept
aside; both networks then score the test micrographs (tta=4) and are evaluated as
``benchmarks/topaz_rescore.py`` does: AP, best F1 and F1 at the cut the run calibrated. Prints both and writes
``OUT/probe.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402


def main(argv=None) -> int:
    from cryopick.cli.main import main as cryopick_main
    from cryopick.host import build_host
    from cryopick.io import read_coordinates
    from cryopick.io.names import match_names
    from cryopick.metrics import evaluate
    from cryopick.pickers import make_picker
    from cryopick.pipeline import open_project
    from cryopick_topaz.picker import TopazPicker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set_dir", type=Path)
    ap.add_argument("split_seed", type=int)
    ap.add_argument("train_seed", type=int)
    ap.add_argument("out", type=Path)
    ap.add_argument("--count", type=float, help="particles per micrograph (default: estimated by the pilots)")
    ap.add_argument("--fraction", type=float, default=0.5, help="average_fraction")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="more topaz settings for the run (for example precision=float32)")
    args = ap.parse_args(argv)

    ds = [d for d in harness.real_datasets(args.set_dir.parent, False) if d.name.endswith(":" + args.set_dir.name)][0]
    split = harness.protocol_split(ds, "sparse", 25, args.split_seed)
    mics = args.out / "mics"
    harness.link_run_micrographs(ds, split, mics)
    harness.write_split_labels(split, args.out / "labels.star")

    last = []  # the final network's weights before averaging (the count pilots' come first)
    averaged = TopazPicker._set_averaged

    def keep_last(self, model, mean_weights, minibatch):
        last.append(copy.deepcopy(model.state_dict()))
        return averaged(self, model, mean_weights, minibatch)

    TopazPicker._set_averaged = keep_last
    cmd = ["-q", "run", "--picker", "topaz", "--micrographs", str(mics / "*.mrc"), "--labels",
           str(args.out / "labels.star"), "--truth", str(ds.truth), "--diameter", f"{ds.diameter_px:g}",
           "--out", str(args.out / "out"), "--seed", str(args.train_seed), "--set", f"average_fraction={args.fraction}"]
    if args.count is not None:
        cmd += ["--particles-per-micrograph", f"{args.count:g}"]
    for setting in args.settings:
        cmd += ["--set", setting]
    t0 = time.perf_counter()
    if cryopick_main(cmd) != 0:
        return 1
    print(f"trained in {time.perf_counter() - t0:.0f} s", flush=True)

    project = open_project(str(args.out / "out" / "project.h5"), "r")
    run = project.latest_run()
    info = project.run_info(run)
    state = project.model(info["model"])
    training = state.config.get("training", {})
    known = list(project.candidates(run))
    found = read_coordinates(str(ds.truth))
    to_id, _ = match_names(found, known)
    truth = {to_id[k]: v for k, v in found.items() if k in to_id}
    test = sorted(truth)[len(split.train):]
    calib = sorted(match_names(training.get("threshold_micrographs", []), known)[0].values())
    expected = float(training["expected_particles"])
    picker = make_picker(build_host(), "topaz", {}, "cpu", 0, progress=False)
    picker.load(state)
    images = {n: project.preprocessed(info["preprocessing"], n) for n in sorted(set(test) | set(calib))}
    result = {"set": ds.name, "split_seed": args.split_seed, "train_seed": args.train_seed,
              "fraction": args.fraction, "count": expected, "settings": args.settings,
              "precision": training.get("precision", "float32")}

    def evaluate_weights(tag: str) -> None:
        cands = {}
        for n, (image, factor) in images.items():
            d = ds.diameter_px / ((factor[0] + factor[1]) / 2)
            cands[n] = picker.score(image, d, tta=4).scaled((1 / factor[0], 1 / factor[1]))
        scores = np.sort(np.concatenate([cands[n].score for n in calib]))[::-1]
        cut = float(scores[min(max(int(round(expected * len(calib))), 1), scores.size) - 1])
        picks = {n: cands[n].subset(np.flatnonzero(cands[n].score >= cut)) for n in test}
        ev = evaluate(picks, {n: truth[n] for n in test}, diameter_px=ds.diameter_px,
                      candidates={n: cands[n] for n in test})
        result[tag] = {"ap": round(ev.average_precision, 4), "best_f1": round(ev.best_f1, 4), "f1": round(ev.f1, 4)}
        print(f"{tag:9} AP {ev.average_precision:.3f}  best F1 {ev.best_f1:.3f}  F1 at cut {ev.f1:.3f}", flush=True)

    evaluate_weights("averaged" if last else "last")
    if last:
        picker.model.load_state_dict(last[-1])  # a new model object is not made: forget what it scored
        picker._scorer, picker._scored = None, (None, {})
        evaluate_weights("last")
    (args.out / "probe.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
