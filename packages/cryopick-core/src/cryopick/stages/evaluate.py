"""Stage 6, evaluate: picks against ground truth (precision, recall, F1, AP), the one evaluation path of
``cryopick run`` and ``cryopick eval``.

Inputs: picks and candidates (a run's, or read from a file), truth, the micrographs to score. Output: an
:class:`EvaluationResult`; for a run also ``/runs/<run>/metrics``. Micrographs a run's model was trained on
are left out by default: scoring them would measure memory, not picking.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

import attrs

from cryopick.errors import InputError
from cryopick.particles import Particles
from cryopick.stages.import_ import MICROGRAPH_SUFFIXES


@attrs.frozen
class EvaluationResult:
    evaluation: object  # cryopick.metrics.Evaluation
    micrographs: list[str]  # the micrographs scored
    excluded: list[str]  # labelled (training) micrographs left out

    def describe(self, limit: int = 8) -> str:
        """``scored 4 micrograph(s) (a, b, c, d), excluding 2 labelled micrograph(s)``."""
        n = len(self.micrographs)
        text = f"scored {n} micrograph(s)"
        if 0 < n <= limit:
            text += f" ({', '.join(self.micrographs)})"
        if self.excluded:
            text += f", excluding {len(self.excluded)} labelled micrograph(s)"
        return text

    def to_dict(self) -> dict:
        return {**self.evaluation.to_dict(), "micrographs": list(self.micrographs),
                "excluded_labelled": list(self.excluded)}


def select_micrographs(names: Iterable[str], patterns: Iterable[str] | None) -> list[str]:
    """The ``names`` that match any of ``patterns``: micrograph names, file names or globs of either
    (``mic_001``, ``data/mic_00*.mrc``); all names when ``patterns`` is empty."""
    names = sorted(names)
    patterns = [p for p in (patterns or []) if p]
    if not patterns:
        return names
    keep = set()
    for pattern in patterns:
        base = Path(pattern).name
        stem = base
        for suffix in MICROGRAPH_SUFFIXES:
            if base.lower().endswith(suffix):
                stem = base[: -len(suffix)]
        keep.update(n for n in names if fnmatch.fnmatchcase(n, stem))
    chosen = [n for n in names if n in keep]
    if not chosen:
        raise InputError(f"--micrographs {' '.join(patterns)} matches none of the {len(names)} micrograph(s) "
                         f"(e.g. {names[0] if names else '-'!r})")
    return chosen


def evaluate_picks(picks: dict[str, Particles], truth: dict[str, Particles], diameter_px: float, *,
                   candidates: dict[str, Particles] | None = None, names: Iterable[str] | None = None,
                   exclude: Iterable[str] = (), match: str = "iou", iou_threshold: float = 0.5,
                   radius_px: float | None = None) -> EvaluationResult:
    """Evaluate ``picks`` (and ranked ``candidates``) on ``names`` (default: every micrograph with picks or
    truth) minus ``exclude``. Truth names are matched to pick names as coordinate files are (base names)."""
    from cryopick.io.names import match_names
    from cryopick.metrics import evaluate

    known = list(picks) or list(truth)
    mapping, _ = match_names(list(truth), known)
    truth = {mapping.get(k, k): v for k, v in truth.items()}
    pool = sorted(set(names) if names is not None else set(picks) | set(truth))
    excluded = sorted(set(exclude) & set(pool))
    chosen = [n for n in pool if n not in excluded]
    if not chosen:
        raise InputError("no micrographs left to evaluate"
                         + (f" after excluding {len(excluded)} labelled one(s); use --include-labelled"
                            if excluded else ""))
    ev = evaluate({n: picks.get(n, Particles.empty()) for n in chosen},
                  {n: truth.get(n, Particles.empty()) for n in chosen}, diameter_px=diameter_px,
                  candidates=None if candidates is None else {n: c for n, c in candidates.items() if n in chosen},
                  method=match, iou_threshold=iou_threshold, radius_px=radius_px)
    return EvaluationResult(ev, chosen, excluded)


def labelled_micrographs(project, run: str) -> list[str]:
    """The micrographs with labels in the set the run's model was trained on (none for untrained runs)."""
    label_set = project.run_info(run).get("label_set")
    return sorted(project.labels(label_set)) if label_set else []


def evaluate_run(project, run: str, truth: dict[str, Particles], diameter_px: float | None = None, *,
                 names: Iterable[str] | None = None, include_labelled: bool = False, match: str = "iou",
                 iou_threshold: float = 0.5, radius_px: float | None = None, save: bool = True) -> EvaluationResult:
    """Evaluate run ``run`` of ``project`` on ``names`` (default: all its micrographs), leaving out the
    micrographs its model was trained on unless ``include_labelled``; ``save`` stores the result at
    ``/runs/<run>/metrics`` (needs the project open for writing)."""
    if run is None or run not in project.runs():
        raise InputError(f"no run {run!r} in {project.store.path}; runs: {', '.join(project.runs()) or 'none'}")
    info = project.run_info(run)
    diameter_px = diameter_px or info.get("diameter_px")
    if not diameter_px:
        raise InputError("--diameter is required")
    candidates = project.candidates(run)
    result = evaluate_picks(project.picks(run), truth, float(diameter_px), candidates=candidates,
                            names=sorted(candidates) if names is None else names,
                            exclude=() if include_labelled else labelled_micrographs(project, run),
                            match=match, iou_threshold=iou_threshold, radius_px=radius_px)
    if save:
        project.store.put(f"/runs/{run}/metrics", metrics=result.evaluation.to_dict(), micrographs=result.micrographs,
                          excluded_labelled=result.excluded, match=match)
    return result
