"""``cryopick prune``: return the space of what no kept run needs.

Examples::

    cryopick prune -P project.h5 --dry-run        # what would go, and at least how much space returns
    cryopick prune -P project.h5 --keep-runs 2    # keep the two most recent runs, drop the rest
    cryopick prune -P project.h5                  # keep every run; drop unused models, caches, files
"""

from __future__ import annotations

import click

from cryopick.cli.options import emit, project_option


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"  # pragma: no cover


@click.command("prune")
@project_option()
@click.option("--keep-runs", type=click.IntRange(min=0), default=None,
              help="Keep only the N most recently updated runs (default: keep all runs).")
@click.option("--dry-run", is_flag=True, help="Only say what would be dropped.")
@click.option("--json", "as_json", is_flag=True)
def prune(project, keep_runs, dry_run, as_json):
    """Drop old runs, and the models, preprocessed images and array files that no kept run uses.

    Labels and micrographs are kept. A model or a preprocessed image set that no kept run uses yet
    (e.g. after 'cryopick train' without 'cryopick pick') is dropped too.
    """
    from cryopick.errors import StoreError
    from cryopick.project import Project
    from cryopick.store import ProjectStore

    if not project.exists():
        raise StoreError(f"{project}: no such project")
    store = ProjectStore(project, "r" if dry_run else "a")
    try:
        report = Project(store).prune(keep_runs, dry_run=dry_run)
    finally:
        store.close()
    verb = "would drop" if dry_run else "dropped"
    parts = [f"{len(report.runs)} run(s)" + (f" ({', '.join(report.runs[:5])}{' ...' if len(report.runs) > 5 else ''})"
                                             if report.runs else ""),
             f"{len(report.models)} model(s)",
             f"{report.preprocessed_images} preprocessed image(s) in {len(report.preprocessed_sets)} unused set(s)",
             f"{report.stale_images} stale preprocessed image(s)",
             f"{report.files} array/temporary file(s)"]
    text = f"{verb} " + ", ".join(parts) + "\n"
    if dry_run:
        text += (f"would return at least {human_bytes(report.returned)} "
                 f"(project {human_bytes(report.bytes_before)}; the main file shrinks too)")
    else:
        text += (f"returned {human_bytes(report.returned)}: project {human_bytes(report.bytes_before)} -> "
                 f"{human_bytes(report.bytes_after)}")
    emit(report.to_dict(), as_json, text)
