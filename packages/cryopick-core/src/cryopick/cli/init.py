"""``cryopick init``: create an empty project store.

Example::

    cryopick init project.h5
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("init")
@click.argument("project", type=click.Path(path_type=Path))
def init(project):
    """Create the project store PROJECT (an HDF5 file)."""
    from cryopick.fsutil import ensure_writable_file
    from cryopick.store import ProjectStore

    ensure_writable_file(project, "project")
    existed = project.exists()
    ProjectStore(project, "a").close()
    click.echo(f"{'opened existing' if existed else 'created'} project {project}")
