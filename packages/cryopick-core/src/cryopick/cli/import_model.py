"""``cryopick import-model``: bring a model trained by another program into a project.

Examples::

    cryopick import-model -P project.h5 topaz model_epoch10.sav          # trained with topaz-em
    cryopick import-model -P project.h5 topaz model.sav --name my-topaz
    cryopick pick -P project.h5 --picker topaz --model my-topaz --diameter 150A

The file is read by the model importer that a plugin registers for PICKER (cryopick-topaz: topaz-em's
``.sav``, read with a restricted unpickler that runs none of the file's code) and stored as that
picker's model weights (arrays in HDF5).
"""

from __future__ import annotations

from pathlib import Path

import click

from cryopick.cli.options import emit, project_option


@click.command("import-model")
@project_option()
@click.argument("picker")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", help="Model ID to store it under (default: <picker>-import-<12 hex of the file's hash>).")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def import_model(ctx, project, picker, file, name, as_json):
    """Store FILE, a PICKER model trained by another program, in PROJECT; prints the model ID."""
    from cryopick.cli.context import get_host
    from cryopick.pipeline import open_project
    from cryopick.stages.train import import_model as import_stage

    host = get_host(ctx)
    proj = open_project(project)
    try:
        key = import_stage(proj, host, picker, file, name)
    finally:
        proj.store.close()
    emit({"model": key, "picker": picker, "file": str(file)}, as_json,
         f"imported {file} as model {key}\npick with it: cryopick pick -P {project} --picker {picker} --model {key}")
