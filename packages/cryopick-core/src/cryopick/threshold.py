"""Core thresholders: fixed score, top-k, Otsu, and CryoMAE's density-based cut-off.

Each is built from keyword parameters and has ``cutoff(scores) -> float``: candidates whose score is
``>= cutoff`` become picks. Thresholders are chosen with ``--threshold NAME[:VALUE]`` (for example
``fixed:0.5``, ``topk:100``, ``otsu``, ``density``).
"""

from __future__ import annotations

import attrs
import numpy as np


def _finite(scores) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    return s[np.isfinite(s)]


def _peaks_tier(scores) -> np.ndarray:
    """The finite scores, without the shoulder tier of ``nms=tiered`` candidates (scores lowered by
    ``cryopick.nms.SHOULDER_OFFSET``) when there are local maxima above it: a cut from the score
    distribution (Otsu, density) would otherwise split the two tiers instead of particles from background."""
    from cryopick.nms import SHOULDER_OFFSET

    s = np.sort(_finite(scores))
    # The tiers are apart by about SHOULDER_OFFSET; the lowest gap of half that is the one between them.
    # Above it lie all the local maxima (a third or more of the candidates); a gap with only a few scores
    # above it is outliers' (gold beads) and is no tier.
    gaps = np.nonzero(np.diff(s) >= SHOULDER_OFFSET / 2)[0]
    return s[gaps[0] + 1:] if gaps.size and s.size - gaps[0] - 1 >= max(2, 0.05 * s.size) else s


@attrs.define
class Fixed:
    """Keep scores at or above ``value``."""

    value: float = 0.0

    def cutoff(self, scores) -> float:
        return float(self.value)


@attrs.define
class TopK:
    """Keep the ``k`` highest scores (ties at the boundary are all kept)."""

    k: int = 100

    def cutoff(self, scores) -> float:
        s = _finite(scores)
        if s.size == 0:
            return np.inf
        if self.k <= 0:
            return np.inf
        if s.size <= self.k:
            return float(s.min())
        return float(np.partition(s, s.size - self.k)[s.size - self.k])


@attrs.define
class Otsu:
    """Otsu's method: the cut that maximises the between-class variance of a ``bins``-bin histogram.

    Scores are first clipped to ``median +- clip * sigma`` (sigma from the median absolute deviation):
    a few extreme scores (gold beads, ice contaminants) would otherwise stretch the histogram so that
    all ordinary scores fall into one bin. ``clip=0`` turns this off.
    """

    bins: int = 256
    clip: float = 6.0

    def cutoff(self, scores) -> float:
        s = _peaks_tier(scores)
        if self.clip > 0 and s.size > 10:
            med = np.median(s)
            sigma = 1.4826 * np.median(np.abs(s - med))
            if sigma > 0:
                s = np.clip(s, med - self.clip * sigma, med + self.clip * sigma)
        if s.size < 2 or s.min() == s.max():
            return float(s.min()) if s.size else np.inf
        hist, edges = np.histogram(s, bins=self.bins)
        centres = (edges[:-1] + edges[1:]) / 2
        w0 = np.cumsum(hist)
        w1 = w0[-1] - w0
        m = np.cumsum(hist * centres)
        mu0 = m / np.maximum(w0, 1)
        mu1 = (m[-1] - m) / np.maximum(w1, 1)
        between = w0 * w1 * (mu0 - mu1) ** 2
        i = int(np.argmax(between[:-1]))
        return float(edges[i + 1])


def knn_mean_distance(sorted_scores: np.ndarray, k: int) -> np.ndarray:
    """Mean distance of each score to its ``k`` nearest neighbours among the scores (1-D, sorted input).

    In one dimension the k nearest neighbours of element i lie in a window of the sorted array, so a
    two-pointer merge over left and right neighbours gives them in O(n k) without a KD-tree.
    """
    s = sorted_scores
    n = s.size
    k = min(k, n - 1)
    out = np.zeros(n)
    if k <= 0:
        return out
    # Candidates: the k left and k right neighbours; the k smallest distances among them are the kNN.
    offs = np.arange(1, k + 1)
    left = np.abs(s[:, None] - s[np.clip(np.arange(n)[:, None] - offs, 0, n - 1)])
    right = np.abs(s[np.clip(np.arange(n)[:, None] + offs, 0, n - 1)] - s[:, None])
    idx = np.arange(n)[:, None]
    left[idx - offs < 0] = np.inf
    right[idx + offs > n - 1] = np.inf
    both = np.concatenate([left, right], axis=1)
    nearest = np.partition(both, k - 1, axis=1)[:, :k]
    return nearest.mean(axis=1)


@attrs.define
class Density:
    """CryoMAE's density-based cut-off (papers/cryomae.md §3.3, Algorithm 1).

    For each score, the mean distance to its ``k`` nearest neighbours among all scores; the cut-off is
    where the rate of change of that mean distance is largest: where the background's dense cloud of
    scores gives way to the sparse scores of particles. The paper leaves ``k`` and the discretisation
    open (Algorithm 1 is not in the text); choices made here, tested on bimodal score sets (3 misses in
    400 synthetic cases, against 100 for a one-step difference with k = 1 % of the scores):

    - ``k`` defaults to 10 % of the candidates (at least 10): a small ``k`` makes the few top-scoring
      particles look like a sparse cluster of their own and the cut lands inside the particles;
    - the rate of change is a centred difference over ``2 * k`` ranks (ascending scores), searched over
      the upper ``search`` fraction of ranks (particles are the minority of sliding windows);
    - within that steepest window, the cut is placed at the largest gap between consecutive scores.
    """

    k: int | None = None
    search: float = 0.5

    def cutoff(self, scores) -> float:
        s = np.sort(_peaks_tier(scores))
        n = s.size
        if n < 4:
            return float(s.min()) if n else np.inf
        k = min(self.k or max(10, n // 10), n - 1)
        d = knn_mean_distance(s, k)
        h = max(1, min(k, (n - 1) // 2))
        rate = np.full(n, -np.inf)
        rate[h: n - h] = d[2 * h:] - d[: n - 2 * h]
        start = min(int(n * (1.0 - self.search)), n - 1)
        i = start + int(np.argmax(rate[start:]))
        window = s[max(i - h, 0): min(i + h, n - 1) + 1]
        if window.size < 2:
            return float(s[i])
        j = int(np.argmax(np.diff(window)))
        return float(window[j + 1])


def apply_threshold(candidates, cutoff: float):
    """Picks: the candidates whose score is at or above ``cutoff``."""
    return candidates.above(cutoff)


def decoy_cutoff(scores, decoys, decoy_weight: float = 0.8) -> float:
    """Automatic cut-off for the peaks of a linear filter response, from its mirror image.

    ``scores`` are the heights of the local maxima of a response map (candidates); ``decoys`` the heights
    of the local maxima of the *negated* map, found with the same suppression. On background the response
    of a zero-mean filter is symmetric, so the decoys estimate how many background peaks lie above any cut
    ``t``: ``D(t)``. With ``N(t)`` candidates above ``t``, ``N(t) - decoy_weight * D(t)`` estimates the
    particles among them, its maximum ``P`` the particles in the image, and the cut returned maximises the
    estimated F1 ``2 TP(t) / (N(t) + P)``. ``decoy_weight < 1`` because some decoys are not background: the
    CTF's bright fringes around the particles themselves (0.8 measured on the simulator's suite and demo).
    Returns ``inf`` (nothing kept) when no cut leaves more candidates than decoys.
    """
    s = np.sort(_finite(scores))[::-1]
    d = np.sort(_finite(decoys))[::-1]
    if s.size == 0:
        return np.inf
    n = np.arange(1, s.size + 1)
    tp = n - decoy_weight * np.searchsorted(-d, -s, side="right")
    if tp.max() <= 0:
        return np.inf
    f1 = 2 * tp / (n + tp.max())
    return float(s[int(np.argmax(f1))])


def calibrated_peaks(score_map: np.ndarray, radius: float, exclude_border: float = 0.0,
                     decoy_weight: float = 0.8):
    """Local maxima of a zero-mean filter response (DoG, smoothed intensity, ...), their scores shifted so
    that ``score >= 0`` is the automatic cut-off of :func:`decoy_cutoff` for this image: with such scores a
    classical picker's default threshold ``fixed:0`` keeps what the image itself supports, and ranking
    within the image is unchanged."""
    from cryopick.nms import peak_local_max
    from cryopick.particles import Particles

    cands = peak_local_max(score_map, radius=radius, exclude_border=exclude_border)
    if len(cands) == 0:
        return cands
    decoys = peak_local_max(-score_map, radius=radius, exclude_border=exclude_border)
    cut = decoy_cutoff(cands.score, decoys.score, decoy_weight)
    if not np.isfinite(cut):
        cut = float(cands.score.max()) + 1e-6  # nothing stands out: every score below 0
    return Particles(cands.x, cands.y, (cands.score - cut).astype(np.float32))
