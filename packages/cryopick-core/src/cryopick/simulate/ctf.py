"""Contrast transfer function (CTF) of a transmission electron microscope, applied in Fourier space.

Formula (weak-phase object, as in CTFFIND/RELION)::

    lambda   = 12.2643 / sqrt(V * (1 + 0.978466e-6 * V))          # electron wavelength in Å, V in volts
    df(a)    = (df_u + df_v) / 2 + (df_u - df_v) / 2 * cos(2 (a - a_ast))   # astigmatic defocus in Å
    chi(k)   = pi * lambda * df(a) * k**2 - pi / 2 * Cs * lambda**3 * k**4  # k in 1/Å, Cs in Å
    phi      = arctan(A / sqrt(1 - A**2))                          # amplitude contrast A as a phase
    CTF(k)   = -sin(chi(k) + phi) * exp(-B k**2 / 4)               # B-factor envelope, B in Å**2

Sign convention: defocus is **positive for underfocus** and ``CTF(0) = -A < 0``. The simulated image is
``background + ifft(CTF * fft(projected density))``, so at the low frequencies that carry most of a particle's
power the density is *subtracted*: particles are dark on a lighter background, as in real micrographs.
Zeros of the CTF (Thon rings) lie where ``chi(k) + phi = n pi``; see :func:`ctf_zeros`.
"""

from __future__ import annotations

import functools

import numpy as np
import scipy.fft


def wavelength_a(voltage_kv: float) -> float:
    """Relativistic electron wavelength in Å for an accelerating voltage in kV."""
    v = voltage_kv * 1e3
    return float(12.2643 / np.sqrt(v * (1 + 0.978466e-6 * v)))


def ctf_values(kx, ky, *, defocus_u_um: float, defocus_v_um: float | None = None, astigmatism_angle_deg: float = 0.0,
               voltage_kv: float = 300.0, cs_mm: float = 2.7, amplitude_contrast: float = 0.07,
               b_factor: float = 0.0) -> np.ndarray:
    """CTF at spatial frequencies ``(kx, ky)`` in 1/Å (any broadcastable shapes).

    Parameters
    ----------
    kx, ky : array_like
        Frequencies along x (columns) and y (rows) in 1/Å.
    defocus_u_um, defocus_v_um : float
        Defocus along the major and minor axes in µm, positive = underfocus; ``defocus_v_um`` defaults to
        ``defocus_u_um`` (no astigmatism).
    astigmatism_angle_deg : float
        Angle of the major axis from the x axis, degrees.
    voltage_kv, cs_mm, amplitude_contrast, b_factor : float
        Accelerating voltage (kV), spherical aberration (mm), amplitude contrast fraction, and envelope B-factor (Å²).

    Returns
    -------
    ndarray
        CTF values in ``[-1, 1]``.
    """
    if defocus_v_um is None:
        defocus_v_um = defocus_u_um
    # float32 frequencies (as from rfft_frequencies) keep the computation in float32, which is ample for the phase.
    dtype = np.result_type(np.asarray(kx).dtype, np.asarray(ky).dtype, np.float32)
    kx = np.asarray(kx, dtype=dtype)
    ky = np.asarray(ky, dtype=dtype)
    lam = wavelength_a(voltage_kv)
    cs = cs_mm * 1e7
    k2 = kx * kx + ky * ky
    du, dv = defocus_u_um * 1e4, defocus_v_um * 1e4
    a0 = 2 * float(np.deg2rad(astigmatism_angle_deg))
    ca0, sa0 = float(np.cos(a0)), float(np.sin(a0))
    # cos(2 (angle - a0/2)) without arctan2: cos 2t = (kx^2 - ky^2) / k^2, sin 2t = 2 kx ky / k^2.
    safe = np.where(k2 > 0, k2, 1.0)
    cos2 = ((kx * kx - ky * ky) * ca0 + 2 * kx * ky * sa0) / safe
    df = 0.5 * (du + dv) + 0.5 * (du - dv) * cos2
    chi = np.pi * lam * df * k2 - 0.5 * np.pi * cs * lam**3 * k2 * k2
    phi = float(np.arctan2(amplitude_contrast, np.sqrt(1 - amplitude_contrast**2)))
    return -np.sin(chi + phi) * np.exp(-b_factor * k2 / 4.0)


def ctf_zeros(n_zeros: int, *, defocus_um: float, voltage_kv: float = 300.0, cs_mm: float = 2.7,
              amplitude_contrast: float = 0.07) -> np.ndarray:
    """Spatial frequencies (1/Å) of the first ``n_zeros`` CTF zeros for a non-astigmatic defocus.

    Solves ``pi lambda df k**2 - pi/2 Cs lambda**3 k**4 + phi = n pi`` for ``u = k**2`` (smaller root), n = 1, 2, ...
    """
    lam = wavelength_a(voltage_kv)
    a = 0.5 * np.pi * cs_mm * 1e7 * lam**3
    b = np.pi * lam * defocus_um * 1e4
    phi = np.arctan2(amplitude_contrast, np.sqrt(1 - amplitude_contrast**2))
    n = np.arange(1, n_zeros + 1)
    if a == 0:
        u = (n * np.pi - phi) / b
    else:
        u = (b - np.sqrt(b * b - 4 * a * (n * np.pi - phi))) / (2 * a)
    return np.sqrt(u)


def rfft_frequencies(shape: tuple[int, int], pixel_size_a: float) -> tuple[np.ndarray, np.ndarray]:
    """``(kx, ky)`` float32 grids in 1/Å matching ``scipy.fft.rfft2`` of an image of ``shape = (rows, cols)``."""
    rows, cols = shape
    ky = scipy.fft.fftfreq(rows, d=pixel_size_a)[:, None].astype(np.float32)
    kx = scipy.fft.rfftfreq(cols, d=pixel_size_a)[None, :].astype(np.float32)
    return kx, ky


@functools.lru_cache(maxsize=2)
def _polar_grid(shape: tuple[int, int], pixel_size_a: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read-only float32 ``(k**2, cos 2t, sin 2t)`` on the ``rfft2`` grid (``t`` = angle from the x axis)."""
    kx, ky = rfft_frequencies(shape, pixel_size_a)
    k2 = kx * kx + ky * ky
    inv = np.divide(1.0, k2, out=np.zeros_like(k2), where=k2 > 0)
    cos2 = (kx * kx - ky * ky) * inv
    sin2 = (2 * kx) * ky * inv
    for a in (k2, cos2, sin2):
        a.setflags(write=False)
    return k2, cos2, sin2


def ctf_rfft(shape: tuple[int, int], pixel_size_a: float, *, defocus_u_um: float, defocus_v_um: float | None = None,
             astigmatism_angle_deg: float = 0.0, voltage_kv: float = 300.0, cs_mm: float = 2.7,
             amplitude_contrast: float = 0.07, b_factor: float = 0.0) -> np.ndarray:
    """The CTF (float32) on the ``rfft2`` grid of an image of ``shape``: :func:`ctf_values` on
    :func:`rfft_frequencies`, with the frequency grid cached per ``(shape, pixel_size_a)`` and few temporaries."""
    if defocus_v_um is None:
        defocus_v_um = defocus_u_um
    k2, cos2, sin2 = _polar_grid((int(shape[0]), int(shape[1])), float(pixel_size_a))
    lam = wavelength_a(voltage_kv)
    cs = cs_mm * 1e7
    du, dv = defocus_u_um * 1e4, defocus_v_um * 1e4
    a0 = 2 * float(np.deg2rad(astigmatism_angle_deg))
    half_diff = 0.5 * (du - dv)
    # chi = pi lam df k^2 - pi/2 Cs lam^3 k^4, with df = (du + dv) / 2 + (du - dv) / 2 cos(2 (t - a0 / 2)).
    chi = k2 * np.float32(-0.5 * np.pi * cs * lam**3)
    chi += np.float32(np.pi * lam * 0.5 * (du + dv))
    if half_diff:
        chi += cos2 * np.float32(np.pi * lam * half_diff * np.cos(a0))
        chi += sin2 * np.float32(np.pi * lam * half_diff * np.sin(a0))
    chi *= k2
    chi += np.float32(np.arctan2(amplitude_contrast, np.sqrt(1 - amplitude_contrast**2)))
    np.sin(chi, out=chi)
    np.negative(chi, out=chi)
    if b_factor:
        env = k2 * np.float32(-b_factor / 4.0)
        np.exp(env, out=env)
        chi *= env
    return chi


def apply_ctf(images, ctf_rfft: np.ndarray) -> list[np.ndarray]:
    """Filter real images with a CTF given on the ``rfft2`` grid (one forward and one inverse FFT per image).

    Parameters
    ----------
    images : sequence of ndarray, shape (rows, cols)
    ctf_rfft : ndarray, shape (rows, cols // 2 + 1)
        From :func:`ctf_values` on :func:`rfft_frequencies`.

    Returns
    -------
    list of ndarray
        Filtered images, float32.
    """
    out = []
    ctf = ctf_rfft.astype(np.float32, copy=False)
    for image in images:
        f = scipy.fft.rfft2(np.asarray(image, dtype=np.float32), workers=1)
        f *= ctf
        out.append(scipy.fft.irfft2(f, s=image.shape, workers=1, overwrite_x=True).astype(np.float32, copy=False))
        del f
    return out
