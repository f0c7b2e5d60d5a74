"""``cryopick train``: train a picker on the labels in a project.

Example::

    cryopick import -P project.h5 --micrographs 'data/*.mrc' --labels train.star --diameter 150A
    cryopick train -P project.h5 --picker topaz --set epochs=5
"""

from __future__ import annotations

import click

from cryopick.cli.options import picker_options, project_option


@click.command("train")
@project_option()
@picker_options
@click.option("--label-set", default="train", show_default=True)
def train(project, picker, diameter, device, settings, seed, label_set):
    """Train PICKER on PROJECT's label set (the model is stored in the project)."""
    from cryopick.cli.stages import open_pipeline

    ctx = click.get_current_context()
    proj, pipe, names, diameter_px = open_pipeline(ctx, project, picker, diameter, device, settings, seed)
    try:
        pipe.preprocess(diameter_px, names)
        key = pipe.train(diameter_px, names, label_set)
    finally:
        proj.store.close()
    click.echo(f"model {key} in {project}" if key else f"picker {picker} needs no training")
