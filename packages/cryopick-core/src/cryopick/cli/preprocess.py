"""``cryopick preprocess``: apply the picker's preprocessing chain to every micrograph in a project.

Example::

    cryopick preprocess -P project.h5 --picker topaz --diameter 150A
"""

from __future__ import annotations

import click

from cryopick.cli.options import picker_options, project_option


@click.command("preprocess")
@project_option()
@picker_options
@click.pass_context
def preprocess(ctx, project, picker, diameter, device, settings, seed):
    """Downsample / normalise / filter micrographs as PICKER needs, caching the result in PROJECT."""
    from cryopick.cli.context import stage_project
    from cryopick.stages.preprocess import preprocess as preprocess_stage

    with stage_project(ctx, project, picker, diameter, device, settings, seed) as (proj, built, names, d_px):
        result = preprocess_stage(proj, built, d_px, names)
    click.echo(f"preprocessed {len(names)} micrograph(s) ({result.skipped} cached) as {result.key}")
