"""``cryopick run``: import -> preprocess -> train -> score -> threshold -> export (-> evaluate).

Examples::

    cryopick run --picker dog                      # built-in simulated demo, prints precision/recall
    cryopick run --picker mae                      # CryoMAE with 15 exemplars from the demo truth
    cryopick run --picker topaz --micrographs 'data/*.mrc' --labels train.star --diameter 150A
    cryopick run --picker dog --micrographs 'mics/*.mrc' --diameter 40 --format box --out picks/
    cryopick run --picker mae --micrographs 'data/*.mrc' --labels exemplars.star --diameter 40 --set stride=10
    cryopick run --picker dog --micrographs 'data/*.mrc' --diameter 40 --executor dask --workers 4
    cryopick run --picker dog --micrographs CtfFind/job003/micrographs_ctf.star --diameter 150A \
                 --per-micrograph --out External/job010     # RELION: AutoPick layout + autopick.star
    cryopick run --picker dog --micrographs P12/J5/J5_exposures_accepted.cs --diameter 150A --format cs

Rerunning the same command resumes: finished stages and micrographs are skipped.
"""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.cli.options import (
    emit,
    executor_options,
    micrographs_option,
    picker_options,
    settings_dict,
    source_project_options,
    threshold_options,
)


@click.command("run")
@picker_options
@micrographs_option(help="Micrographs: a folder, a glob ('data/*.mrc'; .mrcs/.tif/.png too), several files, "
                        "a RELION micrographs STAR or a cryoSPARC exposures .cs. Omit to run on the built-in "
                        "simulated demo.")
@source_project_options
@click.option("--labels", "-l", help="Training labels / exemplars (STAR, .box, Topaz .txt, CSV, cryoSPARC .cs).")
@click.option("--truth", help="Ground-truth coordinates: adds precision/recall/F1/AP to the summary.")
@click.option("--pixel-size", type=float, help="Pixel size in Å, overriding the file headers.")
@click.option("--project", "-P", type=click.Path(path_type=Path),
              help="Project store (default: OUT/project.h5).")
@click.option("--out", "-o", type=click.Path(path_type=Path), default="cryopick-out", show_default=True,
              help="Output directory: coordinate files go to OUT/<run> (<picker>-<8 hex>), one folder per "
                   "picker and settings, so runs do not overwrite each other.")
@click.option("--format", "-f", "fmt", default="star", show_default=True,
              help="Coordinate format: star, box, txt, csv, cs.")
@click.option("--per-micrograph/--single-file", default=None,
              help="One file per micrograph (RELION <mic>_autopick.star) or one for all. Default: the format's own "
                   "(star, txt, cs: one file; box, csv: per micrograph; star from a RELION micrographs STAR: "
                   "RELION's AutoPick layout with autopick.star).")
@threshold_options
@click.option("--match", type=click.Choice(["iou", "distance"]), default="iou", show_default=True,
              help="Evaluation matching: box IoU >= 0.5 (CryoMAE) or centre distance <= radius (Topaz).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@executor_options
@click.pass_context
def run(ctx, picker, diameter, device, settings, seed, micrographs, labels, truth, pixel_size, project, out, fmt,
        per_micrograph, threshold, threshold_scope, match, as_json, executor, relion_project=None,
        cryosparc_project=None):
    """Pick particles end to end and summarise (picks per micrograph, time, precision/recall when the
    truth is known)."""
    from cryopick.cli.context import get_host
    from cryopick.pipeline import RunOptions, format_summary, run_pipeline

    opts = RunOptions(picker=picker, micrographs=micrographs or None, labels=labels, truth=truth, diameter=diameter,
                      pixel_size_a=pixel_size, project=project, out=out, format=fmt, per_micrograph=per_micrograph,
                      device=device, settings=settings_dict(settings), threshold=threshold,
                      threshold_scope=threshold_scope, seed=seed, match=match, executor=executor,
                      relion_project=relion_project, cryosparc_project=cryosparc_project)
    summary = run_pipeline(opts, get_host(ctx))
    emit(summary, as_json, format_summary(summary))
