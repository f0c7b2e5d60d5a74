"""Re-centring candidates on the particles the user labelled: each candidate moves to the best match, within a
small search radius, of a template built from the labelled particles.

A picker that scores windows (CryoMAE's sliding windows) knows that a window holds a particle better than
where the particle's centre is: on crowded micrographs a window of 1.2 diameters holds parts of two or three
particles, and its score peaks between them. The template is the rotational average of the mean crop around
the labelled centres (rotational, because particles lie at every in-plane angle), correlated with the
(preprocessed) micrograph; each candidate takes the position of the correlation's maximum within
``search_px`` of it, refined to sub-pixel precision by a parabola through that maximum and its neighbours,
and keeps its score. Classical template matching (Frank & Wagenknecht 1984); :func:`recentre` only moves
candidates, it never adds or ranks them.

The same correlation is also evidence for ranking (:func:`correlation_norm`, :func:`correlation_score`): it is
the matched filter, the optimal linear detector of a known signal in white noise. Its value is standardised
over its own micrograph and clipped at the median the labelled particles reach, because values above what
particles give (ice contamination, aggregates, carbon edges) are not more particle-like; a picker adds a
small multiple of it to its own score. Far above what particles give, it counts against the candidate
(:func:`capped_correlation`): a contaminant correlates with any blob-like template more than a particle does,
and a clip alone leaves it level with the particles, where the picker's own score (which also rises with
contrast) ranks it first.
"""

from __future__ import annotations

import numpy as np

from cryopick.particles import Particles


def crop_centred(image: np.ndarray, xy: np.ndarray, size: int, mode: str = "constant") -> np.ndarray:
    """``(n, size, size)`` float32 crops centred on ``xy`` (``(n, 2)`` of x, y pixel centres); outside the image
    zero (``mode="constant"``: the mean of a normalised micrograph) or any other ``numpy.pad`` mode."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    padded = np.pad(np.asarray(image).astype(np.float32, copy=False), size, mode=mode)
    half = (size - 1) / 2
    out = np.empty((len(xy), size, size), dtype=np.float32)
    for k, (x, y) in enumerate(xy):
        x0 = int(round(x - half)) + size
        y0 = int(round(y - half)) + size
        x0 = min(max(x0, 0), padded.shape[1] - size)
        y0 = min(max(y0, 0), padded.shape[0] - size)
        out[k] = padded[y0: y0 + size, x0: x0 + size]
    return out


def _rings(radius: float) -> tuple[int, np.ndarray]:
    """``(r, ring)``: the template's half-size ``r`` and each pixel's ring index (rounded distance from the centre)
    on the ``(2r+1, 2r+1)`` grid of :func:`radial_template`."""
    r = max(1, int(round(radius)))
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    return r, np.rint(np.hypot(xx, yy)).astype(int)


def radial_template(image: np.ndarray, centres: np.ndarray, radius: float) -> np.ndarray:
    """The rotational average of the mean crop of ``image`` around ``centres`` (``(n, 2)`` x, y): a
    ``(2r+1, 2r+1)`` float32 image, ``r = round(radius)``, zero outside the disk of radius ``r`` and zero-mean
    inside it (so that correlating with it ignores the local background level)."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    if not len(centres):
        raise ValueError("a template needs at least one labelled centre")
    r, ring = _rings(radius)
    mean = crop_centred(image, centres, 2 * r + 1, mode="reflect").astype(np.float64).mean(axis=0)
    profile = np.bincount(ring.ravel(), weights=mean.ravel()) / np.bincount(ring.ravel())
    template = profile[ring]
    inside = ring <= r
    template = np.where(inside, template - template[inside].mean(), 0.0)
    return template.astype(np.float32)


def correlation_map(image: np.ndarray, template: np.ndarray) -> np.ndarray:
    """Cross-correlation of ``image`` with ``template`` at every pixel (same shape as ``image``; FFT)."""
    from scipy.signal import fftconvolve

    t = np.asarray(template, dtype=np.float64)
    return fftconvolve(np.asarray(image, dtype=np.float64), t[::-1, ::-1], mode="same")


def parabola_offset(left: np.ndarray, centre: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Vertex of the parabola through (-1, left), (0, centre), (1, right), within [-0.5, 0.5] (0 where the
    parabola does not open downwards)."""
    left, centre, right = (np.asarray(v, dtype=np.float64) for v in (left, centre, right))
    curvature = left - 2 * centre + right
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (left - right) / curvature, 0.0)
    return np.clip(np.nan_to_num(offset), -0.5, 0.5)


def recentre(candidates: Particles, correlation: np.ndarray, search_px: float) -> Particles:
    """``candidates`` moved to the maximum of ``correlation`` within ``search_px`` of each (a disk), refined
    to sub-pixel precision; scores (and order) unchanged."""
    if not len(candidates) or search_px < 1:
        return candidates
    h, w = correlation.shape
    s = int(np.floor(search_px))
    yy, xx = np.mgrid[-s: s + 1, -s: s + 1]
    disk = np.hypot(xx, yy) <= search_px
    padded = np.pad(correlation, s + 1, mode="constant", constant_values=-np.inf)
    xi = np.clip(np.rint(candidates.x).astype(int), 0, w - 1)
    yi = np.clip(np.rint(candidates.y).astype(int), 0, h - 1)
    # every candidate's search window at once: (n, 2s+1, 2s+1), outside the disk and the image at -inf
    rows = (yi[:, None] + 1 + np.arange(2 * s + 1)[None])[:, :, None]
    cols = (xi[:, None] + 1 + np.arange(2 * s + 1)[None])[:, None, :]
    windows = np.where(disk[None], padded[rows, cols], -np.inf)
    best = windows.reshape(len(xi), -1).argmax(axis=1)
    by, bx = np.divmod(best, 2 * s + 1)
    ny, nx = yi + by - s, xi + bx - s
    c = padded[ny + s + 1, nx + s + 1]
    finite = lambda v: np.where(np.isfinite(v), v, c)  # noqa: E731 (the image edge: no refinement that way)
    dx = parabola_offset(finite(padded[ny + s + 1, nx + s]), c, finite(padded[ny + s + 1, nx + s + 2]))
    dy = parabola_offset(finite(padded[ny + s, nx + s + 1]), c, finite(padded[ny + s + 2, nx + s + 1]))
    return Particles(np.clip(nx + dx, 0, w - 1), np.clip(ny + dy, 0, h - 1), candidates.score.copy())


def _ring_kernels(radius: float) -> tuple[int, np.ndarray, np.ndarray]:
    """``(r, ring, kernels)`` with ``kernels[k]`` the zero-mean disk kernel of ring ``k`` (``k = 0..r``): a
    :func:`radial_template` whose ring profile is ``p`` equals ``sum_k p[k] kernels[k]`` (it is linear in ``p``)."""
    r, ring = _rings(radius)
    inside = ring <= r
    counts = np.bincount(ring[inside], minlength=r + 1)
    kernels = np.stack([np.where(ring == k, 1.0, 0.0) - np.where(inside, counts[k] / inside.sum(), 0.0)
                        for k in range(r + 1)])
    return r, ring, kernels


def plain_leave_one_out(image: np.ndarray, centres: np.ndarray, radius: float, search_px: float = 0.0,
                        full: np.ndarray | None = None) -> np.ndarray:
    """:func:`correlation_norm`'s ``z`` the plain way: for each centre, the others' template correlated with the
    whole micrograph and standardised over it (``full``: the correlation with the template of all centres, when
    already made). One correlation of the micrograph per centre."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(centres)
    if full is None:
        full = correlation_map(image, radial_template(image, centres, radius))
    z = np.empty(n)
    for i, xy in enumerate(centres):
        corr = full
        if n > 1:  # the template is linear in the crops: the others' = (n T - t_i) / (n - 1)
            corr = (n * full - correlation_map(image, radial_template(image, xy[None], radius))) / (n - 1)
        at = recentre(Particles(xy[:1], xy[1:], np.zeros(1)), corr, search_px)
        z[i] = sample_at(standardised_correlation(corr), at.xy)[0]
    return z


#: A micrograph's correlation is standardised with the median and spread of every ``_SAMPLE``-th pixel each way
#: (:func:`standardised_correlation`, and the leave-one-out norms of :func:`correlation_norm`).
_SAMPLE = 4


def _robust_centre_scale(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median and 1.4826 x median absolute deviation over the last axis of ``samples`` (a spread of 0 becomes
    1, so that dividing by it is safe)."""
    med = np.median(samples, axis=-1)
    mad = 1.4826 * np.median(np.abs(samples - med[..., None]), axis=-1)
    return med, np.where(mad > 0, mad, 1.0)


def correlation_norm(image: np.ndarray, centres: np.ndarray, radius: float,
                     search_px: float = 0.0) -> tuple[float, np.ndarray]:
    """``(clip, z)`` for :func:`correlation_score` on a reference ``image`` with labelled ``centres`` (``(n, 2)``
    x, y) and the template of all of them (:func:`radial_template` of ``radius``): ``z``, each centre's
    standardised correlation (:func:`standardised_correlation`) with the template of the *other* centres, at
    its maximum within ``search_px`` (as :func:`recentre` moves candidates), and ``clip``, the median of ``z``.
    Leaving each one out matters at low SNR: a centre's own noise is a 1/n part of the template and
    correlates with itself, which lifts its score above an unlabelled particle's (with one centre it cannot be
    left out, and is not).

    The template is linear in the crops, so the others' template is ``(n T - t_i) / (n - 1)`` with ``t_i`` the
    template of centre ``i`` alone, and ``t_i`` is linear in its ring profile (:func:`_ring_kernels`): the
    correlation with ``t_i`` is a combination of one correlation map per ring, made once. Each centre then needs
    that combination only where standardising reads it (every fourth pixel) and around itself, not a
    correlation of the whole micrograph of its own (hundreds of centres when a picker's own best picks stand in
    for labels, :func:`self_correlation`; ``benchmarks/bench_correlation.py``: 400 centres on 1024^2 in 1.8 s
    instead of 14.1). With no more centres than rings, the plain way is the cheaper, and is taken."""
    centres = np.asarray(centres, dtype=np.float64).reshape(-1, 2)
    n = len(centres)
    if not n:
        raise ValueError("a correlation norm needs at least one labelled centre")
    full = correlation_map(image, radial_template(image, centres, radius))
    r, ring, kernels = _ring_kernels(radius)
    if n <= len(kernels):  # no more centres than rings: one correlation of the micrograph per centre is cheaper
        z = plain_leave_one_out(image, centres, radius, search_px, full)
        return float(np.median(z)), z
    from scipy.signal import correlate

    crops = crop_centred(image, centres, 2 * r + 1, mode="reflect").astype(np.float64).reshape(n, -1)
    per_ring = np.bincount(ring.ravel())
    onehot = (ring.ravel()[None, :] == np.arange(r + 1)[:, None]).astype(np.float64)
    profiles = crops @ onehot.T / per_ring[: r + 1]  # (n, r + 1): each centre's ring averages
    # what standardising reads: every _SAMPLE-th pixel of each ring's map and of the full template's
    sampled = np.stack([correlation_map(image, k)[::_SAMPLE, ::_SAMPLE].ravel() for k in kernels])
    full_sampled = full[::_SAMPLE, ::_SAMPLE].ravel()
    h, w = full.shape
    reach = (int(np.floor(search_px)) if search_px >= 1 else 0) + 2  # the search disk, the parabola, bilinear
    padded = np.pad(np.asarray(image, dtype=np.float64), reach + r)
    z = np.empty(n)
    step = max(1, min(64, 2 ** 24 // full_sampled.size))  # (step, pixels / 16) values at a time: 128 MB at most
    for a in range(0, n, step):
        block = profiles[a: a + step]
        med, mad = _robust_centre_scale((n * full_sampled[None] - block @ sampled) / (n - 1))
        for j, profile in enumerate(block):
            x, y = centres[a + j]
            xi, yi = int(np.clip(np.rint(x), 0, w - 1)), int(np.clip(np.rint(y), 0, h - 1))
            x0, x1, y0, y1 = max(0, xi - reach), min(w, xi + reach + 1), max(0, yi - reach), min(h, yi + reach + 1)
            # the correlation with centre i's own template on that window (zero outside the image, as FFT's)
            patch = padded[y0 + reach: y1 + reach + 2 * r, x0 + reach: x1 + reach + 2 * r]
            own = correlate(patch, np.tensordot(profile, kernels, axes=1), mode="valid")
            local = (n * full[y0:y1, x0:x1] - own) / (n - 1)
            at = recentre(Particles([x - x0], [y - y0], np.zeros(1)), local, search_px)
            z[a + j] = (sample_at(local, at.xy)[0] - med[j]) / mad[j]
    return float(np.median(z)), z


def standardised_correlation(correlation: np.ndarray) -> np.ndarray:
    """``correlation`` in robust standard units of its own micrograph: minus its median, over 1.4826 x its
    median absolute deviation. Per micrograph, because its spread follows the micrograph's contrast (ASPIRE's
    micrographs differ by 2x), and robust, because contaminants take up a few per cent of the pixels."""
    c = np.asarray(correlation, dtype=np.float64)
    med, scale = _robust_centre_scale(c[::_SAMPLE, ::_SAMPLE].ravel())
    return (c - med) / scale


#: Standardised correlations above this multiple of the particles' clip count against a candidate
#: (:func:`capped_correlation`). Over the active loop's candidates after 50 answers (docs/benchmarks.md), the
#: particles' 99th percentile was 1.0-1.4 x the clip on every set, and the false candidates at the top of ASPIRE's
#: ranking (its contaminants) reached 2-6 x.
CONTAMINANT = 2.0
#: How far (fraction of the particle diameter) from a candidate a correlation above the contaminant bound counts
#: against it: a particle radius. A contaminant lowered where it peaks would otherwise leave candidates on its rim.
CONTAMINANT_REACH = 0.5


def capped_correlation(z: np.ndarray, clip: float, contaminant: float = CONTAMINANT,
                       peak: np.ndarray | None = None) -> np.ndarray:
    """Standardised correlations ``z`` as ranking evidence: ``min(z, clip)``, and minus the excess of ``peak``
    (default ``z``; :func:`correlation_score` gives the largest ``z`` within a particle radius) over ``contaminant``
    x ``clip``: the value rises to the particles' median, stays level up to twice it, and falls beyond, where the
    candidate is on something brighter or larger than any particle (ice, an aggregate, a carbon edge).
    ``contaminant`` 0, or a clip at or below 0 (a template particles do not match better than background), leaves
    the plain clip."""
    z = np.asarray(z)
    capped = np.minimum(z, clip)
    if contaminant <= 0 or clip <= 0:
        return capped
    return capped - np.maximum((z if peak is None else np.asarray(peak)) - contaminant * clip, 0.0)


def neighbourhood_max(z: np.ndarray, reach_px: float) -> np.ndarray:
    """The largest value of ``z`` within ``reach_px`` on each axis (a square, separable maximum filter)."""
    from scipy.ndimage import maximum_filter

    return maximum_filter(np.asarray(z), size=2 * int(round(reach_px)) + 1, mode="nearest")


def correlation_score(correlation: np.ndarray, xy: np.ndarray, clip: float, contaminant: float = CONTAMINANT,
                      reach_px: float = 0.0) -> np.ndarray:
    """The :func:`standardised_correlation` of a micrograph's ``correlation`` map at ``xy`` (``(n, 2)``,
    bilinear), capped at ``clip`` (from :func:`correlation_norm`) and lowered by the excess over the contaminant
    bound of the largest value within ``reach_px`` (:func:`capped_correlation`; 0: the value at ``xy``)."""
    z = standardised_correlation(correlation)
    peak = sample_at(neighbourhood_max(z, reach_px), xy) if contaminant > 0 and reach_px >= 0.5 else None
    return capped_correlation(sample_at(z, xy), float(clip), contaminant, peak)


def sample_at(image: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """``image`` at the points ``xy`` (``(n, 2)`` x, y), bilinear, edges extended."""
    from scipy.ndimage import map_coordinates

    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    return map_coordinates(np.asarray(image, dtype=np.float64), [xy[:, 1], xy[:, 0]], order=1, mode="nearest")


def labels_correlation(labelled: list[tuple[np.ndarray, np.ndarray]], radius: float,
                       search_px: float = 0.0) -> tuple[np.ndarray, float]:
    """``(template, clip)`` of the particles labelled on several micrographs (``labelled``: ``(image, centres)``
    pairs, centres ``(n, 2)`` x, y; micrographs without centres are skipped): the :func:`radial_template` of all
    their crops (the count-weighted mean of each micrograph's, exact because the template is linear in the
    crops) and the clip for :func:`correlation_score`, the median over all centres of each one's leave-one-out
    standardised correlation on its own micrograph (:func:`correlation_norm`)."""
    pairs = [(im, np.asarray(c, dtype=np.float64).reshape(-1, 2)) for im, c in labelled]
    pairs = [(im, c) for im, c in pairs if len(c)]
    if not pairs:
        raise ValueError("a template needs at least one labelled centre")
    n = sum(len(c) for _, c in pairs)
    template = sum(len(c) * radial_template(im, c, radius).astype(np.float64) for im, c in pairs) / n
    z = np.concatenate([correlation_norm(im, c, radius, search_px)[1] for im, c in pairs])
    return template.astype(np.float32), float(np.median(z))


def self_correlation(image: np.ndarray, candidates: Particles, cut: float, fraction: float, diameter_px: float,
                     search_px: float = 0.0, minimum: int = 5, contaminant: float = CONTAMINANT) -> np.ndarray | None:
    """Every candidate's :func:`correlation_score` against the template of the micrograph's own best picks: the
    best ``fraction`` (by score) of the ``candidates`` at or above ``cut`` make a :func:`labels_correlation`
    template of one ``diameter_px`` in radius, and its clip (their leave-one-out median, searched within
    ``search_px``). No labels are needed: a picker's most confident picks stand in for them, so the template has
    this micrograph's defocus and contrast, not those of another micrograph or data set. None when fewer than
    ``minimum`` candidates would make it. ``contaminant``: as :func:`correlation_score`, its bound on the largest
    correlation within ``CONTAMINANT_REACH`` diameters."""
    score = np.asarray(candidates.score)
    above = np.flatnonzero(score >= cut)
    k = int(round(fraction * len(above)))
    if k < max(1, int(minimum)):
        return None
    best = above[np.argsort(-score[above], kind="stable")[:k]]
    template, clip = labels_correlation([(image, candidates.xy[best])], diameter_px, search_px)
    return correlation_score(correlation_map(image, template), candidates.xy, clip, contaminant,
                             CONTAMINANT_REACH * diameter_px)
