"""The labels' template-correlation term (``correlation``) on a stored few-shot hydra run, without retraining:
for each weight, AP / best F1 over all candidates of the test micrographs and F1 at the few-shot cut
re-computed with that weight (``HydraPicker._few_shot_cut``, the default cut). The template and its clip are
rebuilt from the run's labels, as training builds them, so a run trained with any ``correlation`` (0 included)
can be probed.

Usage (a harness run kept with ``--work DIR``)::

    python benchmarks/hydra_correlation_probe.py DIR/<set>/sparse-seed0/hydra/out/project.h5 TRUTH.star \
        DIAMETER_PX TEST_MIC1,TEST_MIC2,... [--weights 0,0.25,0.5,1]
"""

from __future__ import annotations

import sys
from pathlib import Path



def load_few_shot_run(path: Path, diameter: float):
    """A stored few-shot hydra run, as the probes need it: ``(project, info, state, picker, labelled, d)``, with
    ``labelled`` the ``(image, labels)`` pairs of its labelled micrographs (preprocessed) and ``d`` the particle
    diameter there (``diameter``: in the micrographs' pixels)."""
    import torch

    from cryopick.host import build_host
    from cryopick.pickers import make_picker
    from cryopick.pipeline import open_project

    torch.set_num_threads(1)
    project = open_project(path, "r")
    info = project.run_info(project.latest_run())
    state = project.model(info["model"])
    if state.config.get("head") != "few-shot":
        raise SystemExit(f"{path}: not a few-shot hydra run (head {state.config.get('head')!r})")
    settings = {k: str(v) for k, v in state.config["picker"].items() if v is not None and not isinstance(v, list)}
    picker = make_picker(build_host(), "hydra", settings, "cpu", 0)
    picker.load(state)
    labelled, d = [], None
    for name, labels in project.labels(info.get("label_set") or "train").items():
        image, factor = project.preprocessed(info["preprocessing"], name)
        labelled.append((image, labels.scaled((factor[0], factor[1]))))
        d = diameter / factor[0]
    return project, info, state, picker, labelled, d


def main(argv=None) -> int:
    from mae_cut_probe import correlation_line, weights_parser  # benchmarks/ is on sys.path when this script runs

    args = weights_parser(__doc__.splitlines()[0], "0,0.25,0.5,1").parse_args(argv)

    from cryopick.io import read_coordinates

    project, info, state, picker, labelled, d = load_few_shot_run(args.project, args.diameter)
    picker._fit_correlation(labelled, d)
    print(f"labels' leave-one-out correlation, robust z: median (the clip) {picker._clip:.2f}")
    names = args.test.split(",")
    truth = {Path(k).stem: v for k, v in read_coordinates(args.truth).items() if Path(k).stem in names}
    images = {n: project.preprocessed(info["preprocessing"], n) for n in names}
    generic_cut = state.config["info"].get("generic_threshold")
    for weight in (float(v) for v in args.weights.split(",")):
        picker.config.correlation = weight
        cut = picker._few_shot_cut(picker.net, labelled, d, generic_cut)
        print(correlation_line(weight, picker, images, d, truth, args.diameter, cut), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
