"""PNG figures: picks over a micrograph and precision-recall curves (matplotlib, imported lazily).

Install with ``pip install cryopick-core[plot]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import CryopickError
from cryopick.particles import Particles


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CryopickError("plotting needs matplotlib: pip install cryopick-core[plot]") from None
    return plt


def _display(image: np.ndarray, diameter_px: float) -> tuple[np.ndarray, float, float]:
    """Low-pass the image for viewing (particles of ``diameter_px`` stay visible) and pick a contrast range."""
    import scipy.ndimage

    img = scipy.ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), max(diameter_px / 16, 0.5))
    lo, hi = np.percentile(img, [1, 99])
    return img, float(lo), float(hi)


def overlay_png(image: np.ndarray, picks: Particles, truth: Particles | None = None, *, path, diameter_px: float,
                matching=None, method: str = "iou", iou_threshold: float = 0.5, radius_px: float | None = None,
                title: str | None = None, dpi: int = 100) -> Path:
    """Draw picks (and truth) as circles over a micrograph and save a PNG (see :func:`overlay_figure`).

    Parameters
    ----------
    path : str or Path
        Output PNG.
    others
        As for :func:`overlay_figure`.

    Returns
    -------
    Path
    """
    fig = overlay_figure(image, picks, truth, diameter_px=diameter_px, matching=matching, method=method,
                         iou_threshold=iou_threshold, radius_px=radius_px, title=title, dpi=dpi)
    return _save(fig, path, dpi=dpi)


def overlay_figure(image: np.ndarray, picks: Particles, truth: Particles | None = None, *, diameter_px: float,
                   matching=None, method: str = "iou", iou_threshold: float = 0.5, radius_px: float | None = None,
                   title: str | None = None, dpi: int = 100):
    """Picks (and truth) as circles over a micrograph, with a legend giving the counts.

    Without ``truth`` all picks are drawn in green. With ``truth``, picks are matched
    (:func:`cryopick.metrics.match`, or the given ``matching``): true positives green, false positives red, missed
    truth (false negatives) yellow, dashed. Each pick's circle has gid ``"pick"``, each missed truth particle's
    ``"truth"``.

    Parameters
    ----------
    image : ndarray, shape (rows, cols)
    picks, truth : Particles
    diameter_px : float
        Circle diameter.
    matching : cryopick.metrics.Matching, optional
        Precomputed matching of ``picks`` to ``truth``.
    method, iou_threshold, radius_px
        Passed to :func:`cryopick.metrics.match`.
    title : str, optional
    dpi : int

    Returns
    -------
    matplotlib.figure.Figure
        Not shown or closed: save it, then ``matplotlib.pyplot.close(fig)``.
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle

    img, lo, hi = _display(image, diameter_px)
    rows, cols = img.shape
    scale = min(1.0, 1600 / max(rows, cols))
    fig = plt.figure(figsize=(cols * scale / dpi, rows * scale / dpi), dpi=dpi)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="bilinear")
    ax.set_axis_off()
    r = diameter_px / 2
    if truth is not None and matching is None:
        from cryopick.metrics import match

        matching = match(picks, truth, diameter_px=diameter_px, method=method, iou_threshold=iou_threshold,
                         radius_px=radius_px)
    tp = matching.tp if matching is not None else np.ones(len(picks), dtype=bool)
    lw = max(0.8, 1.5 * scale)
    for x, y, ok in zip(picks.x, picks.y, tp):
        ax.add_patch(Circle((x, y), r, fill=False, color="lime" if ok else "red", lw=lw, gid="pick"))
    missed = truth.xy[matching.missed] if truth is not None else np.zeros((0, 2))
    for x, y in missed:
        ax.add_patch(Circle((x, y), r, fill=False, color="yellow", lw=lw, ls="--", gid="truth"))

    def key(color: str, label: str) -> Line2D:
        return Line2D([], [], marker="o", ms=9, mfc="none", mec=color, ls="none", label=label)

    if truth is None:
        handles = [key("lime", f"picks ({len(picks)})")]
    else:
        n_tp = int(np.count_nonzero(tp))
        handles = [key("lime", f"picks matching truth ({n_tp})"),
                   key("red", f"picks not in truth ({len(picks) - n_tp})"),
                   key("yellow", f"truth missed ({len(missed)} of {len(truth)})")]
    ax.legend(handles=handles, loc="lower right", fontsize=9, framealpha=0.7)
    if title:
        ax.text(5, 5, title, color="white", va="top", fontsize=10, bbox=dict(facecolor="black", alpha=0.5))
    return fig


def _save(fig, path, **kwargs) -> Path:
    plt = _pyplot()
    path = Path(path)
    try:
        fig.savefig(path, **kwargs)
    finally:
        plt.close(fig)
    return path


def describe_micrographs(names, limit: int = 3) -> str:
    """``"mic_001"``, ``"mic_001, mic_002"`` or ``"12 micrographs"``: what a figure covers, for its title."""
    names = list(names)
    if not names:
        return "no micrographs"
    if len(names) <= limit:
        return ", ".join(str(n) for n in names)
    return f"{len(names)} micrographs"


def pr_curve_png(evaluation_or_curve, path, *, title: str | None = None, micrographs=None) -> Path:
    """Save the precision-recall curve as a PNG (see :func:`pr_curve_figure`)."""
    return _save(pr_curve_figure(evaluation_or_curve, title=title, micrographs=micrographs), path)


def pr_curve_figure(evaluation_or_curve, *, title: str | None = None, micrographs=None):
    """The precision-recall curve of an :class:`~cryopick.metrics.Evaluation` (or a ``PRCurve``).

    Parameters
    ----------
    evaluation_or_curve : Evaluation or PRCurve
    title : str, optional
        Default: the micrographs covered, AP and best F1.
    micrographs : sequence of str, optional
        The micrographs the evaluation covers; named in the title and legend (``"12 micrographs"`` when many).

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    curve = getattr(evaluation_or_curve, "curve", evaluation_or_curve)
    covers = describe_micrographs(micrographs) if micrographs is not None else None
    fig, ax = plt.subplots(figsize=(5, 4.5), dpi=100)
    if curve is not None and curve.recall.size:
        ax.step(np.r_[0.0, curve.recall], np.r_[curve.precision[0], curve.precision], where="post",
                label=f"precision-recall ({covers})" if covers else "precision-recall")
    ev = evaluation_or_curve if hasattr(evaluation_or_curve, "average_precision") else None
    if ev is not None:
        ax.plot([ev.recall], [ev.precision], "o", color="red", label=f"picks: F1 {ev.f1:.3f}")
        scores = f"AP {ev.average_precision:.3f}, best F1 {ev.best_f1:.3f}"
        title = title or (f"{covers}: {scores}" if covers else scores)
    elif covers:
        title = title or covers
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower left", fontsize=9)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02), title=title or "")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
