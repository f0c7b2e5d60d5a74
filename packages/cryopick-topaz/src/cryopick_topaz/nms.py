"""Fast disk non-maximum suppression for per-pixel score maps.

:func:`peak_local_max` returns the same candidates as :func:`cryopick.nms.peak_local_max` (a pixel is a
candidate when it equals the maximum of its disk of ``radius``; plateaus are thinned by greedy NMS), but
computes the disk maximum as the maximum over the disk's ``floor(radius) + 1`` nested rectangles, each a
separable pair of running-maximum filters (``scipy.ndimage.maximum_filter1d``, O(1) per pixel). A
non-separable disk footprint costs O(radius^2) per pixel: ~1.6 s for a 1024^2 map at radius 15, against
~0.1 s here.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from cryopick.nms import greedy_nms
from cryopick.particles import Particles


def disk_maximum_filter(image: np.ndarray, radius: float) -> np.ndarray:
    """Maximum of ``image`` over the disk ``dx^2 + dy^2 <= radius^2`` around each pixel (outside = -inf).

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
                   exclude_border: float = 0) -> Particles:
    """Local maxima of ``score_map`` within a disk of ``radius`` (see the module docs), best first."""
    score_map = np.asarray(score_map, dtype=np.float32)
    dilated = disk_maximum_filter(score_map, max(radius, 1.0))
    peaks = (score_map == dilated) & (score_map >= threshold) & np.isfinite(score_map)
    if exclude_border > 0:
        b = int(np.ceil(exclude_border))
        peaks[:b, :] = peaks[-b:, :] = False
        peaks[:, :b] = peaks[:, -b:] = False
    ys, xs = np.nonzero(peaks)
    found = Particles(xs, ys, score_map[ys, xs]).sorted_by_score()
    return greedy_nms(found, radius)
