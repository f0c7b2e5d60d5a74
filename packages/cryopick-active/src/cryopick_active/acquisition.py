"""Which regions to ask about next: binary entropy of the model's predictions (eq. 5), local maxima at
least a particle diameter apart, the most uncertain first.

Ordering. The reference implementation sorts the entropy peaks in *ascending* order before taking the first
K, which asks about the regions the model is *most* sure of; the paper's text (§2.1: "peaks of higher
uncertainty") and eq. 5 ask for the least sure. We sort in descending order (most uncertain first) and treat
the reference's order as a bug; ``tests/active/test_acquisition.py`` pins it.
"""

from __future__ import annotations

import attrs
import numpy as np

from cryopick.nms import peak_local_max
from cryopick.particles import Particles


@attrs.frozen
class Query:
    """A region to label: micrograph ``name``, centre ``(x, y)`` in preprocessed pixels, and why it was chosen
    (``score``: entropy in nats, or the prior's score in the first round)."""

    name: str
    x: float
    y: float
    score: float = float("nan")


def entropy(logits: np.ndarray) -> np.ndarray:
    """Binary entropy of ``sigma(logits)`` in nats (eq. 5), computed from log-sigmoids (no overflow):
    ``H = -sigma(z) log sigma(z) - sigma(-z) log sigma(-z)``."""
    z = np.asarray(logits, dtype=np.float64)
    log_p = -np.logaddexp(0.0, -z)
    log_q = -np.logaddexp(0.0, z)
    return (-(np.exp(log_p) * log_p) - np.exp(log_q) * log_q).astype(np.float32)


def _far_from(cands: Particles, taken: Particles | None, radius: float) -> np.ndarray:
    if taken is None or not len(taken) or not len(cands):
        return np.ones(len(cands), dtype=bool)
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(taken.xy).query(cands.xy, k=1)
    return dist > radius


def rank_queries(candidates: dict[str, Particles], k: int, labelled: dict[str, Particles] | None = None,
                 exclude_px: float = 0.0) -> list[Query]:
    """The ``k`` best-scoring candidates over all micrographs (highest score first; ties by micrograph and
    position), leaving out those within ``exclude_px`` of a labelled location."""
    rows = []
    for name in sorted(candidates):
        c = candidates[name]
        keep = _far_from(c, (labelled or {}).get(name), exclude_px)
        for x, y, s in zip(c.x[keep], c.y[keep], c.score[keep]):
            rows.append((-float(s), name, float(y), float(x)))
    rows.sort()
    return [Query(name, x, y, -neg) for neg, name, y, x in rows[:max(0, int(k))]]


def entropy_peaks(logits: np.ndarray, diameter_px: float, border_px: float = 0.0) -> Particles:
    """Local maxima of the entropy of ``logits`` at least ``diameter_px`` apart (scores = entropy)."""
    return peak_local_max(entropy(logits), radius=max(1.0, diameter_px), exclude_border=border_px)


def entropy_queries(logit_maps: dict[str, np.ndarray], k: int, diameter_px: float,
                    labelled: dict[str, Particles] | None = None, border_px: float = 0.0) -> list[Query]:
    """The ``k`` most uncertain regions (eq. 5) over all micrographs, most uncertain first, none within a
    particle radius of a location labelled already."""
    peaks = {n: entropy_peaks(m, diameter_px, border_px) for n, m in logit_maps.items()}
    return rank_queries(peaks, k, labelled, exclude_px=diameter_px / 2)


def random_queries(shapes: dict[str, tuple[int, int]], k: int, rng: np.random.Generator,
                   labelled: dict[str, Particles] | None = None, diameter_px: float = 0.0,
                   border_px: float = 0.0) -> list[Query]:
    """``k`` uniformly random locations (the baseline of the benchmark), micrograph by area."""
    names = sorted(shapes)
    areas = np.array([shapes[n][0] * shapes[n][1] for n in names], dtype=np.float64)
    out: list[Query] = []
    tries = 0
    while len(out) < k and tries < 100 * max(k, 1):
        tries += 1
        name = names[int(rng.choice(len(names), p=areas / areas.sum()))]
        h, w = shapes[name]
        x = float(rng.uniform(border_px, max(border_px, w - 1 - border_px)))
        y = float(rng.uniform(border_px, max(border_px, h - 1 - border_px)))
        taken = (labelled or {}).get(name)
        near = [q for q in out if q.name == name]
        pts = Particles.concat([p for p in (taken, Particles([q.x for q in near], [q.y for q in near])) if p is not None])
        if _far_from(Particles([x], [y]), pts, diameter_px / 2)[0]:
            out.append(Query(name, x, y))
    return out
