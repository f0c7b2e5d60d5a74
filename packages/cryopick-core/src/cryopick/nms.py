"""Peak finding on score maps: vectorised non-maximum suppression.

Used by the DoG picker and by plugins (Topaz extraction) that score every pixel.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cryopick.particles import Particles


def disk_footprint(radius: float) -> np.ndarray:
    r = int(np.floor(radius))
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    return (xx ** 2 + yy ** 2) <= radius ** 2


def peak_local_max(score_map: np.ndarray, radius: float, threshold: float = -np.inf,
                   exclude_border: float = 0, max_peaks: int | None = None) -> Particles:
    """Local maxima of ``score_map`` that are the largest value within a disk of ``radius`` pixels.

    Equivalent to greedy NMS with a disk of ``radius`` for well-separated peaks, but computed with one
    grey-scale dilation (no Python loop over pixels). Plateaus keep one pixel. Returns candidates in
    the map's pixel coordinates, sorted by score (highest first).
    """
    score_map = np.asarray(score_map, dtype=np.float32)
    footprint = disk_footprint(max(radius, 1.0))
    dilated = ndimage.maximum_filter(score_map, footprint=footprint, mode="constant", cval=-np.inf)
    peaks = (score_map == dilated) & (score_map >= threshold) & np.isfinite(score_map)
    if exclude_border > 0:
        b = int(np.ceil(exclude_border))
        peaks[:b, :] = peaks[-b:, :] = False
        peaks[:, :b] = peaks[:, -b:] = False
    ys, xs = np.nonzero(peaks)
    scores = score_map[ys, xs]
    found = Particles(xs, ys, scores).sorted_by_score()
    # Plateaus give several equal maxima within one disk: keep the first of each by greedy NMS.
    found = greedy_nms(found, radius)
    if max_peaks is not None:
        found = found.subset(slice(0, max_peaks))
    return found


def greedy_nms(candidates: Particles, radius: float) -> Particles:
    """Greedy non-maximum suppression on a candidate list: the best-scoring candidate suppresses every
    other within ``radius``, then the next surviving one, and so on. Uses a KD-tree for neighbours,
    so cost is linear in the number of close pairs."""
    from scipy.spatial import cKDTree

    n = len(candidates)
    if n < 2:
        return candidates
    cand = candidates.sorted_by_score()
    tree = cKDTree(cand.xy)
    pairs = tree.query_pairs(radius, output_type="ndarray")
    if pairs.size == 0:
        return cand
    # Pairs are (i, j) with i < j, i.e. i ranks higher; process in rank order.
    keep = np.ones(n, dtype=bool)
    order = np.argsort(pairs[:, 0], kind="stable")
    pairs = pairs[order]
    starts = np.searchsorted(pairs[:, 0], np.arange(n + 1))
    for i in np.unique(pairs[:, 0]):
        if keep[i]:
            keep[pairs[starts[i]: starts[i + 1], 1]] = False
    return cand.subset(keep)
