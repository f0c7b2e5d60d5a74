"""Helpers shared by the single-stage commands (preprocess, train, pick)."""

from __future__ import annotations


def open_pipeline(ctx, project, picker, diameter, device, settings, seed):
    from cryopick.cli.main import get_host
    from cryopick.cli.options import settings_dict
    from cryopick.errors import InputError
    from cryopick.pipeline import Pipeline, open_project

    proj = open_project(project)
    try:
        names = sorted(proj.micrographs())
        if not names:
            raise InputError(f"{project} has no micrographs: cryopick import -P {project} --micrographs 'data/*.mrc'")
        pipe = Pipeline(proj, picker, get_host(ctx), settings_dict(settings), device, seed)
        diameter_px = pipe.diameter_px(diameter)
        proj.put_settings(diameter_px=diameter_px)
    except BaseException:
        proj.store.close()
        raise
    return proj, pipe, names, diameter_px
