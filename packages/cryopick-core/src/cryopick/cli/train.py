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
@click.pass_context
def train(ctx, project, picker, diameter, device, settings, seed, label_set):
    """Train PICKER on PROJECT's label set (the model is stored in the project)."""
    from cryopick.cli.context import stage_project
    from cryopick.stages.preprocess import preprocess
    from cryopick.stages.train import train as train_stage

    with stage_project(ctx, project, picker, diameter, device, settings, seed) as (proj, built, names, d_px):
        prep = preprocess(proj, built, d_px, names)
        key = train_stage(proj, built, prep.key, d_px, names, label_set).key
    click.echo(f"model {key} in {project}" if key else f"picker {picker} needs no training")
