"""Simulated micrographs with known particle positions.

How a micrograph is made (all randomness from ``numpy.random.SeedSequence([seed, index])``):

1. Microscope: mean defocus uniform in ``config.defocus_um``, astigmatism up to ``config.astigmatism_um`` at a
   random angle.
2. Nuisances (``config.nuisances``), never labelled: a carbon edge (a region beyond a large circular arc with a
   lower mean and its own phase texture), ice contaminants (large dark irregular blobs), gold beads (10 nm, very
   dark disks), an ice-thickness gradient (a plane plus smooth variation), aggregates (clumps of 3-6 touching
   particles) and broken particles (only the blobs on one side of a random plane).
3. Labelled particles: centres at least ``min_distance * diameter_px`` apart, at least a radius from the image
   border, off carbon and away from contaminants and beads; each a projection at an orientation uniform on SO(3)
   (:mod:`cryopick.simulate.projection`).
4. The projected densities (phase objects: particles, aggregates, broken particles, carbon texture) are filtered by
   the CTF (:mod:`cryopick.simulate.ctf`), which makes particles dark at low frequency with Thon-ring fringes.
5. Noise: Gaussian, a fraction ``structural_noise`` of its variance CTF-filtered (ice and solvent scattering:
   Thon rings in the power spectrum, power in the particle band), the rest white. **SNR** is the mean square of the CTF-filtered labelled-particle signal ``s``
   (minus its mean over the whole image) over the pixels within a radius of a labelled centre, divided by the
   noise variance: ``SNR = mean_disks(s**2) / sigma_noise**2``. Amplitude nuisances are given in units of
   ``sigma_noise``.
6. Detector: ``image = offset + gain * (s + unlabelled + amplitude nuisances + noise)`` with a random gain and
   offset per micrograph (they do not change the SNR).
"""

from __future__ import annotations

import attrs
import numpy as np
import scipy.ndimage

from cryopick.errors import InputError
from cryopick.particles import Particles
from cryopick.simulate.config import SimulationConfig
from cryopick.simulate.ctf import apply_ctf, ctf_rfft
from cryopick.simulate.projection import random_orientations, render_particle
from cryopick.simulate.species import Species, get_species


@attrs.define(eq=False)
class SimulatedMicrograph:
    """One simulated micrograph and its ground truth.

    Parameters
    ----------
    name : str
        Micrograph name without extension (``sim_0003``).
    image : ndarray, float32, shape (rows, cols)
    truth : Particles
        Labelled particle centres (score NaN); aggregates, broken particles and nuisances are not included.
    species : ndarray of str
        Species name of each labelled particle.
    orientations : ndarray, shape (n, 3)
        ZYZ Euler angles ``(rot, tilt, psi)`` in degrees of each labelled particle.
    defocus_um : float
        Mean defocus in µm.
    """

    name: str
    image: np.ndarray
    truth: Particles
    species: np.ndarray
    orientations: np.ndarray
    defocus_um: float


@attrs.define(eq=False)
class MicrographLayers:
    """The additive parts of a simulated micrograph (for tests and diagnostics).

    ``image == offset + gain * (signal + unlabelled + amplitude + noise)`` (up to float32 rounding).
    """

    signal: np.ndarray
    unlabelled: np.ndarray
    amplitude: np.ndarray
    noise: np.ndarray
    noise_sigma: float
    disk_mask: np.ndarray
    gain: float
    offset: float


def micrograph_name(index: int) -> str:
    """Name of micrograph ``index`` in a simulated data set."""
    return f"sim_{index:04d}"


def _place(rng, n, shape, margin, min_dist, existing, blocked, allowed=None, max_tries=None):
    """Centres by rejection sampling: ``min_dist`` from ``existing`` centres, outside ``blocked`` circles."""
    rows, cols = shape
    pts = np.empty((len(existing) + n, 2))
    pts[: len(existing)] = existing
    count = len(existing)
    blocked = np.asarray(blocked, dtype=np.float64).reshape(-1, 3)
    tries = max_tries or 60 * n + 200
    cand = np.stack([rng.uniform(margin, cols - 1 - margin, tries), rng.uniform(margin, rows - 1 - margin, tries)], 1)
    start = count
    for x, y in cand:
        if count - start >= n:
            break
        if count and np.min((pts[:count, 0] - x) ** 2 + (pts[:count, 1] - y) ** 2) < min_dist**2:
            continue
        if blocked.size and np.any((blocked[:, 0] - x) ** 2 + (blocked[:, 1] - y) ** 2 < blocked[:, 2] ** 2):
            continue
        if allowed is not None and not allowed(x, y):
            continue
        pts[count] = (x, y)
        count += 1
    return pts[start:count]


def _mid_shape(shape, cells: int) -> tuple[int, int]:
    """Grid on which smooth fields are made: 1/16 of the micrograph, at least ``cells + 3`` (and 2) per axis."""
    rows, cols = shape
    return (max(rows // 16, cells + 3, 2), max(cols // 16, cells + 3, 2))


def _lowres_field(rng, mid, cells: int) -> np.ndarray:
    """Smooth random field on the ``mid`` grid, zero mean and unit standard deviation: cubic zoom of a coarse
    ``(cells + 3)``-square grid of white noise. :func:`_upsample` brings it to full size."""
    coarse = rng.normal(size=(cells + 3, cells + 3))
    field = scipy.ndimage.zoom(coarse, (mid[0] / coarse.shape[0], mid[1] / coarse.shape[1]), order=3,
                               grid_mode=False)
    if field.shape != tuple(mid):  # rounding of the zoom factor
        field = scipy.ndimage.zoom(field, (mid[0] / field.shape[0], mid[1] / field.shape[1]), order=1)
    return ((field - field.mean()) / (field.std() + 1e-12)).astype(np.float32)


def _upsample(field: np.ndarray, shape) -> np.ndarray:
    """Linear interpolation of a coarse field to ``shape`` (float32), corner pixels onto corner pixels.

    A field that is linear in the coarse grid's coordinates ``(i * (rows - 1) / (m - 1), ...)`` is reproduced
    exactly, so a plane can be added on the coarse grid.
    """
    field = np.asarray(field, dtype=np.float32)
    i0, w = _linear_weights(shape[0], field.shape[0])
    j0, v = _linear_weights(shape[1], field.shape[1])
    rows_done = field[i0] * (1 - w)[:, None] + field[i0 + 1] * w[:, None]  # (rows, m_cols)
    out = np.empty(tuple(shape), np.float32)
    block = 256  # columns are interpolated in row blocks, with temporaries that stay small
    for r in range(0, shape[0], block):
        src, dst = rows_done[r:r + block], out[r:r + block]
        np.take(src, j0, axis=1, out=dst)
        dst *= 1 - v
        dst += np.take(src, j0 + 1, axis=1) * v
    return out


def _linear_weights(n: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Left neighbour and weight of the right one for ``n`` points spread from the first to the last of ``m >= 2``."""
    pos = np.linspace(0, m - 1, n)
    i0 = np.minimum(pos.astype(np.intp), m - 2)
    return i0, (pos - i0).astype(np.float32)


def _texture(rng, shape, sigma: float) -> np.ndarray:
    """Fine random texture with unit standard deviation (white noise blurred by ``sigma`` pixels)."""
    noise = rng.standard_normal(shape, dtype=np.float32)
    field = scipy.ndimage.gaussian_filter(noise, sigma, output=noise)
    field /= field.std() + 1e-12
    return field


def _carbon_box(shape, centre, hole_r: float, reach: float, step: int = 32):
    """Slices of the smallest grid-aligned box holding every pixel more than ``-reach`` px beyond the arc
    (``hypot(x - cx, y - cy) - hole_r > -reach``), or None. Found on a coarse grid: the distance is 1-Lipschitz."""
    rows, cols = shape
    ys = np.unique(np.append(np.arange(0, rows, step), rows - 1))
    xs = np.unique(np.append(np.arange(0, cols, step), cols - 1))
    d = np.hypot(xs[None, :] - centre[0], ys[:, None] - centre[1]) - hole_r
    hit = d > -reach - step
    if not hit.any():
        return None
    r = np.flatnonzero(hit.any(axis=1))
    c = np.flatnonzero(hit.any(axis=0))
    return (slice(max(int(ys[r[0]]) - step, 0), min(int(ys[r[-1]]) + step + 1, rows)),
            slice(max(int(xs[c[0]]) - step, 0), min(int(xs[c[-1]]) + step + 1, cols)))


def _soft_disk(canvas, x, y, radius, value, edge=1.5, wobble=None):
    """Add ``value`` inside a (possibly irregular) disk with a soft edge, in place."""
    half = int(np.ceil(radius * 1.4 + 3 * edge)) + 1
    rows, cols = canvas.shape
    r0, r1 = max(int(y) - half, 0), min(int(y) + half + 1, rows)
    c0, c1 = max(int(x) - half, 0), min(int(x) + half + 1, cols)
    if r0 >= r1 or c0 >= c1:
        return
    dy = np.arange(r0, r1)[:, None] - y
    dx = np.arange(c0, c1)[None, :] - x
    r = np.hypot(dx, dy)
    rad = radius
    if wobble is not None:
        theta = np.arctan2(dy, dx)
        rad = radius * (1 + sum(a * np.sin(k * theta + p) for k, a, p in wobble))
    canvas[r0:r1, c0:c1] += (value / (1 + np.exp((r - rad) / edge))).astype(canvas.dtype)


def _disk_mask(shape, xy, radius) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    half = int(np.ceil(radius)) + 1
    rows, cols = shape
    for x, y in xy:
        r0, r1 = max(int(round(y)) - half, 0), min(int(round(y)) + half + 1, rows)
        c0, c1 = max(int(round(x)) - half, 0), min(int(round(x)) + half + 1, cols)
        dy = np.arange(r0, r1)[:, None] - y
        dx = np.arange(c0, c1)[None, :] - x
        mask[r0:r1, c0:c1] |= dx * dx + dy * dy <= radius * radius
    return mask


def _broken_keep(rng, species: Species) -> np.ndarray:
    """Blobs on one side of a random plane (keeps 35-70% of the density)."""
    normal = rng.normal(size=3)
    proj = species.centers @ normal
    keep = proj > np.quantile(proj, rng.uniform(0.3, 0.65))
    if keep.sum() < 1:
        keep[np.argmax(proj)] = True
    return keep


#: Depth of the Thon-ring modulation of the structural noise's power: ``1 - m + 2 m CTF^2`` (mean 1).
RING_DEPTH = 0.3


def _structural_noise(rng, shape, config: SimulationConfig, defocus: float, astig: float, astig_angle: float):
    """Unit-variance Gaussian noise with power spectrum ``(1 - m + 2 m CTF^2) exp(-B k^2 / 2)``
    (``m = RING_DEPTH``, CTF without envelope, ``B = config.noise_b_factor``)."""
    from cryopick.simulate.ctf import _polar_grid

    rows, cols = shape
    ctf0 = ctf_rfft(shape, config.pixel_size_a, defocus_u_um=defocus + astig / 2, defocus_v_um=defocus - astig / 2,
                    astigmatism_angle_deg=astig_angle, voltage_kv=config.voltage_kv, cs_mm=config.cs_mm,
                    amplitude_contrast=config.amplitude_contrast, b_factor=0.0)
    power = ctf0
    power *= ctf0
    power *= np.float32(2 * RING_DEPTH)
    power += np.float32(1 - RING_DEPTH)
    if config.noise_b_factor:
        k2 = _polar_grid((int(rows), int(cols)), float(config.pixel_size_a))[0]
        power *= np.exp(k2 * np.float32(-config.noise_b_factor / 2))
    # Variance of ifft(H fft(w)) for white w: mean of H^2 over the full grid (inner rfft columns count twice).
    weights = np.full(power.shape[1], 2.0)
    weights[0] = 1.0
    if cols % 2 == 0:
        weights[-1] = 1.0
    variance = float(np.sum(power.sum(axis=0, dtype=np.float64) * weights) / (rows * cols))
    np.sqrt(power, out=power)
    white = rng.standard_normal(shape, dtype=np.float32)
    out = apply_ctf([white], power)[0]
    out *= np.float32(1 / np.sqrt(max(variance, 1e-12)))
    return out


def simulate_layers(config: SimulationConfig, index: int) -> tuple[SimulatedMicrograph, MicrographLayers]:
    """Simulate micrograph ``index`` of ``config`` and also return its additive layers.

    Parameters
    ----------
    config : SimulationConfig
    index : int
        Micrograph number; the result depends only on ``(config, index)``.

    Returns
    -------
    SimulatedMicrograph, MicrographLayers
    """
    species = get_species(config.species)
    rows, cols = config.shape
    diameter = float(config.diameter_px)
    radius = diameter / 2
    if diameter < 4 or rows < diameter + 4 or cols < diameter + 4:
        raise InputError(f"micrograph {rows}x{cols} px is too small for particles of {diameter:g} px (or < 4 px)")
    if config.snr <= 0:
        raise InputError(f"snr must be positive, got {config.snr}")
    if not 0 <= config.structural_noise <= 1:
        raise InputError(f"structural_noise must be in [0, 1], got {config.structural_noise}")
    seq = np.random.SeedSequence([int(config.seed) & 0xFFFFFFFF, int(index)])
    # spawn(6) starts with the same five streams as spawn(5): adding the sixth changed no old micrograph.
    r_scope, r_nuis, r_place, r_orient, r_noise, r_struct = (np.random.default_rng(s) for s in seq.spawn(6))
    area = rows * cols / 1024**2
    n_target = int(config.particles_per_micrograph)

    defocus = float(r_scope.uniform(*config.defocus_um))
    astig = float(r_scope.uniform(0, config.astigmatism_um))
    astig_angle = float(r_scope.uniform(0, 180))
    gain = float(r_scope.uniform(0.6, 1.6))
    offset = float(r_scope.uniform(-1.0, 1.0))

    unlabelled = np.zeros((rows, cols), np.float32)  # phase objects, same units as particle density
    blocked: list[tuple[float, float, float]] = []
    carbon = None
    existing = np.zeros((0, 2))
    # Amplitude nuisances in units of the noise sigma (the ice field below fills it when there are nuisances).
    amplitude = None if config.nuisances else np.zeros((rows, cols), np.float32)
    if config.nuisances:
        # Ice thickness: plane plus smooth variation; thicker ice is darker. Both are smooth, so they are made on
        # a grid 16x coarser and interpolated linearly (exact for the plane).
        direction = r_nuis.uniform(0, 2 * np.pi)
        mid = _mid_shape((rows, cols), 4)
        yy = (np.linspace(0, rows - 1, mid[0]) / rows - 0.5)[:, None]
        xx = (np.linspace(0, cols - 1, mid[1]) / cols - 0.5)[None, :]
        plane = np.cos(direction) * xx + np.sin(direction) * yy
        ice = r_nuis.uniform(0.3, 1.0) * plane + 0.15 * _lowres_field(r_nuis, mid, 4)
        ice *= config.ice_gradient
        amplitude = _upsample(ice, (rows, cols))
        # Carbon edge: beyond a large circular arc.
        if r_nuis.uniform() < 0.5:
            u = r_nuis.uniform(0, 2 * np.pi)
            uvec = np.array([np.cos(u), np.sin(u)])
            edge_point = np.array([cols / 2, rows / 2]) + uvec * r_nuis.uniform(0.25, 0.45) * min(rows, cols)
            hole_r = r_nuis.uniform(1.5, 3.0) * max(rows, cols)
            hc = edge_point - uvec * hole_r
            darkness = r_nuis.uniform(0.3, 0.8)
            # The texture has its own stream, so later draws do not depend on the size of the carbon region.
            r_texture = np.random.default_rng(r_nuis.integers(2**63))
            # Soft mask 1 / (1 + exp(-d / 2)) of the distance d beyond the arc: below 6e-6 at d < -24 px, so only
            # the box around d > -24 is computed (and textured).
            box = _carbon_box((rows, cols), hc, hole_r, reach=24.0)
            if box is not None:
                yb = np.arange(box[0].start, box[0].stop, dtype=np.float32)[:, None]
                xb = np.arange(box[1].start, box[1].stop, dtype=np.float32)[None, :]
                # Python floats keep the arrays in float32.
                soft = np.hypot(xb - float(hc[0]), yb - float(hc[1]))
                soft -= float(hole_r)
                soft *= -0.5
                np.clip(soft, -50, 50, out=soft)
                np.exp(soft, out=soft)
                soft += 1
                np.reciprocal(soft, out=soft)
                amplitude[box] -= darkness * soft
                texture = _texture(r_texture, soft.shape, 1.5)
                texture *= soft
                texture *= 0.25
                unlabelled[box] += texture
                del soft, texture

            def carbon(x, y, hc=hc, hole_r=hole_r):
                return np.hypot(x - hc[0], y - hc[1]) < hole_r - radius
        # Ice contaminants: large dark irregular blobs.
        for _ in range(r_nuis.poisson(config.contaminants * max(0.6, 1.0 * area))):
            cx, cy = r_nuis.uniform(0, cols), r_nuis.uniform(0, rows)
            cr = r_nuis.uniform(1.5, 4.0) * radius
            wobble = [(k, r_nuis.uniform(0, 0.15), r_nuis.uniform(0, 2 * np.pi)) for k in (2, 3, 5)]
            _soft_disk(amplitude, cx, cy, cr, -r_nuis.uniform(1.0, 2.5), edge=max(1.0, cr / 8), wobble=wobble)
            blocked.append((cx, cy, cr * 1.3 + radius))
        # Gold beads: 10 nm, very dark.
        bead_r = max(2.0, 50.0 / config.pixel_size_a)
        for _ in range(r_nuis.poisson(config.gold_beads * max(0.8, 2.0 * area))):
            bx, by = r_nuis.uniform(0, cols), r_nuis.uniform(0, rows)
            _soft_disk(amplitude, bx, by, bead_r, -r_nuis.uniform(5.0, 8.0), edge=0.7)
            blocked.append((bx, by, bead_r + radius + 2))
        # Aggregates: clumps of touching particles.
        seeds = _place(r_place, r_nuis.poisson(0.04 * n_target + 0.3), (rows, cols), diameter,
                       diameter * config.min_distance * 2, existing, blocked, carbon)
        members = []
        for sx, sy in seeds:
            clump = [(sx, sy)]
            for _ in range(r_nuis.integers(2, 6)):
                for _attempt in range(20):
                    bx, by = clump[r_nuis.integers(len(clump))]
                    a = r_nuis.uniform(0, 2 * np.pi)
                    d = r_nuis.uniform(0.7, 0.95) * diameter
                    x, y = bx + d * np.cos(a), by + d * np.sin(a)
                    if (radius <= x <= cols - 1 - radius and radius <= y <= rows - 1 - radius
                            and min(np.hypot(x - px, y - py) for px, py in clump) >= 0.65 * diameter):
                        clump.append((x, y))
                        break
            members.extend(clump)
        members = np.asarray(members, dtype=np.float64).reshape(-1, 2)
        for (x, y), ang in zip(members, random_orientations(r_orient, len(members))):
            render_particle(unlabelled, x, y, species, ang, radius)
        existing = members

    min_dist = diameter * config.min_distance
    xy = _place(r_place, n_target, (rows, cols), radius, min_dist, existing, blocked, carbon)
    orientations = random_orientations(r_orient, len(xy))
    signal = np.zeros((rows, cols), np.float32)
    for (x, y), ang in zip(xy, orientations):
        render_particle(signal, x, y, species, ang, radius)
    if config.nuisances:
        n_broken = r_nuis.poisson(config.broken_particles * n_target + 0.3)
        broken = _place(r_place, n_broken, (rows, cols), radius, min_dist, np.concatenate([existing, xy]), blocked,
                        carbon)
        for (x, y), ang in zip(broken, random_orientations(r_orient, len(broken))):
            render_particle(unlabelled, x, y, species, ang, radius, keep=_broken_keep(r_nuis, species))

    ctf = ctf_rfft((rows, cols), config.pixel_size_a, defocus_u_um=defocus + astig / 2,
                   defocus_v_um=defocus - astig / 2, astigmatism_angle_deg=astig_angle, voltage_kv=config.voltage_kv,
                   cs_mm=config.cs_mm, amplitude_contrast=config.amplitude_contrast, b_factor=config.b_factor)
    layers = [signal, unlabelled] if np.any(unlabelled) else [signal]
    filtered = apply_ctf(layers, ctf)
    signal = filtered[0]
    signal -= signal.mean()
    unlabelled = filtered[1] if len(filtered) > 1 else unlabelled
    disk = _disk_mask((rows, cols), xy, radius)
    ms = float(np.mean(signal[disk] ** 2)) if disk.any() else 0.0
    scale = 1.0 / np.sqrt(ms) if ms > 0 else 1.0
    signal *= scale
    unlabelled *= scale
    noise_sigma = float(1.0 / np.sqrt(config.snr))
    amplitude *= noise_sigma
    noise = r_noise.standard_normal((rows, cols), dtype=np.float32)
    structural = float(config.structural_noise)
    noise *= noise_sigma * np.sqrt(1.0 - structural)
    if structural > 0:
        # Ice and solvent scatter too: their noise is CTF-modulated (Thon rings at depth RING_DEPTH) and falls
        # off with frequency (envelope exp(-noise_b_factor k^2 / 4)), so much of it lies in the particle band.
        coloured = _structural_noise(r_struct, (rows, cols), config, defocus, astig, astig_angle)
        coloured *= noise_sigma * np.sqrt(structural)
        noise += coloured
        del coloured
    image = signal + unlabelled
    image += amplitude
    image += noise
    image *= gain
    image += offset

    truth = Particles(xy[:, 0], xy[:, 1])
    mic = SimulatedMicrograph(
        name=micrograph_name(index),
        image=image.astype(np.float32, copy=False),
        truth=truth,
        species=np.full(len(xy), species.name, dtype=object).astype(str),
        orientations=orientations.reshape(-1, 3),
        defocus_um=defocus,
    )
    return mic, MicrographLayers(signal, unlabelled, amplitude, noise, noise_sigma, disk, gain, offset)


def simulate_micrograph(config: SimulationConfig, index: int) -> SimulatedMicrograph:
    """Simulate micrograph ``index`` of a data set; deterministic in ``(config, index)``.

    Parameters
    ----------
    config : SimulationConfig
    index : int

    Returns
    -------
    SimulatedMicrograph
    """
    return simulate_layers(config, index)[0]
