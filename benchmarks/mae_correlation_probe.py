"""The template-correlation term (``correlation``) on a stored mae run, without retraining: for each weight,
AP / best F1 over all candidates of the test micrographs and F1 at the cut re-calibrated with that weight
(``MAEPicker._calibrate``), plus precision at a few recalls. The stored model's template (or, for a run stored
without one, a template rebuilt from its exemplars) gives the correlation; its norm comes from the reference
micrograph and the exemplars, as training computes it.

Usage (a harness run kept with ``--work DIR``)::

    python benchmarks/mae_correlation_probe.py DIR/<set>/exemplars-seed0/mae/out/project.h5 TRUTH.star \
        DIAMETER_PX TEST_MIC1,TEST_MIC2,... [--weights 0,0.1,0.25,0.5]
"""

from __future__ import annotations

import sys

import numpy as np


def main(argv=None) -> int:
    # benchmarks/ is on sys.path when this script runs
    from mae_cut_probe import correlation_line, load_stored_run, weights_parser

    args = weights_parser(__doc__.splitlines()[0], "0,0.1,0.25,0.5").parse_args(argv)

    from cryopick.recentre import correlation_norm, radial_template

    run = load_stored_run(args, {})
    picker, d = run.picker, run.d_pre
    if picker._template is None:
        picker._template = radial_template(run.ref_image, run.exemplars.xy, picker.config.recentre_template * d)
    norm, picker._exemplar_z = correlation_norm(run.ref_image, run.exemplars.xy, picker.config.recentre_template * d,
                                                picker.config.recentre * d)
    print(f"exemplars' leave-one-out correlation, robust z: median (the clip) {norm:.2f}, "
          f"range {picker._exemplar_z.min():.2f}-{picker._exemplar_z.max():.2f}")
    images = {name: run.project.preprocessed(run.info["preprocessing"], name) for name in run.names}
    for weight in (float(v) for v in args.weights.split(",")):
        picker.config.correlation = weight
        picker._correlation = norm if weight > 0 else None
        cut = picker._calibrate(run.ref_image, run.exemplars, d, np.random.default_rng(0))["threshold"]
        print(correlation_line(weight, picker, images, d, run.truth, args.diameter, cut), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
