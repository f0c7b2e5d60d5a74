"""``cryopick show``: picks (and truth) drawn over a micrograph, and a precision-recall curve, as PNGs.

Examples::

    cryopick simulate --out sim/ --n 1
    cryopick show --micrograph sim/sim_0000.mrc --picks sim/truth.star --diameter 40 --out figs/
    cryopick show --micrograph mic.mrc --picks picks.star --truth truth.star --diameter 40 --out figs/
"""

from __future__ import annotations

from pathlib import Path

import click


def _for_micrograph(picks: dict, micrograph: Path):
    """The particles of ``micrograph`` in a name -> Particles mapping (matched by file name or stem)."""
    from cryopick.particles import Particles

    for key in (micrograph.name, micrograph.stem, str(micrograph)):
        if key in picks:
            return picks[key]
    for key, value in picks.items():
        if Path(str(key)).stem == micrograph.stem:
            return value
    if len(picks) == 1:
        return next(iter(picks.values()))
    return Particles.empty()


@click.command("show")
@click.option("--micrograph", required=True, type=click.Path(exists=True, dir_okay=False), help="Micrograph (MRC).")
@click.option("--picks", "picks_path", required=True, type=click.Path(exists=True), help="Coordinate file.")
@click.option("--truth", "truth_path", type=click.Path(exists=True), default=None, help="Truth coordinate file.")
@click.option("--diameter", required=True, type=float, help="Particle diameter in pixels.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
def show(micrograph, picks_path, truth_path, diameter, out_dir):
    """Write <name>_overlay.png and pr_curve.png."""
    import mrcfile

    from cryopick.io.coords import read_coordinates
    from cryopick.metrics import evaluate
    from cryopick.plot import overlay_png, pr_curve_png
    from cryopick.progress import echo

    mic = Path(micrograph)
    with mrcfile.open(mic, permissive=True) as mrc:
        image = mrc.data.astype("float32")
    if image.ndim == 3:
        image = image[0]
    picks = _for_micrograph(read_coordinates(picks_path), mic)
    truth = _for_micrograph(read_coordinates(truth_path), mic) if truth_path else None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    overlay = overlay_png(image, picks, truth, path=out / f"{mic.stem}_overlay.png", diameter_px=diameter,
                          title=mic.name)
    echo(f"wrote {overlay}")
    if truth is not None:
        ev = evaluate({mic.stem: picks}, {mic.stem: truth}, diameter_px=diameter)
        curve = pr_curve_png(ev, out / "pr_curve.png")
        echo(f"wrote {curve}: precision {ev.precision:.3f}, recall {ev.recall:.3f}, F1 {ev.f1:.3f}")
