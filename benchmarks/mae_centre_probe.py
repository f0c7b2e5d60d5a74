"""Feature centring for a stored mae run, without retraining: AP / F1 at the calibrated cut / best F1 on the
test micrographs for three ways of centring the features before the cosine similarity.

Usage (a harness run kept with ``--work DIR``)::

    python benchmarks/mae_centre_probe.py DIR/<set>/exemplars-seed0/mae/out/project.h5 TRUTH.star DIAMETER_PX \
        TEST_MIC1,TEST_MIC2,...

- ``none``: raw features (the paper; ``--set centre=false``);
- ``ref``: minus the reference micrograph's mean window feature (the default, ``centre=true``);
- ``mic``: exemplars minus the reference's mean, each test micrograph's windows minus that micrograph's own
  mean (random windows of it), which would follow ice and contrast from micrograph to micrograph.

The cut is re-calibrated for each (``MAEPicker._calibrate`` with the same centring).
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv=None) -> int:
    from mae_cut_probe import load_stored_run, stored_run_parser  # benchmarks/ is on sys.path when this script runs

    args = stored_run_parser(__doc__.splitlines()[0]).parse_args(argv)

    from cryopick.stages.evaluate import evaluate_picks
    from cryopick_mae.picker import _mean

    run = load_stored_run(args, {"centre": "true", "linear": "false"})
    project, info, picker, ref_image, d_pre = run.project, run.info, run.picker, run.ref_image, run.d_pre
    window, exemplars, names, truth = run.window, run.exemplars, run.names, run.truth
    mean_ref = picker._feature_mean
    if mean_ref is None:  # a run stored with centre=false
        mean_ref = _mean(picker._random_features(ref_image, window, np.random.default_rng(0)))

    for variant in ("none", "ref", "mic"):
        picks = {}
        for name in names:
            image, f = project.preprocessed(info["preprocessing"], name)
            picker._feature_mean = {"none": None, "ref": mean_ref}.get(variant)
            if variant == "mic":
                picker._feature_mean = _mean(picker._random_features(image, window, np.random.default_rng(0)))
                # the exemplars keep the reference's centring: shift their bank so that the micrograph's
                # mean is subtracted from the windows only
                bank = picker._exemplar_features
                picker._exemplar_features = bank - mean_ref + picker._feature_mean
            picks[name] = picker.score(image, d_pre).scaled((1.0 / f[0], 1.0 / f[1]))
            if variant == "mic":
                picker._exemplar_features = bank
        picker._feature_mean = None if variant == "none" else mean_ref
        cut = picker._calibrate(ref_image, exemplars, d_pre, np.random.default_rng(0))["threshold"]
        r = evaluate_picks({k: v.above(cut) for k, v in picks.items()}, truth, args.diameter,
                           candidates=picks).to_dict()
        per_mic = np.mean([len(v.above(cut)) for v in picks.values()])
        print(f"{variant:5s} AP {r['average_precision']:.3f}  F1 at cut {r['f1']:.3f}  best F1 {r['best_f1']:.3f}  "
              f"AUROC {r['auroc']:.3f}  picks/mic {per_mic:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
