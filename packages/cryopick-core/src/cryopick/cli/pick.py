"""``cryopick pick``: score and threshold every micrograph with a (trained) picker.

Example::

    cryopick pick -P project.h5 --picker topaz --threshold fixed:-3
    cryopick pick -P project.h5 --picker topaz --model topaz-import-3f2a9c01d4e5   # see import-model
    cryopick pick -P project.h5 --picker dog --executor dask --workers 4
    cryopick pick -P project.h5 --picker topaz --executor dask --scheduler tcp://10.0.0.5:8786
    cryopick export -P project.h5 --format star --out picks/
"""

from __future__ import annotations

import click

from cryopick.cli.options import executor_options, picker_options, project_option, threshold_options


@click.command("pick")
@project_option()
@picker_options
@threshold_options
@click.option("--label-set", default="train", show_default=True)
@click.option("--model", "model", metavar="ID", help="Use this stored model instead of training (an ID printed by "
                                                     "cryopick import-model, or a model trained earlier).")
@executor_options
@click.pass_context
def pick(ctx, project, picker, diameter, device, settings, seed, threshold, threshold_scope, label_set, model,
         executor):
    """Pick particles in PROJECT (training first if the model is not there yet)."""
    from cryopick.cli.context import stage_project
    from cryopick.executor import open_executor
    from cryopick.pipeline import pick_micrographs

    executor.check()
    with stage_project(ctx, project, picker, diameter, device, settings, seed) as (proj, built, names, d_px), \
            open_executor(executor) as workers:
        outcome = pick_micrographs(proj, built, d_px, names, label_set, threshold, threshold_scope,
                                   executor=workers, model=model)
    total = sum(len(p) for p in outcome.picks.values())
    n = len(outcome.picks)
    click.echo(f"run {outcome.run}: {total} picks on {n} micrograph(s) ({total / max(1, n):.1f} each), "
               f"threshold {outcome.threshold}")
