"""``cryopick preprocess``: apply the picker's preprocessing chain to every micrograph in a project.

Example::

    cryopick preprocess -P project.h5 --picker topaz --diameter 150A
    cryopick preprocess -P project.h5 --picker topaz --diameter 150A --executor dask --workers 8
"""

from __future__ import annotations

import click

from cryopick.cli.options import executor_options, picker_options, project_option


@click.command("preprocess")
@project_option()
@picker_options
@executor_options
@click.pass_context
def preprocess(ctx, project, picker, diameter, device, settings, seed, executor):
    """Downsample / normalise / filter micrographs as PICKER needs, caching the result in PROJECT."""
    from cryopick.cli.context import stage_project
    from cryopick.executor import open_executor
    from cryopick.stages.preprocess import preprocess as preprocess_stage

    executor.check()
    with stage_project(ctx, project, picker, diameter, device, settings, seed) as (proj, built, names, d_px), \
            open_executor(executor) as workers:
        result = preprocess_stage(proj, built, d_px, names, workers)
    click.echo(f"preprocessed {len(names)} micrograph(s) ({result.skipped} cached) as {result.key}")
