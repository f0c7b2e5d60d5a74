"""What commands share at run time: the plugin host and, for the single-stage commands, a project with a
configured picker. Command modules import this (never ``cryopick.cli.main``), so there are no import
cycles between the command modules and the command group."""

from __future__ import annotations

from contextlib import contextmanager

import click


def get_host(ctx: click.Context | None = None):
    """The plugin host of this invocation (built by ``main``; built here when the group is invoked
    directly, e.g. with click's ``CliRunner``)."""
    from cryopick.host import build_host

    ctx = ctx or click.get_current_context()
    obj = ctx.find_root().obj
    if obj is None:
        obj = ctx.find_root().obj = {}
    if obj.get("host") is None:
        obj["host"] = build_host()
    return obj["host"]


@contextmanager
def stage_project(ctx: click.Context, project, picker: str, diameter, device: str, settings, seed: int):
    """``(project, picker, names, diameter_px)`` for the stage commands (preprocess, train, pick): the
    project opened for writing (closed on exit), the picker built by :func:`cryopick.pickers.make_picker`,
    the project's micrographs and the diameter in pixels (stored as the project default)."""
    from cryopick.cli.options import settings_dict
    from cryopick.errors import InputError
    from cryopick.pickers import make_picker
    from cryopick.pipeline import open_project
    from cryopick.stages.import_ import project_diameter

    proj = open_project(project)
    try:
        names = sorted(proj.micrographs())
        if not names:
            raise InputError(f"{project} has no micrographs: cryopick import -P {project} --micrographs 'data/*.mrc'")
        built = make_picker(get_host(ctx), picker, settings_dict(settings), device, seed)
        diameter_px = project_diameter(proj, diameter)
        proj.put_settings(diameter_px=diameter_px)
        yield proj, built, names, diameter_px
    finally:
        proj.store.close()
