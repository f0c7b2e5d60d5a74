"""The linear probe of mae (``linear``) on a stored mae run, without retraining: AP / best F1 / AUROC on the
test micrographs for the cosine score alone, the probe alone and their standardised sum, over a grid of the
probe's jitter (``linear_jitter``) and inverse L2 strength (``linear_c``).

Usage (a harness run kept with ``--work DIR``; the run's model may have been trained with or without the probe)::

    python benchmarks/mae_linear_probe.py DIR/<set>/exemplars-seed0/mae/out/project.h5 TRUTH.star DIAMETER_PX \
        TEST_MIC1,TEST_MIC2,... [--jitter 0,0.25,0.5,0.75,1] [--c 1,3,10]

Every window's feature is computed once per micrograph; each variant re-scores the cached features and runs
the picker's own peak finding and NMS. The cut is not re-calibrated (AP and best F1 do not depend on it).
"""

from __future__ import annotations

import sys
import numpy as np


def main(argv=None) -> int:
    from mae_cut_probe import load_stored_run, stored_run_parser  # benchmarks/ is on sys.path when this script runs

    p = stored_run_parser(__doc__.splitlines()[0])
    p.add_argument("--jitter", default="0,0.25,0.5,0.75,1", help="comma-separated linear_jitter values")
    p.add_argument("--c", default="1,3,10", help="comma-separated linear_c values")
    args = p.parse_args(argv)

    import torch

    from cryopick.stages.evaluate import evaluate_picks
    from cryopick_mae.picker import _mean

    run = load_stored_run(args, {"centre": "true", "linear": "false"})
    project, info, picker, ref_image, d_pre = run.project, run.info, run.picker, run.ref_image, run.d_pre
    window, exemplars, names, truth = run.window, run.exemplars, run.names, run.truth
    random_features = picker._random_features(ref_image, window, np.random.default_rng(0))
    if picker._feature_mean is None:  # a run stored with centre=false
        picker._feature_mean = _mean(random_features)

    # the _unit features of every window of every test micrograph, captured while the picker scores them
    grids = {}
    model = picker._model
    for name in names:
        image, f = project.preprocessed(info["preprocessing"], name)
        captured = []
        features = model.features
        model.features = lambda x, pooling, _f=features: captured.append(_f(x, pooling)) or captured[-1]
        grid, x0, y0, step, win = picker.score_grid(image, d_pre)
        del model.features
        unit = picker._unit(torch.cat(captured)).reshape(*grid.shape, -1)
        grids[name] = (image, f, unit, (x0, y0, step, win))
    bank = picker._unit(picker._exemplar_features)

    def report(label: str, probe: dict | None, part: str = "sum") -> None:
        picks = {}
        for name, (image, f, unit, (x0, y0, step, win)) in grids.items():
            flat = unit.reshape(-1, unit.shape[-1])
            if part == "probe":
                s = flat @ probe["weight"]
            else:
                s = picker._scores(flat @ bank.T, flat, probe) if probe else picker._cosine(flat @ bank.T)
            grid = s.reshape(unit.shape[:2]).numpy()
            picker.score_grid = lambda im, d, g=grid, o=(x0, y0, step, win): (g, *o)
            picks[name] = picker.score(image, d_pre).scaled((1.0 / f[0], 1.0 / f[1]))
        del picker.score_grid
        r = evaluate_picks(picks, truth, args.diameter, candidates=picks).to_dict()
        print(f"{label:28s} AP {r['average_precision']:.3f}  best F1 {r['best_f1']:.3f}  AUROC {r['auroc']:.3f}",
              flush=True)

    report("cosine (linear=false)", None)
    for jitter in (float(v) for v in args.jitter.split(",")):
        for c in (float(v) for v in args.c.split(",")):
            picker.config.linear_jitter, picker.config.linear_c = jitter, c
            probe = picker._fit_linear(ref_image, exemplars.xy, d_pre, random_features)
            report(f"jitter {jitter:g} C {c:g}: probe", probe, "probe")
            report(f"jitter {jitter:g} C {c:g}: sum", probe)
    return 0


if __name__ == "__main__":
    sys.exit(main())
