"""``cryopick export``: write a run's picks in a coordinate format.

Examples::

    cryopick export -P project.h5 --format star --out picks/                  # one particles.star
    cryopick export -P project.h5 --format star --per-micrograph --out picks/ # <mic>_autopick.star
    cryopick export -P project.h5 --run topaz-1a2b3c4d --format box --out boxes/
    cryopick export -P project.h5 --format star --per-micrograph --out External/job099/   # RELION layout
    cryopick export -P project.h5 --format cs --exposures P12/J5/J5_exposures_accepted.cs --out picks/
"""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.cli.options import project_option


@click.command("export")
@project_option()
@click.option("--run", "run_id", help="Run id (default: the latest run).")
@click.option("--format", "-f", "fmt", default="star", show_default=True, help="star, box, txt, csv, cs.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True)
@click.option("--per-micrograph/--single-file", default=None,
              help="Default: the format's own convention (star from a RELION micrographs STAR: RELION's "
                   "AutoPick layout with autopick.star).")
@click.option("--candidates", is_flag=True, help="Export all scored candidates instead of the thresholded picks.")
@click.option("--exposures", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help="cryoSPARC exposures .cs: micrographs imported as files take the uid, path and exposure group "
                   "of the exposure with the same base name (--format cs).")
@click.option("--relion-project", type=click.Path(path_type=Path, file_okay=False), metavar="DIR",
              help="RELION project folder: paths in autopick.star are written relative to it (default: the one "
                   "stored when the micrographs STAR was imported).")
@click.pass_context
def export(ctx, project, run_id, fmt, out, per_micrograph, candidates, exposures, relion_project):
    """Export picks from PROJECT."""
    from cryopick.cli.context import get_host
    from cryopick.errors import InputError
    from cryopick.fsutil import ensure_writable_dir
    from cryopick.pipeline import open_project
    from cryopick.stages.export import export_picks

    host = get_host(ctx)
    host.exporters.get(fmt)
    ensure_writable_dir(out, "--out")
    proj = open_project(project, "r")
    run_id = run_id or proj.latest_run()
    if run_id is None or run_id not in proj.runs():
        raise InputError(f"{project}: no run {run_id!r}; runs: {', '.join(proj.runs()) or 'none'}")
    picks = proj.candidates(run_id) if candidates else proj.picks(run_id)
    info = proj.run_info(run_id)
    files = export_picks(proj, host, picks, out, fmt, per_micrograph, info.get("diameter_px", 0) or 0,
                         exposures=exposures, relion_project=relion_project)
    click.echo(f"run {run_id}: wrote {sum(len(p) for p in picks.values())} particles to {len(files)} file(s) in {out}")
