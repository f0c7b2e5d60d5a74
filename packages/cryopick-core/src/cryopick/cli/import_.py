"""``cryopick import``: add micrographs and coordinate files (labels, truth) to a project.

Examples::

    cryopick import -P project.h5 --micrographs 'data/*.mrc' --pixel-size 1.06
    cryopick import -P project.h5 --labels train.star            # label set 'train'
    cryopick import -P project.h5 --labels truth.star --label-set truth
    cryopick import -P project.h5 --micrographs CtfFind/job003/micrographs_ctf.star --relion-project .
    cryopick import -P project.h5 --labels ManualPick/job004/manualpick.star   # RELION's list, followed
    cryopick import -P project.h5 --micrographs P12/J5/J5_exposures_accepted.cs --cryosparc-project P12
"""

from __future__ import annotations

import click

from cryopick.cli.options import emit, micrographs_option, project_option, source_project_options


@click.command("import")
@project_option()
@micrographs_option(help="Micrographs: a folder, a glob ('data/*.mrc'), files, a RELION micrographs STAR or a "
                        "cryoSPARC exposures .cs.")
@source_project_options
@click.option("--pixel-size", type=float, help="Pixel size in Å, overriding the headers.")
@click.option("--labels", "-l", help="Coordinate file or folder (STAR, .box, .cbox, .txt, .csv, .cs, EMAN2 info/); RELION's "
                                     "autopick.star / manualpick.star lists are followed to their files.")
@click.option("--label-set", default="train", show_default=True, help="Name to store the labels under.")
@click.option("--diameter", help="Particle diameter (pixels or Å, e.g. 150A), stored as the project default.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def import_cmd(ctx, project, micrographs, relion_project, cryosparc_project, pixel_size, labels, label_set,
               diameter, as_json):
    """Import micrographs and/or coordinates into PROJECT."""
    from cryopick.cli.context import get_host
    from cryopick.config import parse_diameter
    from cryopick.errors import ConfigError
    from cryopick.pipeline import open_project
    from cryopick.stages.import_ import import_labels, import_micrographs, micrograph_inputs, remember_sources

    if not micrographs and not labels and not diameter:
        raise ConfigError("nothing to import: give --micrographs, --labels and/or --diameter")
    proj = open_project(project)
    try:
        result = {}
        if micrographs:
            skipped: list[dict] = []
            paths, origins = micrograph_inputs(micrographs, relion_project, cryosparc_project)
            names = import_micrographs(proj, paths, pixel_size, skipped, origins)
            remember_sources(proj, micrographs, origins)
            result["micrographs"] = len(names)
            result["skipped"] = skipped
        if labels:
            picks = import_labels(proj, labels, label_set, get_host(ctx), relion_project=relion_project)
            result["labels"] = {"set": label_set, "micrographs": len(picks),
                                "particles": int(sum(len(p) for p in picks.values()))}
        if diameter:
            pixel = next((m.pixel_size_a for m in proj.micrographs().values() if m.pixel_size_a), None)
            proj.put_settings(diameter_px=parse_diameter(diameter, pixel))
    finally:
        proj.store.close()
    text = []
    if "micrographs" in result:
        text.append(f"{result['micrographs']} micrograph(s) in {project}")
        if result["skipped"]:
            from cryopick.io.micrographs import skipped_summary

            bad = [(d["path"], d["reason"]) for d in result["skipped"]]
            text.append(skipped_summary(bad, result["micrographs"] + len(bad)))
    if "labels" in result:
        lab = result["labels"]
        text.append(f"label set {lab['set']!r}: {lab['particles']} particle(s) on {lab['micrographs']} micrograph(s)")
    emit(result, as_json, "\n".join(text) or f"updated {project}")
