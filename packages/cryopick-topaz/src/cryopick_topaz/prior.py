"""How many particles a micrograph holds, from sparse labels: the class prior pi that PU learning needs.

Topaz's users must give ``-n``, the expected particles per micrograph, and get it wrong: with 25 labels
on a micrograph of 90 particles, taking the labelled count gives PU learning a prior 3.6 x too small.
Here the count is estimated from the data with held-out labels (an Elkan & Noto 2008 style argument on
the ranking of a pilot classifier):

1. Each labelled micrograph's labels are split at random: ``train`` labels (positives for a short pilot
   training) and ``held`` labels, which the pilot sees only as unlabelled pixels.
2. The pilot scores the labelled micrographs. If labels are a random sample of the particles (how a
   person clicks, and the assumption of PU learning), the held-out labels are a random sample of every
   particle the pilot did not train on, so their scores have the same distribution.
3. With ``s_q`` the ``q`` quantile of the held-out scores, a fraction ``1 - q`` of those particles lies
   above ``s_q``: ``U = #{candidates >= s_q, not at a train label} / (1 - q)``, and the count is
   ``(#train labels + U) / micrographs``. With every particle labelled, ``U`` is the held-out count, so the
   estimate is the labelled count, as it should be.

``q = 0.5`` (the median) keeps false positives, which mostly score below typical particles, out of the
count while using half of the held-out labels.
"""

from __future__ import annotations

import attrs
import numpy as np

from cryopick.particles import Particles


@attrs.define
class CountEstimate:
    particles_per_micrograph: float
    cut: float  # the held-out quantile score s_q
    held_out: int  # held-out labels used
    train_labels: int
    above: int  # candidates above the cut, not at a train label


def split_labels(labels: list[Particles], fraction: float, rng: np.random.Generator
                 ) -> tuple[list[Particles], list[Particles]]:
    """Per micrograph, a random ``fraction`` of the labels held out (at least one where there are two)."""
    train, held = [], []
    for p in labels:
        n = len(p)
        k = min(n - 1, max(1, int(round(fraction * n)))) if n >= 2 else 0
        order = rng.permutation(n)
        held.append(p.subset(np.sort(order[:k])))
        train.append(p.subset(np.sort(order[k:])))
    return train, held


def _nearest_candidate(cands: Particles, points: Particles, radius: float) -> np.ndarray:
    """Index of the highest-scoring candidate within ``radius`` of each point, -1 where none."""
    from scipy.spatial import cKDTree

    out = np.full(len(points), -1, dtype=np.int64)
    if not len(cands) or not len(points):
        return out
    for i, near in enumerate(cKDTree(cands.xy).query_ball_point(points.xy, r=radius)):
        if near:
            out[i] = near[int(np.argmax(cands.score[near]))]
    return out


def estimate_count(candidates: list[Particles], train: list[Particles], held: list[Particles],
                   radius: float, q: float = 0.5) -> CountEstimate | None:
    """Particles per micrograph from a pilot's candidates on labelled micrographs (module docs).

    ``radius``: a candidate within it of a label is at that label (the particle radius). Returns None when
    there are too few held-out labels (fewer than 4) to estimate a quantile."""
    held_scores, above, n_train = [], 0, 0
    for cands, tr, he in zip(candidates, train, held, strict=True):
        hit = _nearest_candidate(cands, he, radius)
        held_scores.append(np.where(hit >= 0, cands.score[np.maximum(hit, 0)], -np.inf))
        n_train += len(tr)
    scores = np.concatenate(held_scores) if held_scores else np.zeros(0)
    if scores.size < 4:
        return None
    # The q quantile of the held-out scores, taken from the sorted values (-inf where no candidate).
    cut = float(np.sort(scores)[int(np.floor(q * scores.size))])
    if not np.isfinite(cut):
        cut = float("-inf")
    for cands, tr in zip(candidates, train, strict=True):
        at_train = np.zeros(len(cands), dtype=bool)
        hit = _nearest_candidate(cands, tr, radius)
        at_train[hit[hit >= 0]] = True
        above += int(np.count_nonzero((cands.score >= cut) & ~at_train))
    unlabelled = above / max(float(np.mean(scores >= cut)), 1e-6)  # the held-out fraction above: ~1 - q
    return CountEstimate((n_train + unlabelled) / max(1, len(candidates)), cut, int(scores.size), n_train, above)
