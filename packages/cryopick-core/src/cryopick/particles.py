"""Coordinates of particles (labels, candidates, picks) on one micrograph.

Coordinates are pixel centres in the *original* micrograph unless a function says otherwise:
``x`` is the column and ``y`` the row, origin at the centre of the first pixel (RELION's convention).
"""

from __future__ import annotations

import attrs
import numpy as np


def _float_array(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1)


@attrs.define(eq=False)
class Particles:
    """Particle centres on one micrograph with optional scores.

    Parameters
    ----------
    x, y : array of float
        Centres in pixels (x = column, y = row).
    score : array of float, optional
        One score per particle (higher means more particle-like); NaN when unknown.
    """

    x: np.ndarray = attrs.field(converter=_float_array)
    y: np.ndarray = attrs.field(converter=_float_array)
    score: np.ndarray | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if self.x.shape != self.y.shape:
            raise ValueError(f"x has {self.x.size} values but y has {self.y.size}")
        if self.score is None:
            self.score = np.full(self.x.shape, np.nan)
        else:
            self.score = _float_array(self.score)
            if self.score.shape != self.x.shape:
                raise ValueError(f"score has {self.score.size} values for {self.x.size} particles")

    @classmethod
    def empty(cls) -> Particles:
        return cls(np.zeros(0), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return int(self.x.size)

    @property
    def has_scores(self) -> bool:
        return bool(len(self)) and not np.all(np.isnan(self.score))

    @property
    def xy(self) -> np.ndarray:
        """``(n, 2)`` array of ``(x, y)``."""
        return np.stack([self.x, self.y], axis=1)

    def subset(self, index) -> Particles:
        return Particles(self.x[index], self.y[index], self.score[index])

    def scaled(self, factor: float | tuple[float, float]) -> Particles:
        """Coordinates divided by ``factor`` (one number, or ``(fx, fy)``): original pixels -> pixels of an
        image Fourier-cropped by ``factor``; ``1 / factor`` maps back. Original pixel 0 stays at 0.

        This is the one place where coordinates change frame (see ``cryopick.preprocess``)."""
        fx, fy = (factor, factor) if np.isscalar(factor) else factor
        # Fourier cropping (cryopick.preprocess.fourier_crop) samples the band-limited image at the
        # original positions k f: pixel k of the new grid is original x = k f, so x' = x / f. (The
        # binning convention (x + 0.5) / f - 0.5 would shift every pick by (f - 1) / 2 original pixels.)
        return Particles(self.x / fx, self.y / fy, self.score.copy())

    def sorted_by_score(self) -> Particles:
        order = np.argsort(-np.nan_to_num(self.score, nan=-np.inf), kind="stable")
        return self.subset(order)

    def above(self, threshold: float) -> Particles:
        return self.subset(self.score >= threshold)

    def inside(self, shape: tuple[int, int], margin: float = 0.0) -> np.ndarray:
        """Boolean mask of particles whose centre lies within an image of ``shape = (rows, cols)``."""
        h, w = shape
        return (
            (self.x >= -0.5 + margin) & (self.x <= w - 0.5 - margin)
            & (self.y >= -0.5 + margin) & (self.y <= h - 0.5 - margin)
        )

    @staticmethod
    def concat(parts: list[Particles]) -> Particles:
        if not parts:
            return Particles.empty()
        return Particles(
            np.concatenate([p.x for p in parts]),
            np.concatenate([p.y for p in parts]),
            np.concatenate([p.score for p in parts]),
        )
