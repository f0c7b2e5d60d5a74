"""Topaz's micrograph normalisation: a two-component Gaussian mixture per micrograph (numpy only).

Pixels are modelled as ``w N(mu_bg, s^2) + (1 - w) N(mu_fg, s^2)`` (shared variance) with a Beta(900, 1)
prior on the background weight ``w`` (Topaz Online Methods §2; METHODS.md), so the dominant component is
the ice background and the other absorbs particles, carbon and contaminants. The micrograph is then
standardised to the background: ``(x - mu_bg) / s``. Unlike affine normalisation, a dark carbon edge or a
gold bead does not shift or shrink the background's scale.

Fitting: EM (at most 100 iterations, stop when the log-posterior per pixel changes by less than 1e-3)
from several starts at quantiles (background weight in {0.1, ..., 0.9, 0.95, 0.98, 1}), keeping the start
with the best log-posterior. EM runs on a fixed pixel subsample, binned into a fine histogram (bins much
narrower than the noise, within-bin variance added back), so all starts together cost milliseconds. When
EM fails or degenerates (non-finite values, a vanishing variance, a constant image) it falls back to
affine normalisation (mean / standard deviation) and says so in :attr:`GMMFit.method`.
"""

from __future__ import annotations

import attrs
import numpy as np

from cryopick.preprocess import Preprocessed

_STARTS = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98, 1.0])


@attrs.define
class GMMFit:
    """Result of :func:`fit_gmm`: background mean ``mu``, shared standard deviation ``sigma``, background
    weight, the other component's mean, and ``method`` (``"gmm"`` or ``"affine"`` after a fallback)."""

    mu: float
    sigma: float
    weight: float = 1.0
    mu_other: float = float("nan")
    method: str = "gmm"
    iterations: int = 0


def _affine(values: np.ndarray) -> GMMFit:
    mu = float(np.mean(values)) if values.size else 0.0
    sd = float(np.std(values)) if values.size else 1.0
    return GMMFit(mu, sd if np.isfinite(sd) and sd > 0 else 1.0, method="affine")


def fit_gmm(values: np.ndarray, prior: tuple[float, float] = (900.0, 1.0), max_iter: int = 100,
            tol: float = 1e-3, bins: int = 4096) -> GMMFit:
    """Fit the two-component shared-variance mixture to 1-D ``values`` by MAP EM (see module docs)."""
    x = np.asarray(values, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    if x.size < 16:
        return _affine(x)
    lo, hi = float(x.min()), float(x.max())
    total_sd = float(x.std())
    if not hi > lo or not total_sd > 0:
        return _affine(x)
    counts, edges = np.histogram(x, bins=bins, range=(lo, hi))
    keep = counts > 0
    c = counts[keep].astype(np.float64)
    v = ((edges[:-1] + edges[1:]) / 2)[keep]
    bin_var = ((hi - lo) / bins) ** 2 / 12.0
    n = c.sum()
    a, b = prior

    # Starts: the top `w` fraction of pixels is the background, the rest the other component.
    xs = np.sort(x)
    mu_b, mu_f, var, w = [], [], [], []
    for start in _STARTS:
        cut = int(round((1.0 - start) * xs.size))
        upper, lower = xs[cut:], xs[:cut]
        mb = upper.mean() if upper.size else xs.mean()
        mf = lower.mean() if lower.size else xs.mean() - 2 * total_sd
        pooled = (np.sum((upper - mb) ** 2) + np.sum((lower - mf) ** 2)) / xs.size
        mu_b.append(mb), mu_f.append(mf), var.append(max(pooled, 1e-6 * total_sd ** 2))
        w.append(min(start, 0.999))
    mu_b, mu_f, var, w = (np.array(t)[:, None] for t in (mu_b, mu_f, var, w))

    def log_components(mu_b, mu_f, var, w):
        norm = -0.5 * np.log(2 * np.pi * var)
        lb = np.log(w) + norm - (v - mu_b) ** 2 / (2 * var)
        lf = np.log1p(-w) + norm - (v - mu_f) ** 2 / (2 * var)
        return lb, lf

    prev = np.full((len(_STARTS), 1), -np.inf)
    iterations = 0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for iterations in range(1, max_iter + 1):  # noqa: B007 (returned)
            lb, lf = log_components(mu_b, mu_f, var, w)
            m = np.maximum(lb, lf)
            log_mix = m + np.log(np.exp(lb - m) + np.exp(lf - m))
            r = np.exp(lb - log_mix)  # responsibility of the background, per bin
            # Log-posterior per pixel: likelihood plus the Beta prior on w.
            post = ((c * log_mix).sum(axis=1, keepdims=True)
                    + (a - 1) * np.log(w) + (b - 1) * np.log1p(-w)) / n
            nb = (c * r).sum(axis=1, keepdims=True)
            nf = n - nb
            w = np.clip((nb + a - 1) / (n + a + b - 2), 1e-6, 1 - 1e-9)  # MAP update of the Beta prior
            mu_b = (c * r * v).sum(axis=1, keepdims=True) / np.maximum(nb, 1e-12)
            mu_f = np.where(nf > 1e-9, (c * (1 - r) * v).sum(axis=1, keepdims=True) / np.maximum(nf, 1e-12), mu_f)
            var = ((c * (r * (v - mu_b) ** 2 + (1 - r) * (v - mu_f) ** 2)).sum(axis=1, keepdims=True) / n
                   + bin_var)
            if np.all(np.abs(post - prev) < tol):
                break
            prev = post
        lb, lf = log_components(mu_b, mu_f, var, w)
        m = np.maximum(lb, lf)
        log_mix = m + np.log(np.exp(lb - m) + np.exp(lf - m))
        post = ((c * log_mix).sum(axis=1) + (a - 1) * np.log(w[:, 0]) + (b - 1) * np.log1p(-w[:, 0])) / n
    post = np.where(np.isfinite(post) & np.isfinite(var[:, 0]) & (var[:, 0] > 0), post, -np.inf)
    best = int(np.argmax(post))
    sigma = float(np.sqrt(var[best, 0]))
    if not np.isfinite(post[best]) or not np.isfinite(mu_b[best, 0]) or not sigma > 1e-6 * total_sd:
        return _affine(x)
    return GMMFit(float(mu_b[best, 0]), sigma, float(w[best, 0]), float(mu_f[best, 0]), "gmm", iterations)


@attrs.define
class GMMNormalize:
    """Preprocessor ``gmm``: standardise each micrograph to the background component of a two-component
    Gaussian mixture, ``(x - mu_background) / sigma`` (see module docs).

    Parameters
    ----------
    sample : int
        Pixels (a fixed random subsample) the mixture is fitted on.
    max_iter, tol : int, float
        EM iterations (100) and tolerance on the log-posterior per pixel (1e-3).
    prior_a, prior_b : float
        Beta prior on the background weight (900, 1).
    seed : int
        Seed of the pixel subsample (deterministic output).
    """

    sample: int = 200_000
    max_iter: int = 100
    tol: float = 1e-3
    prior_a: float = 900.0
    prior_b: float = 1.0
    seed: int = 0
    last_fit: GMMFit | None = attrs.field(default=None, init=False, repr=False)

    def __call__(self, image: np.ndarray) -> Preprocessed:
        image = np.asarray(image, dtype=np.float32)
        flat = image.ravel()
        if flat.size > self.sample:
            idx = np.random.default_rng(self.seed).choice(flat.size, self.sample, replace=False)
            flat = flat[idx]
        fit = fit_gmm(flat, (self.prior_a, self.prior_b), self.max_iter, self.tol)
        self.last_fit = fit
        out = (image - np.float32(fit.mu)) / np.float32(fit.sigma)
        return Preprocessed(np.nan_to_num(out).astype(np.float32))
