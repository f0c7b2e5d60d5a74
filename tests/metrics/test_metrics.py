"""Tests of matching and evaluation metrics."""

import json

import numpy as np
import pytest

from cryopick.metrics import evaluate, match
from cryopick.particles import Particles


def P(xy, score=None):
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    return Particles(xy[:, 0], xy[:, 1], score)


def test_iou_matching_exact_counts():
    truth = P([[100, 100], [200, 200], [300, 300]])
    # Box IoU for side 30 and shift (dx, 0): (30 - dx) / (30 + dx); >= 0.5 iff dx <= 10.
    picks = P([[110, 100], [211, 200], [300, 300], [500, 500]])
    m = match(picks, truth, diameter_px=30)
    assert m.tp.tolist() == [True, False, True, False]
    assert m.truth_index.tolist() == [0, -1, 2, -1]
    assert m.missed.tolist() == [False, True, False]
    # Diagonal shift (5, 5): intersection 625, union 1175 -> 0.53.
    assert match(P([[105, 105]]), truth, diameter_px=30).n_tp == 1
    assert match(P([[106, 107]]), truth, diameter_px=30).n_tp == 0


def test_distance_matching_exact_counts():
    truth = P([[0, 0], [50, 0]])
    picks = P([[0, 14.9], [50, 15.1], [30, 0]])
    m = match(picks, truth, diameter_px=30, method="distance")
    assert m.tp.tolist() == [True, False, False]
    m = match(picks, truth, diameter_px=30, method="distance", radius_px=20.5)
    assert m.tp.tolist() == [True, True, False]


def test_double_pick_is_false_positive():
    truth = P([[100, 100]])
    picks = P([[101, 100], [100, 100]], score=[0.9, 0.5])
    for method in ("iou", "distance"):
        m = match(picks, truth, diameter_px=20, method=method)
        assert m.n_tp == 1 and m.n_picks == 2
        e = evaluate({"a": picks}, {"a": truth}, diameter_px=20, method=method)
        assert e.precision == 0.5 and e.recall == 1.0


def test_optimal_not_greedy():
    # Pick 0 is within reach of both truths, pick 1 only of truth 0: optimal assignment matches both.
    truth = P([[0, 0], [14, 0]])
    picks = P([[8, 0], [-6, 0]])
    m = match(picks, truth, diameter_px=20, method="distance")
    assert m.n_tp == 2 and sorted(m.truth_index.tolist()) == [0, 1]


def test_truth_against_itself():
    rng = np.random.default_rng(1)
    truth = {f"m{i}": P(rng.uniform(0, 1000, (50, 2))) for i in range(3)}
    for method in ("iou", "distance"):
        e = evaluate(truth, truth, diameter_px=10, method=method)
        assert (e.precision, e.recall, e.f1, e.average_precision, e.best_f1) == (1.0, 1.0, 1.0, 1.0, 1.0)
        json.dumps(e.to_dict(include_curve=True))
    scored = {k: Particles(v.x, v.y, np.ones(len(v))) for k, v in truth.items()}
    e = evaluate(scored, truth, diameter_px=10)
    assert e.average_precision == 1.0 and e.best_threshold == 1.0 and e.auroc is None


def test_missing_micrograph_counts_as_false_negatives():
    truth = {"a": P([[10, 10]]), "b": P([[10, 10], [50, 50]])}
    e = evaluate({"a": P([[10, 10]])}, truth, diameter_px=10)
    assert (e.n_tp, e.n_truth, e.n_picks) == (1, 3, 1)
    assert e.recall == pytest.approx(1 / 3) and e.precision == 1.0
    assert [row["micrograph"] for row in e.per_micrograph] == ["a", "b"]


def test_average_precision_ranking():
    truth = {"a": P([[0, 0], [100, 0]])}
    xy = [[0, 0], [100, 0], [300, 0], [400, 0]]
    good = {"a": P(xy, score=[4, 3, 2, 1])}
    bad = {"a": P(xy, score=[1, 2, 3, 4])}
    e_good = evaluate(good, truth, diameter_px=20)
    e_bad = evaluate(bad, truth, diameter_px=20)
    assert e_good.average_precision == pytest.approx(1.0)
    # Reversed: TPs at ranks 3 and 4 -> precisions 1/3 and 2/4.
    assert e_bad.average_precision == pytest.approx(0.5 * (1 / 3) + 0.5 * (2 / 4))
    assert e_good.auroc == 1.0 and e_bad.auroc == 0.0
    assert e_good.best_f1 == 1.0 and e_good.best_threshold == 3.0
    assert e_good.f1 == pytest.approx(2 / 3)


def test_best_threshold_with_candidates():
    truth = {"a": P([[0, 0], [100, 0], [200, 0]])}
    cand = {"a": P([[0, 0], [100, 0], [500, 0], [200, 0], [600, 0]], score=[0.9, 0.8, 0.7, 0.6, 0.1])}
    picks = {"a": cand["a"].above(0.75)}
    e = evaluate(picks, truth, diameter_px=20, candidates=cand)
    assert e.n_picks == 2 and e.recall == pytest.approx(2 / 3)
    # Thresholds 0.8 -> F1 0.8; 0.6 -> P 3/4, R 1 -> F1 6/7 (best).
    assert e.best_threshold == 0.6 and e.best_f1 == pytest.approx(6 / 7)
    assert e.auroc == pytest.approx(5 / 6)


def test_many_particles_fast():
    import time

    rng = np.random.default_rng(0)
    t = P(rng.uniform(0, 4000, (4000, 2)))
    p = Particles(t.x + rng.normal(0, 3, len(t)), t.y + rng.normal(0, 3, len(t)), rng.uniform(size=len(t)))
    start = time.perf_counter()
    e = evaluate({"a": p}, {"a": t}, diameter_px=40)
    assert time.perf_counter() - start < 2
    assert e.recall > 0.95
