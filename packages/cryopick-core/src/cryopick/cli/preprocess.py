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
def preprocess(project, picker, diameter, device, settings, seed):
    """Downsample / normalise / filter micrographs as PICKER needs, caching the result in PROJECT."""
    from cryopick.cli.stages import open_pipeline

    ctx = click.get_current_context()
    proj, pipe, names, diameter_px = open_pipeline(ctx, project, picker, diameter, device, settings, seed)
    try:
        key = pipe.preprocess(diameter_px, names)
    finally:
        proj.store.close()
    click.echo(f"preprocessed {len(names)} micrograph(s) ({pipe.skipped['preprocess']} cached) as {key}")
