"""Peak finding on score maps: vectorised non-maximum suppression.

Used by the DoG picker and by plugins (Topaz extraction) that score every pixel.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from cryopick.particles import Particles


def disk_footprint(radius: float) -> np.ndarray:
    """Boolean ``(2r+1, 2r+1)`` mask of the digital disk ``dx^2 + dy^2 <= radius^2``."""
    r = int(np.floor(radius))
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    return (xx ** 2 + yy ** 2) <= radius ** 2


def disk_maximum_filter(image: np.ndarray, radius: float) -> np.ndarray:
    """Maximum of ``image`` over the disk ``dx^2 + dy^2 <= radius^2`` around each pixel (outside = -inf),
    equal to ``ndimage.maximum_filter`` with :func:`disk_footprint` but O(radius) instead of O(radius^2)
    per pixel (~0.1 s instead of ~1.6 s for a 1024^2 map at radius 15).

    The digital disk is the union over ``dy = 0..floor(radius)`` of the rectangles of half-height ``dy`` and
    half-width ``floor(sqrt(radius^2 - dy^2))``; the vertical running maximum is grown one row at a time."""
    img = np.asarray(image, dtype=np.float32)
    r = int(math.floor(max(radius, 0.0)))
    h, w = img.shape
    pad = np.full((h + 2 * r, w), -np.inf, dtype=np.float32)
    pad[r: r + h] = img
    vert = img.copy()  # running maximum over rows y-dy..y+dy
    out = np.full_like(img, -np.inf)
    for dy in range(r + 1):
        if dy:
            np.maximum(vert, pad[r - dy: r - dy + h], out=vert)
            np.maximum(vert, pad[r + dy: r + dy + h], out=vert)
        half = int(math.floor(math.sqrt(max(radius * radius - dy * dy, 0.0)) + 1e-9))
        if dy < r:  # the next rectangle has the same half-width: skip this one (it is contained)
            nxt = int(math.floor(math.sqrt(max(radius * radius - (dy + 1) ** 2, 0.0)) + 1e-9))
            if nxt == half:
                continue
        rect = ndimage.maximum_filter1d(vert, 2 * half + 1, axis=1, mode="constant", cval=-np.inf)
        np.maximum(out, rect, out=out)
    return out


def peak_local_max(score_map: np.ndarray, radius: float, threshold: float = -np.inf,
                   exclude_border: float = 0, max_peaks: int | None = None) -> Particles:
    """Local maxima of ``score_map`` that are the largest value within a disk of ``radius`` pixels.

    Equivalent to greedy NMS with a disk of ``radius`` for well-separated peaks, but computed with one
    grey-scale dilation (:func:`disk_maximum_filter`, no Python loop over pixels). Plateaus keep one pixel. Returns candidates in
    the map's pixel coordinates, sorted by score (highest first).
    """
    score_map = np.asarray(score_map, dtype=np.float32)
    dilated = disk_maximum_filter(score_map, max(radius, 1.0))
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
    if n > 10_000 and np.unique(cand.score).size < n // 2:
        # A plateau (a flat map, e.g. a model that has no label yet: every pixel is a peak): the close pairs
        # number n x the pixels of a disk, too many to list; take the survivors in rank order instead.
        keep, xy = np.ones(n, dtype=bool), cand.xy
        for i in range(n):
            if keep[i]:
                near = np.asarray(tree.query_ball_point(xy[i], radius), dtype=np.int64)
                keep[near[near > i]] = False
        return cand.subset(keep)
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


#: Score lowered from the candidates of ``extract_peaks(..., method="tiered")`` that are no local maximum (a
#: shoulder of a brighter neighbour's peak), so that they rank below every local maximum: far beyond the range
#: of the logits the pickers score with (tens), yet exact in float32 (scores keep their 1e-4 resolution).
SHOULDER_OFFSET = 1000.0


def greedy_cover_nms(score_map: np.ndarray, radius: float, threshold: float = -np.inf,
                     exclude_border: float = 0) -> Particles:
    """Greedy non-maximum suppression over every pixel of ``score_map`` (topaz extract's NMS, Bepler et al.
    2019, Online Methods §9): the best remaining pixel at or above ``threshold`` becomes a candidate and
    removes every pixel within ``radius``; repeat until no pixel is left.

    Unlike :func:`peak_local_max` a candidate need not be a local maximum of the map: a particle pressed
    against a brighter neighbour, whose score only shoulders that neighbour's peak, still gets a candidate
    once the neighbour's disk is removed. On crowded micrographs that is most of the difference between the
    two (EMPIAR-10059: local maxima reach 55 % of the particles, see docs/benchmarks.md).

    Computed in rounds: every pixel that is the maximum of the remaining pixels within its disk is what the
    pixel-by-pixel loop would take (each higher pixel nearby is already removed by a higher candidate, so
    none can remove it), so a round takes all of them at once (ties by :func:`greedy_nms`) and removes their
    disks. Rounds are few (one per "shoulder" level), each one disk filter. Sorted by score."""
    s = np.array(score_map, dtype=np.float32)
    s[~np.isfinite(s) | (s < threshold)] = -np.inf
    if exclude_border > 0:
        b = int(np.ceil(exclude_border))
        s[:b, :] = s[-b:, :] = -np.inf
        s[:, :b] = s[:, -b:] = -np.inf
    radius = max(radius, 1.0)
    found: list[Particles] = []
    while True:
        alive = np.isfinite(s)
        if not alive.any():
            break
        peaks = alive & (s == disk_maximum_filter(s, radius))
        ys, xs = np.nonzero(peaks)
        taken = greedy_nms(Particles(xs, ys, s[ys, xs]).sorted_by_score(), radius)
        found.append(taken)
        mark = np.zeros(s.shape, dtype=np.float32)
        mark[taken.y.astype(int), taken.x.astype(int)] = 1.0
        s[disk_maximum_filter(mark, radius) > 0] = -np.inf
    return Particles.concat(found).sorted_by_score() if found else Particles.empty()


def extract_peaks(score_map: np.ndarray, radius: float, method: str = "local-max",
                  exclude_border: float = 0) -> Particles:
    """Candidates of a per-pixel score map by ``method`` (the ``nms`` setting of the pickers that score every
    pixel):

    ``"local-max"``
        the pixels that are the maximum of their disk (:func:`peak_local_max`);
    ``"greedy"``
        topaz-em's NMS over every pixel (:func:`greedy_cover_nms`): also a particle on a brighter neighbour's
        shoulder, ranked by its own pixel's score among the local maxima;
    ``"tiered"``
        the same candidates, with every shoulder ranked after all local maxima (its score lowered by
        :data:`SHOULDER_OFFSET`): the local maxima's ranking and any cut above the shoulders are those of
        ``"local-max"``, and the shoulders only add recall at the end of the list.
    """
    if method == "local-max":
        return peak_local_max(score_map, radius=radius, exclude_border=exclude_border)
    if method == "greedy":
        return greedy_cover_nms(score_map, radius=radius, exclude_border=exclude_border)
    if method == "tiered":
        cover = greedy_cover_nms(score_map, radius=radius, exclude_border=exclude_border)
        # A local maximum as peak_local_max finds it: the largest value of its disk in the whole map. (The
        # cover's first round is not: it masks the border first, which turns slopes into peaks at its edge.)
        full = np.where(np.isfinite(score_map), score_map, -np.inf).astype(np.float32)
        dilated = disk_maximum_filter(full, max(radius, 1.0))
        iy, ix = cover.y.astype(int), cover.x.astype(int)
        shoulder = full[iy, ix] < dilated[iy, ix]
        score = np.where(shoulder, cover.score - np.float32(SHOULDER_OFFSET), cover.score)
        return Particles(cover.x, cover.y, score).sorted_by_score()
    raise ValueError(f"nms={method!r}: one of local-max, greedy, tiered")
