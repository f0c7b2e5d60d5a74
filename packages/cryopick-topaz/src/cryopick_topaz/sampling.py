"""Training data for Topaz: positive masks, the class prior pi, and minibatches of receptive-field crops.

Crops are cut from zero-padded micrographs with one fancy-indexing gather (no Python loop over crops);
rotation (0-360 degrees, from a crop sqrt(2) larger) and flips are applied in torch on the whole batch.
"""

from __future__ import annotations

import math

import numpy as np

from cryopick.particles import Particles


def disk_pixel_count(radius: float) -> int:
    """Pixels of the 2-D disk ``dx^2 + dy^2 <= radius^2`` on the integer grid (radius 3 -> 29).

    The reference counts a 3-D ball here (radius 3 -> 203), inflating pi about 7-fold (METHODS.md)."""
    r = int(math.floor(radius))
    yy, xx = np.mgrid[-r: r + 1, -r: r + 1]
    return int(np.count_nonzero(xx ** 2 + yy ** 2 <= radius ** 2))


def positive_mask(shape: tuple[int, int], labels: Particles | None, radius: float) -> np.ndarray:
    """Boolean mask of pixels within ``radius`` of a labelled centre (centres rounded to pixels)."""
    mask = np.zeros(shape, dtype=bool)
    if labels is None or not len(labels):
        return mask
    r = int(math.floor(radius))
    dy, dx = np.nonzero(np.add.outer(np.arange(-r, r + 1) ** 2, np.arange(-r, r + 1) ** 2) <= radius ** 2)
    dy, dx = dy - r, dx - r
    cy = np.rint(labels.y).astype(np.int64)
    cx = np.rint(labels.x).astype(np.int64)
    ys = (cy[:, None] + dy[None, :]).ravel()
    xs = (cx[:, None] + dx[None, :]).ravel()
    ok = (ys >= 0) & (ys < shape[0]) & (xs >= 0) & (xs < shape[1])
    mask[ys[ok], xs[ok]] = True
    return mask


def class_prior(expected_particles: float, radius: float, pixels_per_micrograph: float) -> float:
    """pi: expected fraction of positive pixels = expected particles x disk pixels / pixels."""
    return float(expected_particles) * disk_pixel_count(radius) / float(pixels_per_micrograph)


def unlabelled_prior(pi: float, observed: float, floor: float = 1e-3) -> float:
    """Fraction of positives among the unlabelled pixels, ``(pi - p_obs) / (1 - p_obs)`` where ``p_obs`` is
    the fraction of pixels labelled positive (the reference uses ``pi - p_obs``), floored at ``floor``:
    when labels are complete it is ~0, and the binomial of GE-binomial needs a positive rate."""
    return float(min(max((pi - observed) / max(1.0 - observed, 1e-12), floor), 0.5))


class CropSampler:
    """Draws minibatches of crops of side ``size`` centred on positive or unlabelled pixels.

    Positives: uniform over all pixels within the positive radius of a label (all micrographs).
    Unlabelled: uniform over all other pixels (rejection of positive hits).
    """

    def __init__(self, images: list[np.ndarray], masks: list[np.ndarray], size: int, rng: np.random.Generator):
        self.size = size
        self.half = size // 2
        self.rng = rng
        self.padded = [np.pad(np.asarray(im, dtype=np.float32), self.half) for im in images]
        self.masks = masks
        self.shapes = [im.shape for im in images]
        self.pos = [np.flatnonzero(m) for m in masks]
        self.n_pos = np.array([p.size for p in self.pos], dtype=np.int64)
        self.n_pix = np.array([h * w for h, w in self.shapes], dtype=np.int64)

    @property
    def has_positives(self) -> bool:
        return int(self.n_pos.sum()) > 0

    def _gather(self, which: np.ndarray, flat: np.ndarray) -> np.ndarray:
        out = np.empty((which.size, self.size, self.size), dtype=np.float32)
        s = self.size
        for m in np.unique(which):
            sel = np.flatnonzero(which == m)
            w = self.shapes[m][1]
            ys, xs = np.divmod(flat[sel], w)
            view = np.lib.stride_tricks.sliding_window_view(self.padded[m], (s, s))
            out[sel] = view[ys, xs]
        return out

    def positives(self, n: int) -> np.ndarray:
        cum = np.cumsum(self.n_pos)
        k = self.rng.integers(0, cum[-1], n)
        which = np.searchsorted(cum, k, side="right")
        local = k - np.concatenate([[0], cum[:-1]])[which]
        flat = np.array([self.pos[m][i] for m, i in zip(which, local, strict=True)], dtype=np.int64)
        return self._gather(which, flat)

    def unlabelled(self, n: int) -> np.ndarray:
        p = self.n_pix / self.n_pix.sum()
        which = self.rng.choice(len(self.n_pix), size=n, p=p)
        flat = (self.rng.random(n) * self.n_pix[which]).astype(np.int64)
        for _ in range(100):  # resample the few draws that landed on positives
            hit = np.array([self.masks[m].flat[f] for m, f in zip(which, flat, strict=True)], dtype=bool)
            if not hit.any():
                break
            flat[hit] = (self.rng.random(hit.sum()) * self.n_pix[which[hit]]).astype(np.int64)
        return self._gather(which, flat)


def augment(batch, out_size: int, generator, rotate: bool = True):
    """Random rotation (0-360 degrees, bilinear) and horizontal/vertical flips of a ``(B, 1, S, S)`` torch
    batch, then the centre ``out_size`` crop.

    The sampling grid is that of ``F.affine_grid`` (align_corners=False) for the rotation, computed by
    broadcasting instead of a batched matrix product (half the cost of the whole augmentation), with the flips
    folded in: a flipped output samples at the mirrored grid points, so no flipped copies are made."""
    import torch
    import torch.nn.functional as F

    b, _, s, _ = batch.shape
    theta = torch.rand(b, generator=generator) * (2 * math.pi) if rotate else None
    flips = torch.rand(b, 2, generator=generator) < 0.5
    if rotate:
        # affine_grid's output coordinates (pixel centres in [-1, 1], align_corners=False), scaled so the grid
        # covers only the centre out_size pixels of the input, and mirrored for a flip.
        base = torch.linspace(-1.0, 1.0, out_size) * ((out_size - 1) / out_size) * (out_size / s)
        gx = torch.where(flips[:, 0, None], -base, base)[:, None, :]  # (B, 1, W): x varies along columns
        gy = torch.where(flips[:, 1, None], -base, base)[:, :, None]  # (B, H, 1)
        cos, sin = torch.cos(theta)[:, None, None], torch.sin(theta)[:, None, None]
        grid = torch.empty(b, out_size, out_size, 2)  # written in place: torch.stack would copy both planes
        torch.sub(cos * gx, sin * gy, out=grid[..., 0])
        torch.add(sin * gx, cos * gy, out=grid[..., 1])
        return F.grid_sample(batch, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    o = (s - out_size) // 2
    out = batch[:, :, o: o + out_size, o: o + out_size]
    out = torch.where(flips[:, 0, None, None, None], out.flip(-1), out)
    out = torch.where(flips[:, 1, None, None, None], out.flip(-2), out)
    return out.contiguous()
