"""Square regions of micrographs: exemplar crops, random unlabelled crops, and their conversion into model
inputs (resize to the model's input size, optional per-window normalisation)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cryopick.recentre import crop_centred  # noqa: F401  (core's: exemplar crops here, templates there)


def window_size(diameter_px: float, crop_factor: float, image_size: int) -> int:
    """Side of a region (preprocessed pixels) around a particle of ``diameter_px``: ``crop_factor`` times the
    diameter, snapped to the model input size when within 5 % of it (then no resize is needed)."""
    w = max(4, int(round(crop_factor * diameter_px)))
    if abs(w - image_size) <= max(1, 0.05 * image_size):
        w = image_size
    return w


def crop_random(image: np.ndarray, n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` crops at uniformly random positions fully inside ``image`` (zero padded if it is smaller)."""
    h, w = image.shape
    if h < size or w < size:
        image = np.pad(image, ((0, max(0, size - h)), (0, max(0, size - w))))
        h, w = image.shape
    ys = rng.integers(0, h - size + 1, size=n)
    xs = rng.integers(0, w - size + 1, size=n)
    idx_y = ys[:, None, None] + np.arange(size)[None, :, None]
    idx_x = xs[:, None, None] + np.arange(size)[None, None, :]
    return image[idx_y, idx_x].astype(np.float32, copy=False)


def with_rotations(crops: np.ndarray) -> np.ndarray:
    """Crops followed by their 90, 180 and 270 degree rotations (CryoMAE §4.1.5)."""
    return np.concatenate([np.rot90(crops, k, axes=(1, 2)) for k in range(4)], axis=0).copy()


def to_input(crops, image_size: int, normalize: bool = True, device: str = "cpu") -> torch.Tensor:
    """``(n, h, w)`` crops (numpy or torch) -> ``(n, 1, S, S)`` float tensor on ``device``: resized to the
    model input (area-preserving bilinear with anti-aliasing) and, with ``normalize``, each window
    shifted and scaled to zero mean and unit variance, so that ice gradients and local contrast do not
    dominate the features."""
    x = torch.as_tensor(crops, dtype=torch.float32, device=device)
    if x.ndim == 3:
        x = x[:, None]
    if x.shape[-1] != image_size or x.shape[-2] != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False,
                          antialias=x.shape[-1] > image_size)
    if normalize:
        mean = x.mean(dim=(2, 3), keepdim=True)
        std = x.std(dim=(2, 3), keepdim=True)
        x = (x - mean) / std.clamp_min(1e-6)
    return x
