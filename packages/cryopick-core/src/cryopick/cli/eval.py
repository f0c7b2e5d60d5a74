"""``cryopick eval``: precision, recall, F1, AP of picks against ground truth.

Examples::

    cryopick eval --picks picks.star --truth truth.star --diameter 40
    cryopick eval -P project.h5 --truth truth.star --match distance --json
    cryopick eval -P project.h5 --truth truth.star --micrographs 'mic_00[4-6]'

For a project run, the micrographs its model was trained on are left out (``--include-labelled`` keeps
them); the output says which micrographs were scored.
"""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.cli.options import emit


@click.command("eval")
@click.option("--picks", help="Coordinate file with picks (scores used for AP when present).")
@click.option("--project", "-P", type=click.Path(path_type=Path), help="Evaluate a run in this project instead.")
@click.option("--run", "run_id", help="Run id (default: the latest).")
@click.option("--truth", required=True, help="Ground-truth coordinate file.")
@click.option("--micrographs", "-m", "micrographs", multiple=True,
              help="Only these micrographs: names, file names or globs of either (repeatable).")
@click.option("--include-labelled", is_flag=True,
              help="Also score the micrographs the run's model was trained on (left out by default).")
@click.option("--diameter", help="Particle diameter in pixels (default: the project's).")
@click.option("--pixel-size", type=float, help="Pixel size in Å, for --diameter in Å (e.g. 150A).")
@click.option("--match", type=click.Choice(["iou", "distance"]), default="iou", show_default=True)
@click.option("--iou", "iou_threshold", type=float, default=0.5, show_default=True)
@click.option("--radius", type=float, help="Matching radius in pixels for --match distance (default: diameter/2).")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(picks, project, run_id, truth, micrographs, include_labelled, diameter, pixel_size, match,
             iou_threshold, radius, as_json):
    """Score picks against TRUTH with one-to-one matching."""
    from cryopick.config import parse_diameter
    from cryopick.errors import ConfigError
    from cryopick.io.coords import read_coordinates
    from cryopick.pipeline import open_project
    from cryopick.stages.evaluate import evaluate_picks, evaluate_run, select_micrographs

    truth_sets = read_coordinates(truth)
    d = parse_diameter(diameter, pixel_size) if diameter else None
    kw = dict(match=match, iou_threshold=iou_threshold, radius_px=radius)
    if project:
        proj = open_project(project, "r")
        try:
            run_id = run_id or proj.latest_run()
            names = select_micrographs(proj.candidates(run_id) if run_id in proj.runs() else [], micrographs)
            result = evaluate_run(proj, run_id, truth_sets, d, names=names, include_labelled=include_labelled,
                                  save=False, **kw)
        finally:
            proj.store.close()
    elif picks:
        if d is None:
            raise ConfigError("--diameter is required")
        picked = read_coordinates(picks)
        names = select_micrographs(set(picked) | set(truth_sets), micrographs) if micrographs else None
        result = evaluate_picks(picked, truth_sets, d, names=names, **kw)
    else:
        raise ConfigError("give --picks FILE or --project P.h5")
    r = result.to_dict()
    text = (f"{result.describe()}{f' of run {run_id}' if project else ''}\n"
            f"{r['n_picks']} picks, {r['n_truth']} true particles, {r['n_tp']} matched ({match})\n"
            f"precision {r['precision']:.3f}  recall {r['recall']:.3f}  F1 {r['f1']:.3f}  "
            f"AP {r['average_precision']:.3f}  best F1 {r['best_f1']:.3f}")
    emit(r, as_json, text)
