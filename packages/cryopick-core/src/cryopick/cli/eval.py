"""``cryopick eval``: precision, recall, F1, AP of picks against ground truth.

Examples::

    cryopick eval --picks picks.star --truth truth.star --diameter 40
    cryopick eval -P project.h5 --truth truth.star --match distance --json
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
@click.option("--diameter", help="Particle diameter in pixels (default: the project's).")
@click.option("--pixel-size", type=float, help="Pixel size in Å, for --diameter in Å (e.g. 150A).")
@click.option("--match", type=click.Choice(["iou", "distance"]), default="iou", show_default=True)
@click.option("--iou", "iou_threshold", type=float, default=0.5, show_default=True)
@click.option("--radius", type=float, help="Matching radius in pixels for --match distance (default: diameter/2).")
@click.option("--json", "as_json", is_flag=True)
def eval_cmd(picks, project, run_id, truth, diameter, pixel_size, match, iou_threshold, radius, as_json):
    """Score picks against TRUTH with one-to-one matching."""
    from cryopick.config import parse_diameter
    from cryopick.errors import ConfigError
    from cryopick.io.coords import read_coordinates
    from cryopick.io.names import match_names
    from cryopick.metrics import evaluate
    from cryopick.pipeline import open_project

    candidates = None
    stored_d = None
    if project:
        proj = open_project(project, "r")
        run_id = run_id or proj.latest_run()
        picked = proj.picks(run_id)
        candidates = proj.candidates(run_id)
        stored_d = proj.run_info(run_id).get("diameter_px")
    elif picks:
        picked = read_coordinates(picks)
    else:
        raise ConfigError("give --picks FILE or --project P.h5")
    truth_sets = read_coordinates(truth)
    mapping, unmatched = match_names(list(truth_sets), list(picked) or list(truth_sets))
    truth_sets = {mapping.get(k, k): v for k, v in truth_sets.items()}
    if diameter is None and stored_d is None:
        raise ConfigError("--diameter is required")
    d = parse_diameter(diameter, pixel_size) if diameter else float(stored_d)
    ev = evaluate(picked, truth_sets, diameter_px=d, candidates=candidates, method=match,
                  iou_threshold=iou_threshold, radius_px=radius)
    r = ev.to_dict()
    text = (f"{r['n_picks']} picks, {r['n_truth']} true particles, {r['n_tp']} matched ({match})\n"
            f"precision {r['precision']:.3f}  recall {r['recall']:.3f}  F1 {r['f1']:.3f}  "
            f"AP {r['average_precision']:.3f}  best F1 {r['best_f1']:.3f}")
    emit(r, as_json, text)
