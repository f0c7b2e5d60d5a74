"""``cryopick pick``: score and threshold every micrograph with a (trained) picker.

Example::

    cryopick pick -P project.h5 --picker topaz --threshold fixed:-3
    cryopick export -P project.h5 --format star --out picks/
"""

from __future__ import annotations

import click

from cryopick.cli.options import picker_options, project_option, threshold_options


@click.command("pick")
@project_option()
@picker_options
@threshold_options
@click.option("--label-set", default="train", show_default=True)
def pick(project, picker, diameter, device, settings, seed, threshold, threshold_scope, label_set):
    """Pick particles in PROJECT (training first if the model is not there yet)."""
    from cryopick.cli.stages import open_pipeline

    ctx = click.get_current_context()
    proj, pipe, names, diameter_px = open_pipeline(ctx, project, picker, diameter, device, settings, seed)
    try:
        pipe.preprocess(diameter_px, names)
        pipe.train(diameter_px, names, label_set)
        run = pipe.score(diameter_px, names)
        picks = pipe.threshold(run, threshold, threshold_scope)
    finally:
        proj.store.close()
    total = sum(len(p) for p in picks.values())
    click.echo(f"run {run}: {total} picks on {len(picks)} micrograph(s) ({total / max(1, len(picks)):.1f} each)")
