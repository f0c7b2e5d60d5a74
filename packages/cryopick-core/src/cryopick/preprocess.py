"""Core image preprocessors: Fourier-crop downsampling, affine normalisation, low-pass filtering.

A preprocessor is built from keyword parameters and called on a 2-D float32 image; it returns a
:class:`Preprocessed` holding the new image and the downsampling factor ``(fx, fy)`` (original pixels
per new pixel). A chain multiplies factors. Coordinates move between frames only through
:meth:`cryopick.particles.Particles.scaled`.
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy import fft as sfft

from cryopick.errors import ConfigError


@attrs.define
class Preprocessed:
    image: np.ndarray
    factor: tuple[float, float] = (1.0, 1.0)


def fourier_crop(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Downsample by keeping the central ``shape`` of the centred spectrum (an ideal low-pass filter
    with no aliasing), preserving the mean intensity."""
    h, w = image.shape
    nh, nw = shape
    if (nh, nw) == (h, w):
        return image.astype(np.float32, copy=False)
    spec = sfft.fftshift(sfft.rfft2(image.astype(np.float32), workers=-1), axes=0)
    cy = h // 2
    top = cy - nh // 2
    cropped = spec[top: top + nh, : nw // 2 + 1]
    out = sfft.irfft2(sfft.ifftshift(cropped, axes=0), s=(nh, nw), workers=-1)
    return (out * (nh * nw) / (h * w)).astype(np.float32)


@attrs.define
class Downsample:
    """Fourier-crop downsampling by ``factor`` (>= 1), or to ``pixel_size_a`` given the input's pixel
    size. The output shape is ``round(shape / factor)``; the exact factor per axis is reported."""

    factor: float | None = None
    target_pixel_size_a: float | None = None
    pixel_size_a: float | None = None

    def __attrs_post_init__(self) -> None:
        if self.factor is None:
            if self.target_pixel_size_a is None:
                raise ConfigError("downsample needs factor=F or target_pixel_size_a=A")
            if not self.pixel_size_a:
                raise ConfigError("downsample to a pixel size needs the micrograph pixel size; pass --pixel-size")
            self.factor = self.target_pixel_size_a / self.pixel_size_a
        if not self.factor >= 1.0:
            self.factor = 1.0

    def __call__(self, image: np.ndarray) -> Preprocessed:
        h, w = image.shape
        nh, nw = max(1, round(h / self.factor)), max(1, round(w / self.factor))
        return Preprocessed(fourier_crop(image, (nh, nw)), (w / nw, h / nh))


@attrs.define
class Normalize:
    """Affine normalisation to zero mean and unit standard deviation. ``robust`` uses the median and
    the median absolute deviation, so that carbon or ice contaminants do not set the scale."""

    robust: bool = False

    def __call__(self, image: np.ndarray) -> Preprocessed:
        image = image.astype(np.float32, copy=False)
        if self.robust:
            centre = float(np.median(image))
            scale = float(np.median(np.abs(image - centre))) * 1.4826
        else:
            centre, scale = float(image.mean()), float(image.std())
        return Preprocessed(((image - centre) / (scale if scale > 0 else 1.0)).astype(np.float32))


@attrs.define
class Lowpass:
    """Gaussian low-pass filter in Fourier space; ``sigma_px`` is the real-space width (pixels)."""

    sigma_px: float = 1.0

    def __call__(self, image: np.ndarray) -> Preprocessed:
        from scipy import ndimage

        return Preprocessed(ndimage.gaussian_filter(image.astype(np.float32), self.sigma_px, mode="reflect"))


def apply_chain(image: np.ndarray, steps: list[tuple[object, dict]]) -> Preprocessed:
    """Apply built preprocessors in order; returns the final image and the total factor."""
    fx = fy = 1.0
    for step in steps:
        result = step(image)
        image = result.image
        fx, fy = fx * result.factor[0], fy * result.factor[1]
    return Preprocessed(np.ascontiguousarray(image, dtype=np.float32), (fx, fy))
