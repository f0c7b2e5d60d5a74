"""``cryopick show``: picks (and truth) drawn over a micrograph, and a precision-recall curve, as PNGs.

Examples::

    cryopick simulate --out sim/ --n 1
    cryopick show --micrograph sim/sim_0000.mrc --picks sim/truth.star --diameter 40 --out figs/
    cryopick show --micrograph mic.mrc --picks picks.star --truth truth.star --diameter 40 --out figs/
    cryopick show --micrograph data/mic_001.mrc --picks picks/ --truth truth.star --diameter 150A --out figs/

Only the rows of the coordinate files that name the micrograph are drawn (file name or ID, RELION's
``_autopick`` suffix and cryoSPARC's UID prefix ignored); a warning says when none do.
"""

from __future__ import annotations

from pathlib import Path

import click


def for_micrograph(coords: dict, micrograph: Path, source: str, what: str) -> tuple:
    """The particles of ``micrograph`` in a name -> Particles mapping read from ``source``, and a warning
    (``None`` when they were found). A file whose rows carry no micrograph name counts as this micrograph's."""
    from cryopick.io.names import match_names
    from cryopick.particles import Particles

    name = micrograph.stem
    mapping, _ = match_names([str(k) for k in coords], [name])
    found = [coords[k] for k in coords if mapping.get(str(k)) == name]
    if not found and len(coords) == 1 and not str(next(iter(coords))).strip():
        found = list(coords.values())  # no micrograph names in the file
    if found:
        return Particles.concat(found) if len(found) > 1 else found[0], None
    names = sorted(str(k) for k in coords)
    listed = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    warning = (f"warning: {source} has no {what} for micrograph {name!r} (it names {listed or 'no micrographs'}); "
               f"drawing none: check --micrograph and --{what}")
    return Particles.empty(), warning


@click.command("show")
@click.option("--micrograph", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Micrograph (MRC, TIFF, PNG, JPEG).")
@click.option("--picks", "picks_path", required=True, type=click.Path(exists=True),
              help="Coordinate file, or a folder of them (cryopick export --per-micrograph).")
@click.option("--truth", "truth_path", type=click.Path(exists=True), default=None,
              help="Truth coordinate file or folder.")
@click.option("--diameter", required=True, help="Particle diameter: pixels (40) or Ångström (150A, with the "
                                                "micrograph's pixel size or --pixel-size).")
@click.option("--pixel-size", type=float, help="Pixel size in Å, overriding the file header.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output folder.")
def show(micrograph, picks_path, truth_path, diameter, pixel_size, out_dir):
    """Write <name>_overlay.png (picks and truth over the micrograph, with a legend) and pr_curve.png."""
    from cryopick.config import parse_diameter
    from cryopick.fsutil import ensure_writable_dir
    from cryopick.io.coords import read_coordinates
    from cryopick.io.micrographs import read_micrograph
    from cryopick.metrics import evaluate
    from cryopick.plot import overlay_png, pr_curve_png
    from cryopick.progress import echo

    out = ensure_writable_dir(out_dir, "--out")
    mic = Path(micrograph)
    image, info = read_micrograph(mic, pixel_size_a=pixel_size)
    diameter_px = parse_diameter(diameter, info.pixel_size_a)
    picks, warning = for_micrograph(read_coordinates(picks_path), mic, picks_path, "picks")
    if warning:
        echo(warning)
    truth = None
    if truth_path:
        truth, warning = for_micrograph(read_coordinates(truth_path), mic, truth_path, "truth")
        if warning:
            echo(warning)
    overlay = overlay_png(image, picks, truth, path=out / f"{mic.stem}_overlay.png", diameter_px=diameter_px,
                          title=mic.name)
    echo(f"wrote {overlay}: {len(picks)} picks" + (f", {len(truth)} truth" if truth is not None else ""))
    if truth is not None:
        ev = evaluate({mic.stem: picks}, {mic.stem: truth}, diameter_px=diameter_px)
        curve = pr_curve_png(ev, out / "pr_curve.png", micrographs=[mic.stem])
        echo(f"wrote {curve} ({mic.stem}): precision {ev.precision:.3f}, recall {ev.recall:.3f}, F1 {ev.f1:.3f}")
