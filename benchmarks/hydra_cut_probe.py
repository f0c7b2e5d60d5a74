"""Few-shot hydra's cut-off on a stored run, without retraining: F1 on the test micrographs at cuts derived from
the labelled micrographs alone: the count matched to the generic head (``HydraPicker._matched_cut``), a quantile
of the labelled particles' own scores (the labels are a random sample of the particles, so the q-quantile keeps
about 1 - q of them), the default (``HydraPicker._few_shot_cut``: the lower of the matched cut and the
``cut_quantile`` one), Otsu's and the density cut of all candidates.

Usage (a harness run kept with ``--work DIR``)::

    python benchmarks/hydra_cut_probe.py DIR/<set>/sparse-seed0/hydra/out/project.h5 TRUTH.star \
        DIAMETER_PX TEST_MIC1,TEST_MIC2,... [--quantiles 0.05,0.1,0.2,0.3,0.5]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("project", type=Path)
    p.add_argument("truth", type=Path)
    p.add_argument("diameter", type=float, help="particle diameter in the micrographs' pixels")
    p.add_argument("test", help="comma-separated test micrograph names")
    p.add_argument("--quantiles", default="0.05,0.1,0.2,0.3,0.5")
    args = p.parse_args(argv)

    from hydra_correlation_probe import load_few_shot_run  # benchmarks/ is on sys.path when this script runs

    from cryopick.io import read_coordinates
    from cryopick_hydra.picker import label_scores
    from cryopick.stages.evaluate import evaluate_picks
    from cryopick.threshold import Density, Otsu

    project, info, state, picker, labelled, d = load_few_shot_run(args.project, args.diameter)
    lab_cands = [picker.score(im, d) for im, _ in labelled]
    lab_scores = label_scores(lab_cands, [lab for _, lab in labelled], picker.config.nms_fraction * d)
    all_lab = np.concatenate([c.score for c in lab_cands])
    generic_cut = state.config["info"].get("generic_threshold")
    cuts = {"matched": picker._matched_cut(picker.net, [im for im, _ in labelled], d, generic_cut, lab_cands)}
    for q in (float(v) for v in args.quantiles.split(",")):
        cuts[f"labels' {q:g}-quantile"] = float(np.quantile(lab_scores, q))
    cuts[f"default: lower, q {picker.config.cut_quantile:g}"] = picker._few_shot_cut(picker.net, labelled, d,
                                                                                    generic_cut, lab_cands)
    cuts["otsu (labelled mics)"] = Otsu().cutoff(all_lab)
    cuts["density (labelled mics)"] = Density().cutoff(all_lab)

    names = args.test.split(",")
    truth = {Path(k).stem: v for k, v in read_coordinates(args.truth).items() if Path(k).stem in names}
    picks = {}
    for n in names:
        image, f = project.preprocessed(info["preprocessing"], n)
        picks[n] = picker.score(image, d).scaled((1.0 / f[0], 1.0 / f[1]))
    e = evaluate_picks(picks, truth, args.diameter, candidates=picks).evaluation
    print(f"{args.project}: {len(lab_scores)} labels matched; AP {e.average_precision:.3f}, best F1 {e.best_f1:.3f}, "
          f"{np.mean([len(t) for t in truth.values()]):.0f} true per test micrograph")
    for what, cut in cuts.items():
        kept = {n: c.above(cut) for n, c in picks.items()}
        at = evaluate_picks(kept, truth, args.diameter).evaluation
        print(f"  {what:<26} cut {cut:8.3f}  F1 {at.f1:.3f}  P {at.precision:.3f}  R {at.recall:.3f}  "
              f"{np.mean([len(c) for c in kept.values()]):.0f} picks/mic", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
