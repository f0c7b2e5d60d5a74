"""Entropy acquisition (eq. 5): values, the regions it returns, and its order (most uncertain first)."""

import numpy as np
import pytest

from cryopick.particles import Particles
from cryopick_active.acquisition import entropy, entropy_queries, random_queries


def test_entropy_values():
    h = entropy(np.array([0.0, 2.0, -2.0, 50.0, -800.0]))
    assert h[0] == pytest.approx(np.log(2))
    assert h[1] == pytest.approx(h[2])
    p = 1 / (1 + np.exp(-2.0))
    assert h[1] == pytest.approx(-(p * np.log(p) + (1 - p) * np.log(1 - p)), rel=1e-5)
    assert h[3] < 1e-15 and h[4] == 0.0 and np.all(np.isfinite(h))


def _bump(shape, x, y, height, width=3.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return height * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * width ** 2))


def test_entropy_queries_return_the_uncertain_regions_most_uncertain_first():
    """A confident background (logit -8) with three bumps up to logit 0 (most uncertain), -2 and -4: the two
    queries are the first two, in that order (the reference's ascending sort would start from the third)."""
    shape = (96, 96)
    logits = np.full(shape, -8.0)
    logits += _bump(shape, 20, 30, 8.0)        # peak logit 0: entropy ln 2
    logits += _bump(shape, 70, 60, 6.0)        # peak logit -2
    logits += _bump(shape, 60, 15, 4.0)        # peak logit -4
    queries = entropy_queries({"m": logits}, k=2, diameter_px=12)
    assert [(round(q.x), round(q.y)) for q in queries] == [(20, 30), (70, 60)]
    assert queries[0].score == pytest.approx(np.log(2), rel=1e-3)
    assert queries[0].score > queries[1].score
    everything = entropy_queries({"m": logits}, k=10, diameter_px=12)
    assert [(round(q.x), round(q.y)) for q in everything][:3] == [(20, 30), (70, 60), (60, 15)]
    assert all(a.score >= b.score for a, b in zip(everything, everything[1:]))


def test_entropy_queries_skip_labelled_places_and_span_micrographs():
    shape = (64, 64)
    a = np.full(shape, -8.0) + _bump(shape, 20, 20, 8.0)
    b = np.full(shape, -8.0) + _bump(shape, 40, 40, 7.0)
    labelled = {"a": Particles([21.0], [20.0], [1.0])}
    queries = entropy_queries({"a": a, "b": b}, k=1, diameter_px=10, labelled=labelled)
    assert [(q.name, round(q.x), round(q.y)) for q in queries] == [("b", 40, 40)]


def test_random_queries_are_spread_and_reproducible():
    shapes = {"a": (100, 100), "b": (100, 100)}
    q1 = random_queries(shapes, 12, np.random.default_rng(3), diameter_px=10)
    q2 = random_queries(shapes, 12, np.random.default_rng(3), diameter_px=10)
    assert [(q.name, q.x, q.y) for q in q1] == [(q.name, q.x, q.y) for q in q2] and len(q1) == 12
    for name in shapes:
        pts = np.array([(q.x, q.y) for q in q1 if q.name == name])
        if len(pts) > 1:
            d = np.hypot(*(pts[:, None] - pts[None]).transpose(2, 0, 1))
            assert d[np.triu_indices(len(pts), 1)].min() > 5
