"""Core's density thresholder (CryoMAE §3.3) on synthetic score distributions."""

import numpy as np
import pytest

from cryopick.threshold import Density


def _scores(seed, n_background=2000, n_particles=60):
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0.3, 0.05, n_background), rng.normal(0.8, 0.03, n_particles)]


@pytest.mark.parametrize("seed,n_background,n_particles", [(0, 2000, 60), (0, 500, 60), (0, 300, 40)])
def test_density_cut_at_the_knee(seed, n_background, n_particles):
    s = _scores(seed, n_background, n_particles)
    cut = Density().cutoff(s)
    assert 0.4 <= cut <= 0.75  # between the background cloud and the particles
    assert n_particles <= (s >= cut).sum() <= n_particles + 3


@pytest.mark.xfail(reason="core Density picks the sparse top tail of the particle scores here (cut-off 0.89, "
                          "1 pick instead of 60): the largest rate of change of the kNN distance lies at the "
                          "upper end, not at the background/particle knee", strict=False)
def test_density_knee_fails_on_top_tail():
    """Over 50 seeds of this bimodal case core's Density misses the knee in 5/50 (2000 + 60 scores) to
    17/50 (300 + 40 scores) cases, always by cutting at the top one or two particle scores."""
    s = _scores(1, 2000, 60)
    cut = Density().cutoff(s)
    assert 0.45 <= cut <= 0.75
