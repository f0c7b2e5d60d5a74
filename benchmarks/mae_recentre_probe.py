"""Re-centring (``recentre``) on a stored mae run, without retraining: AP / best F1 / the largest recall any
cut reaches, on the test micrographs, with the score grid's own peaks and with candidates re-centred on the
exemplars' template over a range of search radii (fractions of the diameter), plus where the candidates lie
relative to the particles.

Usage (a harness run kept with ``--work DIR``; the run may have been stored with or without a template: the
template is rebuilt from the stored exemplars)::

    python benchmarks/mae_recentre_probe.py DIR/<set>/exemplars-seed0/mae/out/project.h5 TRUTH.star DIAMETER_PX \
        TEST_MIC1,TEST_MIC2,... [--radii 0.15,0.25,0.35] [--templates 0.5,1]
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv=None) -> int:
    from mae_cut_probe import load_stored_run, stored_run_parser  # benchmarks/ is on sys.path when this script runs

    p = stored_run_parser(__doc__.splitlines()[0])
    p.add_argument("--radii", default="0.15,0.25,0.35", help="comma-separated recentre values")
    p.add_argument("--templates", default="1", help="comma-separated recentre_template values")
    args = p.parse_args(argv)

    from cryopick.recentre import radial_template
    from cryopick.stages.evaluate import evaluate_picks

    run = load_stored_run(args, {})
    picker, d = run.picker, run.d_pre
    images = {name: run.project.preprocessed(run.info["preprocessing"], name) for name in run.names}
    variants = [("score grid's peaks (recentre=0)", None, 0.0)]
    for t in (float(v) for v in args.templates.split(",")):
        template = radial_template(run.ref_image, run.exemplars.xy, t * d)
        variants += [(f"recentre={r:g} template={t:g}", template, r) for r in (float(v) for v in args.radii.split(","))]
    for label, tmpl, radius in variants:
        picker._template, picker.config.recentre = tmpl, radius
        picks = {n: picker.score(im, d).scaled((1.0 / f[0], 1.0 / f[1])) for n, (im, f) in images.items()}
        e = evaluate_picks(picks, run.truth, args.diameter, candidates=picks).evaluation.to_dict(include_curve=True)
        near = np.concatenate([np.linalg.norm(run.truth[n].xy[:, None] - c.xy[None], axis=2).min(axis=1)
                               for n, c in picks.items() if len(c) and len(run.truth.get(n, []))]) / args.diameter
        print(f"{label:32s} AP {e['average_precision']:.3f}  best F1 {e['best_f1']:.3f}  largest recall "
              f"{max(e['curve']['recall']):.3f}  particles with a candidate within 0.1 / 0.2 / 0.3 diameters: "
              + " / ".join(f"{np.mean(near < b):.2f}" for b in (0.1, 0.2, 0.3)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
