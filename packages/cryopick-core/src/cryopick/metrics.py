"""Picking metrics: one-to-one matching of picks to truth, precision/recall/F1, average precision, AUROC.

Two matching criteria, both solved as an optimal one-to-one assignment (``linear_sum_assignment`` on the sparse
candidate pairs found with a k-d tree, one connected component at a time):

``method="iou"`` (CryoMAE §4.1.3)
    Each particle is a square box of side ``diameter_px`` centred on it; a pick matches a truth when the boxes'
    intersection over union is at least ``iou_threshold`` (0.5).
``method="distance"`` (Topaz ``precision_recall_curve``)
    A pick matches a truth when their centres are at most ``radius_px`` apart (default ``diameter_px / 2``).

The assignment maximises the number of matches, then the total match quality (IoU, or closeness). A second pick on
an already matched particle is a false positive.

Ranked metrics (average precision, best F1, AUROC) use a *greedy* matching instead, the standard for detection AP
(PASCAL VOC, COCO): within each micrograph, candidates are visited in decreasing score and each takes the best
still-unmatched truth it matches. All candidates are then ranked by score across micrographs (NaN scores rank last,
tied). AP is the all-point (non-interpolated) area under the precision-recall curve,
``AP = sum_k (R_k - R_{k-1}) P_k`` over distinct score thresholds, as in scikit-learn's ``average_precision_score``.
"""

from __future__ import annotations

import math

import attrs
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from scipy.stats import rankdata

from cryopick.errors import InputError
from cryopick.particles import Particles


@attrs.define(eq=False)
class Matching:
    """Result of matching picks to truth on one micrograph.

    Parameters
    ----------
    tp : ndarray of bool
        Per pick: matched to a truth particle.
    truth_index : ndarray of int
        Per pick: index of the matched truth particle, -1 for false positives.
    n_truth : int
        Number of truth particles.
    """

    tp: np.ndarray
    truth_index: np.ndarray
    n_truth: int

    @property
    def n_tp(self) -> int:
        return int(self.tp.sum())

    @property
    def n_picks(self) -> int:
        return int(self.tp.size)

    @property
    def missed(self) -> np.ndarray:
        """Boolean mask over truth: not matched by any pick (false negatives)."""
        found = np.zeros(self.n_truth, dtype=bool)
        found[self.truth_index[self.truth_index >= 0]] = True
        return ~found


def _pairs(picks: Particles, truth: Particles, diameter_px: float, method: str, iou_threshold: float,
           radius_px: float | None):
    """Candidate pairs ``(pick index, truth index, quality in (0, 1])`` that satisfy the criterion."""
    if diameter_px <= 0:
        raise InputError(f"diameter_px must be positive, got {diameter_px}")
    if method not in ("iou", "distance"):
        raise InputError(f"unknown matching method {method!r}; use 'iou' or 'distance'")
    empty = (np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if len(picks) == 0 or len(truth) == 0:
        return empty
    search = diameter_px * math.sqrt(2) if method == "iou" else (radius_px if radius_px is not None else diameter_px / 2)
    tree_p, tree_t = cKDTree(picks.xy), cKDTree(truth.xy)
    # The "ndarray" output keeps pairs at distance exactly 0 (sparse matrices would drop them).
    pairs = tree_p.sparse_distance_matrix(tree_t, search, output_type="ndarray")
    i, j = pairs["i"].astype(int), pairs["j"].astype(int)
    if i.size == 0:
        return empty
    dx = np.abs(picks.x[i] - truth.x[j])
    dy = np.abs(picks.y[i] - truth.y[j])
    if method == "iou":
        inter = np.clip(diameter_px - dx, 0, None) * np.clip(diameter_px - dy, 0, None)
        quality = inter / (2 * diameter_px**2 - inter)
        ok = quality >= iou_threshold - 1e-12
    else:
        r = radius_px if radius_px is not None else diameter_px / 2
        d = np.hypot(dx, dy)
        ok = d <= r + 1e-9
        quality = 1.0 - d / (r + 1e-9) * 0.999
    return i[ok], j[ok], quality[ok]


def match(picks: Particles, truth: Particles, *, diameter_px: float, method: str = "iou", iou_threshold: float = 0.5,
          radius_px: float | None = None) -> Matching:
    """Optimal one-to-one matching of picks to truth on one micrograph.

    Parameters
    ----------
    picks, truth : Particles
        Coordinates in the same pixel frame.
    diameter_px : float
        Particle diameter (box side for ``"iou"``).
    method : {"iou", "distance"}
        Matching criterion (see module docstring).
    iou_threshold : float
        Smallest box IoU of a match (``"iou"``).
    radius_px : float, optional
        Largest centre distance of a match (``"distance"``); default ``diameter_px / 2``.

    Returns
    -------
    Matching
    """
    i, j, q = _pairs(picks, truth, diameter_px, method, iou_threshold, radius_px)
    truth_index = np.full(len(picks), -1, dtype=int)
    if i.size:
        n_p, n_t = len(picks), len(truth)
        graph = coo_matrix((np.ones(i.size), (i, n_p + j)), shape=(n_p + n_t, n_p + n_t))
        _, labels = connected_components(graph, directed=False)
        comp = labels[i]
        order = np.argsort(comp, kind="stable")
        i, j, q, comp = i[order], j[order], q[order], comp[order]
        starts = np.flatnonzero(np.r_[True, comp[1:] != comp[:-1]])
        ends = np.r_[starts[1:], comp.size]
        for s, e in zip(starts, ends):
            ci, cj, cq = i[s:e], j[s:e], q[s:e]
            if e - s == 1:
                truth_index[ci[0]] = cj[0]
                continue
            up, ip = np.unique(ci, return_inverse=True)
            ut, it = np.unique(cj, return_inverse=True)
            # Maximise matches first, then quality: each match is worth 1 + a bonus smaller than 1 / n.
            bonus = 0.5 / (min(up.size, ut.size) + 1)
            weight = np.zeros((up.size, ut.size))
            weight[ip, it] = 1.0 + bonus * cq
            rows, cols = linear_sum_assignment(weight, maximize=True)
            keep = weight[rows, cols] > 0
            truth_index[up[rows[keep]]] = ut[cols[keep]]
    return Matching(truth_index >= 0, truth_index, len(truth))


def greedy_match(picks: Particles, truth: Particles, *, diameter_px: float, method: str = "iou",
                 iou_threshold: float = 0.5, radius_px: float | None = None) -> Matching:
    """Greedy matching in decreasing score order (each pick takes its best unmatched truth), as used for AP."""
    i, j, q = _pairs(picks, truth, diameter_px, method, iou_threshold, radius_px)
    truth_index = np.full(len(picks), -1, dtype=int)
    if i.size:
        rank = np.empty(len(picks), dtype=int)
        rank[_score_order(picks.score)] = np.arange(len(picks))
        order = np.lexsort((-q, rank[i]))
        used = np.zeros(len(truth), dtype=bool)
        for p, t in zip(i[order], j[order]):
            if truth_index[p] < 0 and not used[t]:
                truth_index[p] = t
                used[t] = True
    return Matching(truth_index >= 0, truth_index, len(truth))


def _score_order(score: np.ndarray) -> np.ndarray:
    return np.argsort(-np.nan_to_num(score, nan=-np.inf), kind="stable")


@attrs.define(eq=False)
class PRCurve:
    """Precision and recall at each distinct score threshold (descending), from ranked candidates."""

    thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray

    @property
    def f1(self) -> np.ndarray:
        s = self.precision + self.recall
        return np.where(s > 0, 2 * self.precision * self.recall / np.where(s > 0, s, 1), 0.0)


def _prf(n_tp: int, n_picks: int, n_truth: int) -> tuple[float, float, float]:
    precision = n_tp / n_picks if n_picks else (1.0 if n_truth == 0 else 0.0)
    recall = n_tp / n_truth if n_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return float(precision), float(recall), float(f1)


def ranked_curve(scores: np.ndarray, tp: np.ndarray, n_truth: int) -> PRCurve:
    """Precision-recall curve of ranked candidates; ties in score form one threshold."""
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], np.asarray(tp, dtype=bool)[order]
    if s.size == 0:
        return PRCurve(np.zeros(0), np.zeros(0), np.zeros(0))
    last = np.r_[np.flatnonzero(s[1:] != s[:-1]), s.size - 1]
    ctp = np.cumsum(t)[last]
    n = last + 1
    recall = ctp / n_truth if n_truth else np.ones(last.size)
    return PRCurve(s[last], ctp / n, recall)


def _auroc(scores: np.ndarray, positive: np.ndarray) -> float | None:
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.nan_to_num(scores, nan=-np.inf))  # average ranks for ties
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (np.floating, np.integer)):
        return _jsonable(value.item())
    return value


@attrs.define(eq=False)
class Evaluation:
    """Picking quality over a set of micrographs (see :func:`evaluate`)."""

    precision: float
    recall: float
    f1: float
    average_precision: float
    best_f1: float
    best_threshold: float
    auroc: float | None
    n_picks: int
    n_truth: int
    n_tp: int
    per_micrograph: list[dict]
    curve: PRCurve | None = None

    def to_dict(self, include_curve: bool = False) -> dict:
        """JSON-ready dictionary (NaN and infinities become ``None``)."""
        d = {k: _jsonable(getattr(self, k)) for k in (
            "precision", "recall", "f1", "average_precision", "best_f1", "best_threshold", "auroc",
            "n_picks", "n_truth", "n_tp")}
        d["per_micrograph"] = [{k: _jsonable(v) for k, v in row.items()} for row in self.per_micrograph]
        if include_curve and self.curve is not None:
            d["curve"] = {
                "thresholds": [_jsonable(float(v)) for v in self.curve.thresholds],
                "precision": self.curve.precision.tolist(),
                "recall": self.curve.recall.tolist(),
            }
        return d


def evaluate(picks: dict[str, Particles], truth: dict[str, Particles], *, diameter_px: float,
             candidates: dict[str, Particles] | None = None, method: str = "iou", iou_threshold: float = 0.5,
             radius_px: float | None = None) -> Evaluation:
    """Evaluate picks against truth over several micrographs.

    Parameters
    ----------
    picks : dict of str to Particles
        Thresholded picks per micrograph name; precision, recall and F1 use an optimal one-to-one matching.
    truth : dict of str to Particles
        Labelled particles per micrograph; micrographs absent from ``picks`` count all their truth as missed.
    diameter_px : float
        Particle diameter in pixels.
    candidates : dict of str to Particles, optional
        Scored candidates before thresholding; AP, best F1 and AUROC are computed over them (else over ``picks``).
    method, iou_threshold, radius_px
        Matching criterion, see :func:`match`.

    Returns
    -------
    Evaluation
        ``best_threshold`` is the score threshold (keep ``score >= t``) of the best F1 on the ranked list; NaN if
        scores are unknown. ``auroc`` separates matched from unmatched candidates; ``None`` without both.
    """
    kw = dict(diameter_px=diameter_px, method=method, iou_threshold=iou_threshold, radius_px=radius_px)
    names = sorted(set(truth) | set(picks) | set(candidates or {}))
    rows, n_tp, n_picks, n_truth = [], 0, 0, 0
    ranked_scores, ranked_tp = [], []
    ranked = candidates if candidates is not None else picks
    for name in names:
        p = picks.get(name, Particles.empty())
        t = truth.get(name, Particles.empty())
        m = match(p, t, **kw)
        precision, recall, f1 = _prf(m.n_tp, len(p), len(t))
        rows.append({"micrograph": name, "n_picks": len(p), "n_truth": len(t), "n_tp": m.n_tp,
                     "precision": precision, "recall": recall, "f1": f1})
        n_tp, n_picks, n_truth = n_tp + m.n_tp, n_picks + len(p), n_truth + len(t)
        c = ranked.get(name, Particles.empty())
        if len(c):
            g = greedy_match(c, t, **kw)
            ranked_scores.append(c.score)
            ranked_tp.append(g.tp)
    precision, recall, f1 = _prf(n_tp, n_picks, n_truth)
    scores = np.concatenate(ranked_scores) if ranked_scores else np.zeros(0)
    tps = np.concatenate(ranked_tp) if ranked_tp else np.zeros(0, dtype=bool)
    curve = ranked_curve(scores, tps, n_truth)
    if curve.recall.size and n_truth:
        ap = float(np.sum(np.diff(np.r_[0.0, curve.recall]) * curve.precision))
        k = int(np.argmax(curve.f1))
        best_f1, best_threshold = float(curve.f1[k]), float(curve.thresholds[k])
        if not np.isfinite(best_threshold):
            best_threshold = float("nan")
    else:
        ap = 1.0 if n_truth == 0 and not tps.size else 0.0
        best_f1, best_threshold = (1.0 if n_truth == 0 and not tps.size else 0.0), float("nan")
    return Evaluation(
        precision=precision, recall=recall, f1=f1, average_precision=ap, best_f1=best_f1,
        best_threshold=best_threshold, auroc=_auroc(scores, tps), n_picks=n_picks, n_truth=n_truth, n_tp=n_tp,
        per_micrograph=rows, curve=curve,
    )
