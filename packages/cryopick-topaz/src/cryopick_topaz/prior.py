"""How many particles a micrograph holds, from sparse labels: the class prior pi that PU learning needs.

Topaz's users must give ``-n``, the expected particles per micrograph, and get it wrong: with 25 labels
on a micrograph of 90 particles, taking the labelled count gives PU learning a prior 3.6 x too small.
Here the count is estimated from the data with held-out labels, as a mixture proportion (Elkan & Noto
2008; Blanchard, Lee & Scott 2010) of a pilot classifier's candidates:

1. Each labelled micrograph's labels are split at random: ``train`` labels (positives for a short pilot
   training) and ``held`` labels, which the pilot sees only as unlabelled pixels.
2. The pilot scores the labelled micrographs. If labels are a random sample of the particles (how a
   person clicks, and the assumption of PU learning), the held-out labels are a random sample of every
   particle the pilot did not train on, so their scores have the same distribution.
3. With ``s_q`` the ``q`` quantile of the held-out scores, a fraction ``r = 1 - q`` of those particles
   lies above ``s_q``, so ``C(s_q) = #{candidates >= s_q, not at a train label} = r U + F(s_q)``, with
   ``U`` the particles not labelled for training and ``F >= 0`` the false candidates above the cut.
   Every ``C(s_q) / r`` is therefore an over-estimate of ``U`` by ``F / r``, and the tightest one is the
   smallest (the mixture-proportion estimator of Blanchard et al. 2010, Scott 2015: ``min_s``). The count
   is ``(#train labels + U) / micrographs``; with every particle labelled, ``U`` is the held-out count.
   A single cut at the median (``q = 0.5``) over-counted by 16-26 % where the pilot's false peaks sit
   between crowded particles (EMPIAR-10059 TRPV1, and the ribosome); the minimum over ``q`` in
   0.5-0.8 (at least a fifth of the held-out labels above every cut) removes that bias. Where no false
   peak scores among the particles, the minimum of noisy ratios under-counts instead, by about 13 %
   with 25 labels per micrograph (tests/topaz/test_prior.py has both scenes).
4. Cross-fitting (``cross_fit``): a second pilot trains on the held-out half and holds out the training
   half, so every label is held out once. The folds' curves ``C(s_q) / r`` are averaged before the
   minimum; the spread from which 12 held-out labels per micrograph the split drew falls by a quarter
   (TRPV1 resampled: sd 216 -> 154 for 666 particles).
"""

from __future__ import annotations

import attrs
import numpy as np

from cryopick.particles import Particles

#: Held-out quantiles at which the ratio C(s_q) / (1 - q) is taken (module docs, step 3).
QUANTILES = (0.5, 0.6, 0.7, 0.8)


@attrs.define
class CountEstimate:
    particles_per_micrograph: float
    #: the estimate at each held-out quantile cut (averaged over folds): the minimum is the estimate
    curve: list[float]
    quantiles: list[float]
    held_out: int  # held-out labels used (over all folds)
    train_labels: int  # labels a pilot trained on (per fold, summed over folds)
    folds: int = 1


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
                   radius: float, quantiles: tuple[float, ...] = QUANTILES) -> CountEstimate | None:
    """Particles per micrograph from one pilot's candidates on the labelled micrographs (module docs).

    ``radius``: a candidate within it of a label is at that label (the particle radius). Returns None when
    there are too few held-out labels (fewer than 4) to take quantiles."""
    held_scores, n_train = [], 0
    for cands, tr, he in zip(candidates, train, held, strict=True):
        hit = _nearest_candidate(cands, he, radius)
        held_scores.append(np.where(hit >= 0, cands.score[np.maximum(hit, 0)], -np.inf))
        n_train += len(tr)
    scores = np.sort(np.concatenate(held_scores)) if held_scores else np.zeros(0)
    if scores.size < 4:
        return None
    free = []  # per micrograph: the scores of candidates not at a train label
    for cands, tr in zip(candidates, train, strict=True):
        at_train = np.zeros(len(cands), dtype=bool)
        hit = _nearest_candidate(cands, tr, radius)
        at_train[hit[hit >= 0]] = True
        free.append(cands.score[~at_train])
    free_scores = np.concatenate(free) if free else np.zeros(0)
    curve = []
    for q in quantiles:
        # the q quantile of the held-out scores (an order statistic; -inf where no candidate was near)
        cut = float(scores[int(np.floor(q * scores.size))])
        above = int(np.count_nonzero(free_scores >= cut))
        frac = max(float(np.mean(scores >= cut)), 1e-6)  # the held-out fraction above: ~1 - q
        curve.append((n_train + above / frac) / max(1, len(candidates)))
    return CountEstimate(float(min(curve)), curve, list(quantiles), int(scores.size), n_train)


def cross_fit(estimates: list[CountEstimate]) -> CountEstimate:
    """One estimate from several folds (module docs, step 4): the mean curve's minimum."""
    curve = np.mean([e.curve for e in estimates], axis=0)
    return CountEstimate(float(curve.min()), [float(v) for v in curve], list(estimates[0].quantiles),
                         sum(e.held_out for e in estimates), sum(e.train_labels for e in estimates),
                         len(estimates))
