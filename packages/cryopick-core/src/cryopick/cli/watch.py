"""``cryopick watch``: pick micrographs as they appear in a folder (on-the-fly, while the microscope runs).

Examples::

    cryopick watch MotionCorr/job002/Movies --picker dog --diameter 150A --out picks/
    cryopick watch incoming/ --picker topaz -P project.h5 --pattern '*.mrc' --executor dask --workers 2
    cryopick watch incoming/ --picker dog --diameter 40 --done-marker .done --timeout 600
    cryopick watch incoming/ --picker dog --diameter 40 --once          # what is there now, then exit

Each micrograph gets RELION's ``OUT/<run>/<micrograph>_autopick.star`` as soon as it is picked. Ctrl-C
stops; rerunning the same command resumes without picking anything twice.
"""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.cli.options import emit, executor_options, picker_options, settings_dict


@click.command("watch")
@click.argument("folder", type=click.Path(path_type=Path))
@picker_options
@click.option("--model", help="Model ID in the project (/models/<ID>, see cryopick show). Default: the "
                              "project's one model of the picker; untrained pickers need none.")
@click.option("--pattern", default="*.mrc", show_default=True, help="Which files of FOLDER are micrographs.")
@click.option("--project", "-P", type=click.Path(path_type=Path),
              help="Project store (default: OUT/project.h5); the one with the trained model.")
@click.option("--out", "-o", type=click.Path(path_type=Path), default="cryopick-out", show_default=True,
              help="Coordinate files go to OUT/<run>/<micrograph>_autopick.star.")
@click.option("--pixel-size", type=float, help="Pixel size in Å, overriding the file headers.")
@click.option("--threshold", help="NAME[:VALUE], applied to each micrograph on its own. Default: the picker's.")
@click.option("--settle", "settle_s", type=float, default=5.0, show_default=True, metavar="SECONDS",
              help="A file is complete once its size and time have not changed for this long.")
@click.option("--done-marker", metavar="SUFFIX",
              help="Instead of --settle: a file is complete when FILE+SUFFIX or STEM+SUFFIX exists "
                   "(--done-marker .done: mic_001.mrc.done or mic_001.done).")
@click.option("--poll", "poll_s", type=float, default=2.0, show_default=True, metavar="SECONDS",
              help="How often to look for new files.")
@click.option("--max-micrographs", type=click.IntRange(min=1), metavar="N",
              help="Stop after picking N micrographs.")
@click.option("--timeout", "timeout_s", type=float, metavar="SECONDS",
              help="Stop when no new micrograph has come for this long.")
@click.option("--once", is_flag=True, help="Pick the micrographs there now, then stop.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
@executor_options
@click.pass_context
def watch(ctx, folder, picker, diameter, device, settings, seed, model, pattern, project, out, pixel_size,
          threshold, settle_s, done_marker, poll_s, max_micrographs, timeout_s, once, as_json, executor):
    """Pick each micrograph that appears in FOLDER, writing its coordinate file at once; keeps a running
    summary (micrographs, picks per micrograph, rate) and resumes after a restart."""
    from cryopick.cli.context import get_host
    from cryopick.watch import WatchOptions, format_watch_summary, watch as watch_folder

    opts = WatchOptions(folder=folder, pattern=pattern, picker=picker, model=model, project=project, out=out,
                        diameter=diameter, pixel_size_a=pixel_size, device=device, settings=settings_dict(settings),
                        seed=seed, threshold=threshold, settle_s=settle_s, done_marker=done_marker, poll_s=poll_s,
                        max_micrographs=max_micrographs, timeout_s=timeout_s, once=once, executor=executor)
    from cryopick import progress

    # one line per micrograph on stdout; on stderr with --json, which keeps stdout for the summary
    summary = watch_folder(opts, get_host(ctx), report=progress.echo if as_json else click.echo)
    emit(summary, as_json, format_watch_summary(summary))
