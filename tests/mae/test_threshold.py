"""Core's density thresholder (CryoMAE §3.3) on synthetic similarity-score distributions."""

import numpy as np
import pytest

from cryopick.threshold import Density


def _scores(seed, n_background, n_particles):
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0.3, 0.05, n_background), rng.normal(0.8, 0.03, n_particles)]


@pytest.mark.parametrize("n_background,n_particles", [(2000, 60), (500, 60), (300, 40)])
def test_density_cut_at_the_knee(n_background, n_particles):
    """Background cloud at 0.3, sparse particle scores at 0.8: the cut falls between them, keeping the
    particles (within a few of the background tail), for every one of 20 random draws."""
    for seed in range(20):
        s = _scores(seed, n_background, n_particles)
        cut = Density().cutoff(s)
        assert 0.4 <= cut <= 0.8, (seed, cut)
        assert n_particles - 3 <= (s >= cut).sum() <= n_particles + 6, (seed, cut)
