"""Threshold rules for a stored mae run, without retraining: F1 on the test micrographs for each rule.

Usage (a harness run kept with ``--work DIR``)::

    python benchmarks/mae_cut_probe.py DIR/<set>/exemplars-seed0/mae/out/project.h5 TRUTH.star DIAMETER_PX \
        TEST_MIC1,TEST_MIC2,...

Prints, for the run's stored candidates: the density cut-off (the paper's), Otsu, the cut giving 0.75/1/1.5 x
the true count (oracles that know the truth), and the picker's own calibration (``MAEPicker._calibrate``: a
quantile of the exemplars' leave-one-out scores) at several ``recall_quantile`` values.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def describe(picks: dict, truth: dict, diameter: float) -> str:
    from cryopick.stages.evaluate import evaluate_picks

    r = evaluate_picks(picks, truth, diameter).to_dict()
    per_mic = np.mean([len(v) for v in picks.values()])
    return f"P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} picks/mic {per_mic:.0f}"


def stored_run_parser(description: str) -> argparse.ArgumentParser:
    """Arguments of the probes that re-score a stored harness run (this one, ``mae_centre_probe.py``)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("project", type=Path)
    p.add_argument("truth", type=Path)
    p.add_argument("diameter", type=float, help="particle diameter in original pixels")
    p.add_argument("test", help="comma-separated test micrograph names")
    return p


def weights_parser(description: str, default: str) -> argparse.ArgumentParser:
    """:func:`stored_run_parser` with ``--weights`` (the ``correlation`` values a correlation probe re-scores at)."""
    p = stored_run_parser(description)
    p.add_argument("--weights", default=default, help="comma-separated correlation values")
    return p


def correlation_line(weight: float, picker, images: dict, d_pre: float, truth: dict, diameter: float,
                     cut: float) -> str:
    """One line of a correlation probe: ``picker``'s picks on ``images`` (``{name: (image, factor)}``), AP / best
    F1 over all of them, F1 at ``cut`` with the picks per micrograph, and precision at a few recalls."""
    import numpy as np

    from cryopick.stages.evaluate import evaluate_picks

    picks = {n: picker.score(im, d_pre).scaled((1.0 / f[0], 1.0 / f[1])) for n, (im, f) in images.items()}
    e = evaluate_picks(picks, truth, diameter, candidates=picks).evaluation.to_dict(include_curve=True)
    kept = {n: c.above(cut) for n, c in picks.items()}
    at_cut = evaluate_picks(kept, truth, diameter).evaluation
    recall, precision = (np.asarray(e["curve"][k]) for k in ("recall", "precision"))
    pr = " ".join(f"{precision[recall >= r].max() if (recall >= r).any() else 0.0:.2f}" for r in (0.1, 0.5, 0.8, 0.9))
    return (f"correlation={weight:<5g} AP {e['average_precision']:.3f}  best F1 {e['best_f1']:.3f}  F1 at the cut "
            f"{at_cut.f1:.3f} ({np.mean([len(c) for c in kept.values()]):.0f} picks/mic, "
            f"{np.mean([len(t) for t in truth.values()]):.0f} true)  precision at recall 0.1 / 0.5 / 0.8 / 0.9: {pr}")


def load_stored_run(args, overrides: dict):
    """The stored run's project, mae picker (its stored settings with ``overrides``, its model loaded), the
    reference micrograph with its exemplars, and the test micrographs' truth, for a probe that re-scores it."""
    from types import SimpleNamespace

    import attrs
    import torch

    from cryopick.host import build_host
    from cryopick.io import read_coordinates
    from cryopick.pickers import make_picker
    from cryopick.pipeline import open_project

    torch.set_num_threads(1)
    project = open_project(args.project, "r")
    info = project.run_info(project.latest_run())
    state = project.model(info["model"])
    host = build_host()
    # runs stored by older code may hold settings since removed: skip those
    known = {f.name for f in attrs.fields(host.pickers.load("mae").Config)}
    settings = {k: str(v) for k, v in state.config["picker"].items()
                if v is not None and k != "calibrate" and k in known}
    picker = make_picker(host, "mae", {**settings, **overrides}, "cpu", 0)
    picker.load(state)
    reference = state.config["reference"]
    ref_image, factor = project.preprocessed(info["preprocessing"], reference)
    d_pre = args.diameter / factor[0]
    exemplars = project.labels(info.get("label_set") or "train")[reference].scaled((factor[0], factor[1]))
    if picker._correlation is not None:  # the calibration adds each exemplar's own correlation term
        from cryopick.recentre import correlation_norm

        _, picker._exemplar_z = correlation_norm(ref_image, exemplars.xy, picker.config.recentre_template * d_pre,
                                                 picker.config.recentre * d_pre)
    names = args.test.split(",")
    return SimpleNamespace(
        project=project, info=info, picker=picker, ref_image=ref_image, d_pre=d_pre, names=names,
        window=picker.window_px(d_pre),
        exemplars=exemplars,
        truth={Path(k).stem: v for k, v in read_coordinates(args.truth).items() if Path(k).stem in names})


def main(argv=None) -> int:
    p = stored_run_parser(__doc__.splitlines()[0])
    p.add_argument("--draws", type=int, default=10, help="random grid offsets per exemplar (calibration)")
    args = p.parse_args(argv)

    from cryopick.threshold import Density, Otsu

    stored = load_stored_run(args, {})
    picker, image, exemplars, truth = stored.picker, stored.ref_image, stored.exemplars, stored.truth
    candidates = stored.project.candidates(stored.project.latest_run())
    test = {k: candidates[k] for k in stored.names}
    n_true = np.mean([len(v) for v in truth.values()])
    d = args.diameter

    def at(cut: float) -> str:
        return describe({k: c.above(cut) for k, c in test.items()}, truth, d)

    print(f"true/mic {n_true:.0f}, candidates/mic {np.mean([len(c) for c in test.values()]):.0f}")
    print("density       ", describe({k: c.above(Density().cutoff(c.score)) for k, c in test.items()}, truth, d))
    print("otsu          ", describe({k: c.above(Otsu().cutoff(c.score)) for k, c in test.items()}, truth, d))
    scores = np.sort(np.concatenate([c.score for c in test.values()]))[::-1]
    for m in (0.75, 1.0, 1.5):
        print(f"oracle {m:g} x count", at(scores[min(scores.size, int(m * n_true * len(test))) - 1]))
    d_pre = stored.d_pre
    for q in (0.05, 0.1, 0.25, 0.5):
        picker.config.recall_quantile = q
        cal = picker._calibrate(image, exemplars, d_pre, np.random.default_rng(0), draws=args.draws)
        print(f"calibrated q{q:<5g}", at(cal["threshold"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
