"""Difference-of-Gaussians (DoG) picker: template-free, no training, no torch.

A DoG with widths ``sigma`` and ``k * sigma`` approximates the Laplacian of Gaussian, whose response
to a disk of radius ``r`` peaks at ``sigma = r / sqrt(2)``. Particles are dark on a light background in
cryo-EM micrographs (``polarity=dark``), so the score is the DoG of the inverted image. Peaks are found
by non-maximum suppression with a disk of ``nms_fraction * diameter``.
"""

from __future__ import annotations

import attrs
import numpy as np
from scipy import ndimage

from cryopick.nms import peak_local_max
from cryopick.particles import Particles
from cryopick.picker import Picker
from cryopick.threshold import calibrated_peaks


@attrs.define
class DoGConfig:
    #: Particle diameter in preprocessed pixels after downsampling.
    target_diameter_px: float = 16.0
    #: Ratio of the two Gaussian widths (1.6 approximates the LoG).
    sigma_ratio: float = 1.6
    #: ``dark`` particles on light background (cryo-EM) or ``bright`` (inverted data).
    polarity: str = attrs.field(default="dark", validator=attrs.validators.in_(("dark", "bright")))
    #: NMS radius as a fraction of the diameter.
    nms_fraction: float = 0.8
    #: Ignore peaks whose centre is closer than this fraction of the radius to the edge.
    border_fraction: float = 0.5
    #: Scores relative to each micrograph's automatic cut-off (``cryopick.threshold.calibrated_peaks``:
    #: background peaks estimated from the peaks of the negated response), so that the default
    #: ``fixed:0`` keeps what the micrograph supports; ``false`` = raw DoG responses.
    auto_cut: bool = True
    #: Weight of the mirror-image (decoy) peaks in that estimate (below 1: some are particles' CTF fringes).
    decoy_weight: float = 0.8


class DoGPicker(Picker):
    """Classical DoG blob picker."""

    Config = DoGConfig
    trainable = False
    #: With ``auto_cut`` (default) scores are relative to each micrograph's automatic cut-off, so
    #: ``fixed:0`` keeps the peaks that stand out of the background. (Cuts that chase the top of the
    #: score distribution, such as otsu, lose most particles on data with contaminants and beads, whose
    #: responses are the strongest; see docs/benchmarks.md.)
    default_threshold = "fixed:0"

    def preprocessing(self, diameter_px: float, pixel_size_a: float | None) -> list[tuple[str, dict]]:
        factor = max(1.0, diameter_px / self.config.target_diameter_px)
        return [("downsample", {"factor": round(factor, 4)}), ("normalize", {"robust": True})]

    def response(self, image: np.ndarray, diameter_px: float) -> np.ndarray:
        sigma = diameter_px / 2 / np.sqrt(2)
        img = -image if self.config.polarity == "dark" else image
        g1 = ndimage.gaussian_filter(img, sigma, mode="reflect")
        g2 = ndimage.gaussian_filter(img, sigma * self.config.sigma_ratio, mode="reflect")
        return (g1 - g2).astype(np.float32)

    def score(self, image: np.ndarray, diameter_px: float) -> Particles:
        dog = self.response(image, diameter_px)
        radius = self.config.nms_fraction * diameter_px
        border = self.config.border_fraction * diameter_px / 2
        if self.config.auto_cut:
            return calibrated_peaks(dog, radius, border, self.config.decoy_weight)
        return peak_local_max(dog, radius=radius, exclude_border=border)
