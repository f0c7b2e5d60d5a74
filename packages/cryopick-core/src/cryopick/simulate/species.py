"""Particle species: 3-D densities made of Gaussian blobs.

A :class:`Species` is a density ``rho(r) = sum_i w_i N(r; c_i, S_i)`` where each blob is a 3-D Gaussian with
centre ``c_i`` and an axis-aligned covariance ``S_i = diag(sigma_i**2)`` in the particle's own frame. Centres and
widths are in units of the particle *radius*: the whole density (centres plus 1.5 sigma) fits in the unit ball,
and the weighted centroid is the origin, so the labelled coordinate is the projected centre of mass.
A :class:`~cryopick.simulate.config.SimulationConfig` scales a species to ``diameter_px`` pixels.

``SUITE`` maps a name to each built-in species. They differ in size (``diameter_a``, in Å) and shape, so that a
picker can be trained on some and tested on the others.
"""

from __future__ import annotations

import attrs
import numpy as np


@attrs.define(frozen=True, eq=False)
class Species:
    """A particle species: a 3-D density as a sum of Gaussian blobs.

    Parameters
    ----------
    name : str
        Name used in ``SUITE`` and in the ``cpSpecies`` column of simulated STAR files.
    diameter_a : float
        Typical diameter in Å (used by :func:`~cryopick.simulate.suite.suite_configs`).
    centers : ndarray, shape (k, 3)
        Blob centres in units of the particle radius.
    sigmas : ndarray, shape (k, 3)
        Blob standard deviations along the particle's own x, y, z axes, in units of the radius.
    weights : ndarray, shape (k,)
        Integrated density of each blob (arbitrary units; simulations rescale to a target SNR).
    description : str
        One line saying what the species looks like.
    """

    name: str
    diameter_a: float
    centers: np.ndarray
    sigmas: np.ndarray
    weights: np.ndarray
    description: str = ""

    @property
    def n_blobs(self) -> int:
        return int(self.weights.size)


def make_species(name: str, diameter_a: float, centers, sigmas, weights=None, description: str = "") -> Species:
    """Build a :class:`Species`, centring it on its centroid and scaling it into the unit ball.

    Parameters
    ----------
    name, diameter_a, description
        See :class:`Species`.
    centers : array_like, shape (k, 3)
        Blob centres in any unit.
    sigmas : array_like, shape (k,) or (k, 3)
        Isotropic (k,) or per-axis (k, 3) standard deviations, same unit as ``centers``.
    weights : array_like, shape (k,), optional
        Blob weights; by default proportional to blob volume (uniform mass density).

    Returns
    -------
    Species
    """
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 3)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if sigmas.ndim == 1:
        sigmas = np.repeat(sigmas[:, None], 3, axis=1)
    sigmas = np.broadcast_to(sigmas, centers.shape).copy()
    if weights is None:
        weights = np.prod(sigmas, axis=1)
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    weights = weights / weights.sum()
    centers = centers - (weights[:, None] * centers).sum(axis=0)
    extent = np.max(np.linalg.norm(centers, axis=1) + 1.5 * sigmas.max(axis=1))
    return Species(name, float(diameter_a), centers / extent, sigmas / extent, weights, description)


def _ball(rng: np.random.Generator, n: int, radius: float) -> np.ndarray:
    """``n`` points uniform in a ball."""
    v = rng.normal(size=(n, 3))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v * radius * rng.uniform(0, 1, size=(n, 1)) ** (1 / 3)


def _ring(n: int, radius: float, z: float = 0.0, phase: float = 0.0) -> np.ndarray:
    a = phase + 2 * np.pi * np.arange(n) / n
    return np.stack([radius * np.cos(a), radius * np.sin(a), np.full(n, z)], axis=1)


def _globular(name="globular", diameter_a=120.0) -> Species:
    rng = np.random.default_rng(11)
    c = np.concatenate([[[0, 0, 0]], _ball(rng, 24, 0.55)])
    return make_species(name, diameter_a, c, np.full(len(c), 0.22), description="compact roughly spherical")


def _small() -> Species:
    rng = np.random.default_rng(12)
    c = _ball(rng, 8, 0.4)
    return make_species("small", 70.0, c, np.full(8, 0.3), description="small compact globular protein")


def _elongated() -> Species:
    z = np.linspace(-0.8, 0.8, 9)
    c = np.stack([0.05 * np.sin(3 * z), np.zeros_like(z), z], axis=1)
    s = np.array([[0.17, 0.17, 0.14]] * len(z))
    return make_species("elongated", 220.0, c, s, description="slightly bent rod, length ~4x width")


def _asymmetric() -> Species:
    rng = np.random.default_rng(13)
    big = _ball(rng, 16, 0.45) + [0.0, -0.2, 0.0]
    small = _ball(rng, 9, 0.3) + [0.15, 0.5, 0.1]
    stalk = np.array([[0.55, 0.55, 0.0], [0.7, 0.6, 0.05]])
    c = np.concatenate([big, small, stalk])
    s = np.concatenate([np.full(16, 0.22), np.full(9, 0.18), np.full(2, 0.1)])
    return make_species("asymmetric", 260.0, c, s, description="two unequal lobes and a stalk (ribosome-like)")


def _c3_trimer() -> Species:
    arms = np.concatenate([_ring(3, 0.45, z) for z in (-0.35, 0.0, 0.35)])
    c = np.concatenate([arms, [[0, 0, 0.55], [0, 0, -0.5]]])
    s = np.concatenate([np.full(9, 0.2), [0.15, 0.15]])
    return make_species("c3_trimer", 150.0, c, s, description="C3 trimer of elongated subunits (spike-like)")


def _c7_ring() -> Species:
    c = np.concatenate([_ring(7, 0.72, 0.18), _ring(7, 0.72, -0.18, np.pi / 7)])
    return make_species("c7_ring", 160.0, c, np.full(14, 0.16), description="double heptameric ring with a hole")


def _dumbbell() -> Species:
    rng = np.random.default_rng(14)
    c = np.concatenate([_ball(rng, 6, 0.2) + [0.5, 0, 0], _ball(rng, 6, 0.2) + [-0.5, 0, 0], [[0, 0, 0]]])
    s = np.concatenate([np.full(12, 0.22), [0.15]])
    return make_species("dumbbell", 100.0, c, s, description="C2 dimer of two globular domains")


def _barrel() -> Species:
    rings = [_ring(7, 0.38, z, k * np.pi / 7) for k, z in enumerate((-0.6, -0.2, 0.2, 0.6))]
    c = np.concatenate(rings)
    return make_species("barrel", 300.0, c, np.full(len(c), 0.15), description="4 stacked C7 rings (proteasome-like)")


def _tetrahedral() -> Species:
    v = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) * 0.4
    c = np.concatenate([v, v * 0.4])
    s = np.concatenate([np.full(4, 0.24), np.full(4, 0.15)])
    return make_species("tetrahedral", 180.0, c, s, description="four lobes at tetrahedron vertices")


def _shell() -> Species:
    # 24 subunits on a sphere (the vertices of a snub cube are close to apoferritin's 432 arrangement; a
    # Fibonacci sphere is near enough): a hollow cage whose projection is a ring brighter at the rim.
    n = 24
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    a = np.pi * (1 + 5**0.5) * i
    c = 0.72 * np.stack([np.sqrt(1 - z * z) * np.cos(a), np.sqrt(1 - z * z) * np.sin(a), z], axis=1)
    return make_species("shell", 125.0, c, np.full(n, 0.17), description="hollow 24-mer cage (apoferritin-like)")


def _l_shaped() -> Species:
    arm1 = np.stack([np.linspace(-0.6, 0.3, 5), np.full(5, -0.4), np.zeros(5)], axis=1)
    arm2 = np.stack([np.full(4, -0.6), np.linspace(-0.15, 0.6, 4), np.zeros(4)], axis=1)
    c = np.concatenate([arm1, arm2])
    s = np.array([[0.17, 0.17, 0.22]] * len(c))
    return make_species("l_shaped", 130.0, c, s, description="flat L-shaped two-arm particle")


SUITE: dict[str, Species] = {
    sp.name: sp
    for sp in (
        _globular(),
        _small(),
        _elongated(),
        _asymmetric(),
        _c3_trimer(),
        _c7_ring(),
        _dumbbell(),
        _barrel(),
        _tetrahedral(),
        _l_shaped(),
        _shell(),
    )
}
"""Built-in species by name; sizes (Å) all differ."""


def get_species(name: str) -> Species:
    """Look up a species in :data:`SUITE`, raising :class:`~cryopick.errors.InputError` for unknown names."""
    from cryopick.errors import InputError

    try:
        return SUITE[name]
    except KeyError:
        raise InputError(f"unknown species {name!r}; choose one of: {', '.join(SUITE)}") from None
