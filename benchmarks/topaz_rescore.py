"""Re-score a stored cryopick-topaz run with test-time augmentation, without retraining.

Usage (a harness run kept with ``--work DIR``, or any ``cryopick run`` project with the truth known)::

    python benchmarks/topaz_rescore.py DIR/<set>/sparse-seed0/topaz/out/project.h5 TRUTH.star DIAMETER_PX \
        [--train-mics 2] [--tta 1,2,4,8]

The run's network scores the test micrographs (the truth's micrographs after the first ``--train-mics``,
sorted by name, as the harness splits them) once per ``tta`` value (``TopazConfig.tta``: the mean map over
that many rotations/mirrors). For each: AP over all candidates, the best F1, and the F1 at the cut the picker
would calibrate (the score giving the run's particle count per micrograph on the run's calibration
micrographs, ``TopazPicker._calibrate``). Training (the count pilots included) does not depend on ``tta``, so
these are the numbers an end-to-end run with that ``tta`` gives.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main(argv=None) -> int:
    from cryopick.host import build_host
    from cryopick.io import read_coordinates
    from cryopick.io.names import match_names
    from cryopick.metrics import evaluate
    from cryopick.pickers import make_picker
    from cryopick.pipeline import open_project

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("project")
    ap.add_argument("truth")
    ap.add_argument("diameter", type=float, help="particle diameter in original pixels")
    ap.add_argument("--train-mics", type=int, default=2, help="micrographs (sorted by name) that trained")
    ap.add_argument("--tta", default="1,4", help="comma-separated group sizes (1, 2, 4, 8)")
    args = ap.parse_args(argv)

    project = open_project(args.project, "r")
    run = project.latest_run()
    info = project.run_info(run)
    state = project.model(info["model"])
    training = state.config.get("training", {})
    known = list(project.candidates(run))  # the project's micrograph IDs
    found = read_coordinates(args.truth)
    to_id, _ = match_names(found, known)
    truth = {to_id[k]: v for k, v in found.items() if k in to_id}
    test = sorted(truth)[args.train_mics:]
    calib_names = training.get("threshold_micrographs", [])
    calib = sorted(match_names(calib_names, known)[0].values())
    expected = float(training["expected_particles"])
    picker = make_picker(build_host(), "topaz", {}, "cpu", 0, progress=False)
    picker.load(state)
    images = {n: project.preprocessed(info["preprocessing"], n) for n in sorted(set(test) | set(calib))}
    print(f"{args.project}: {len(test)} test micrographs, count {expected:.1f} per micrograph "
          f"({training.get('expected_particles_source', '?')}), calibration on {len(calib)}", flush=True)
    for tta in (int(t) for t in args.tta.split(",")):
        t0 = time.perf_counter()
        cands = {}
        for n, (image, factor) in images.items():
            d = args.diameter / ((factor[0] + factor[1]) / 2)
            cands[n] = picker.score(image, d, tta=tta).scaled((1 / factor[0], 1 / factor[1]))
        scores = np.sort(np.concatenate([cands[n].score for n in calib]))[::-1] if calib else np.zeros(0)
        k = int(round(expected * len(calib)))
        cut = float(scores[min(max(k, 1), scores.size) - 1]) if scores.size else 0.0
        picks = {n: cands[n].subset(np.flatnonzero(cands[n].score >= cut)) for n in test}
        ev = evaluate(picks, {n: truth[n] for n in test}, diameter_px=args.diameter,
                      candidates={n: cands[n] for n in test})
        print(f"tta {tta}: AP {ev.average_precision:.3f}  best F1 {ev.best_f1:.3f}  F1 at cut {ev.f1:.3f} "
              f"(P {ev.precision:.3f} R {ev.recall:.3f}, cut {cut:.3g})  {time.perf_counter() - t0:.0f} s",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
