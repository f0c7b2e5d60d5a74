"""Random orientations and analytic projections of Gaussian-blob densities.

Orientations use RELION's ZYZ Euler convention ``(rot, tilt, psi)`` in degrees. The matrix
``A = Rz(psi) @ Ry(tilt) @ Rz(rot)`` with ``Rz(a) = [[cos a, sin a, 0], [-sin a, cos a, 0], [0, 0, 1]]`` and
``Ry(b) = [[cos b, 0, -sin b], [0, 1, 0], [sin b, 0, cos b]]`` maps particle (body) coordinates to lab coordinates,
``r_lab = A @ r_body``; the image is the projection of the rotated density along the lab z axis.

A 3-D Gaussian ``N(c, S)`` rotated by ``A`` is ``N(A c, A S A^T)``; integrating it along z leaves the 2-D
Gaussian with mean ``(A c)[:2]`` and covariance ``(A S A^T)[:2, :2]`` and the same total weight. Each particle is
therefore rendered exactly (up to pixel sampling) as a sum of 2-D Gaussians in a small window, with no voxel volume.
"""

from __future__ import annotations

import math

import numpy as np

from cryopick.simulate.species import Species


def euler_to_matrix(angles_deg) -> np.ndarray:
    """Rotation matrices from ZYZ Euler angles.

    Parameters
    ----------
    angles_deg : array_like, shape (n, 3) or (3,)
        ``(rot, tilt, psi)`` in degrees.

    Returns
    -------
    ndarray, shape (n, 3, 3) or (3, 3)
        ``A`` such that ``r_lab = A @ r_body``.
    """
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    single = a.ndim == 1
    a = a.reshape(-1, 3)
    ca, cb, cg = np.cos(a[:, 0]), np.cos(a[:, 1]), np.cos(a[:, 2])
    sa, sb, sg = np.sin(a[:, 0]), np.sin(a[:, 1]), np.sin(a[:, 2])
    cc, cs, sc, ss = cb * ca, cb * sa, sb * ca, sb * sa
    m = np.empty((a.shape[0], 3, 3))
    m[:, 0, 0] = cg * cc - sg * sa
    m[:, 0, 1] = cg * cs + sg * ca
    m[:, 0, 2] = -cg * sb
    m[:, 1, 0] = -sg * cc - cg * sa
    m[:, 1, 1] = -sg * cs + cg * ca
    m[:, 1, 2] = sg * sb
    m[:, 2, 0] = sc
    m[:, 2, 1] = ss
    m[:, 2, 2] = cb
    return m[0] if single else m


def matrix_to_euler(m) -> np.ndarray:
    """ZYZ Euler angles ``(rot, tilt, psi)`` in degrees from rotation matrices (inverse of :func:`euler_to_matrix`)."""
    m = np.asarray(m, dtype=np.float64)
    single = m.ndim == 2
    m = m.reshape(-1, 3, 3)
    tilt = np.arccos(np.clip(m[:, 2, 2], -1.0, 1.0))
    rot = np.arctan2(m[:, 2, 1], m[:, 2, 0])
    psi = np.arctan2(m[:, 1, 2], -m[:, 0, 2])
    # Gimbal lock (tilt 0 or 180): put everything into rot.
    lock = np.abs(np.sin(tilt)) < 1e-9
    if np.any(lock):
        rot[lock] = np.arctan2(m[lock, 0, 1], m[lock, 0, 0]) * np.sign(m[lock, 2, 2])
        psi[lock] = 0.0
    out = np.rad2deg(np.stack([rot, tilt, psi], axis=1))
    return out[0] if single else out


def random_orientations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``(n, 3)`` ZYZ Euler angles (degrees) drawn uniformly from SO(3) (Haar measure).

    Uniform rotations come from normalised 4-D Gaussian vectors read as unit quaternions.
    """
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    m = np.empty((n, 3, 3))
    m[:, 0, 0] = 1 - 2 * (y * y + z * z)
    m[:, 0, 1] = 2 * (x * y - z * w)
    m[:, 0, 2] = 2 * (x * z + y * w)
    m[:, 1, 0] = 2 * (x * y + z * w)
    m[:, 1, 1] = 1 - 2 * (x * x + z * z)
    m[:, 1, 2] = 2 * (y * z - x * w)
    m[:, 2, 0] = 2 * (x * z - y * w)
    m[:, 2, 1] = 2 * (y * z + x * w)
    m[:, 2, 2] = 1 - 2 * (x * x + y * y)
    return matrix_to_euler(m)


def projected_blobs(species: Species, angles_deg, radius_px: float, keep=None):
    """2-D Gaussians of one particle's projection.

    Parameters
    ----------
    species : Species
    angles_deg : array_like, shape (3,)
        ZYZ Euler angles in degrees.
    radius_px : float
        Particle radius in pixels (species unit length).
    keep : array of bool, optional
        Blobs to keep (broken particles keep a subset).

    Returns
    -------
    means : ndarray, shape (k, 2)
        ``(x, y)`` offsets from the particle centre in pixels.
    inv_cov : ndarray, shape (k, 2, 2)
        Inverse covariances (pixel units).
    amplitude : ndarray, shape (k,)
        Peak values ``w / (2 pi sqrt(det C))``.
    """
    a = euler_to_matrix(angles_deg)
    c, s, w = species.centers, species.sigmas, species.weights
    if keep is not None:
        c, s, w = c[keep], s[keep], w[keep]
    means = (c @ a.T)[:, :2] * radius_px
    cov3 = np.einsum("ij,kj,lj->kil", a, s**2, a) * radius_px**2
    cov = cov3[:, :2, :2]
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    inv = np.empty_like(cov)
    inv[:, 0, 0] = cov[:, 1, 1] / det
    inv[:, 1, 1] = cov[:, 0, 0] / det
    inv[:, 0, 1] = inv[:, 1, 0] = -cov[:, 0, 1] / det
    amp = w / (2 * np.pi * np.sqrt(det))
    return means, inv, amp


def render_particle(canvas: np.ndarray, x: float, y: float, species: Species, angles_deg, radius_px: float,
                    scale: float = 1.0, keep=None) -> None:
    """Add one particle's projection to ``canvas`` (in place), evaluated in a window around ``(x, y)``.

    Parameters
    ----------
    canvas : ndarray, shape (rows, cols)
        Image to add to; ``x`` is the column and ``y`` the row of the particle centre.
    x, y : float
        Centre in pixels.
    species, angles_deg, radius_px, keep
        See :func:`projected_blobs`.
    scale : float
        Multiplies the density (1 = integrated density equals the species weight sum times ``radius_px**2``).
    """
    means, inv, amp = projected_blobs(species, angles_deg, radius_px, keep)
    # Weights are per unit radius**3 in 3-D; keep projected density independent of the pixel size of the species.
    amp = amp * scale * radius_px**2
    half = int(math.ceil(radius_px * (1.0 + 1.5 * float(species.sigmas.max())))) + 2
    rows, cols = canvas.shape
    r0, r1 = max(int(round(y)) - half, 0), min(int(round(y)) + half + 1, rows)
    c0, c1 = max(int(round(x)) - half, 0), min(int(round(x)) + half + 1, cols)
    if r0 >= r1 or c0 >= c1:
        return
    dy = (np.arange(r0, r1) - y)[None, :, None] - means[:, 1, None, None]
    dx = (np.arange(c0, c1) - x)[None, None, :] - means[:, 0, None, None]
    q = inv[:, 0, 0, None, None] * dx * dx + 2 * inv[:, 0, 1, None, None] * dx * dy + inv[:, 1, 1, None, None] * dy * dy
    patch = np.einsum("k,kij->ij", amp, np.exp(-0.5 * q))
    canvas[r0:r1, c0:c1] += patch.astype(canvas.dtype, copy=False)
