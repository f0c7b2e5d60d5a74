"""The labelling loop: fit the model on the labels so far, ask the oracle about the most uncertain regions,
add its answers, refit; with known truth, report AP and F1 after every round.

Everything here is in the *preprocessed* pixels of the micrographs (the feature maps' frame); the command
converts to and from original pixels when it reads and writes the project.
"""

from __future__ import annotations

import time

import attrs
import numpy as np

from cryopick.particles import Particles
from cryopick_active.acquisition import Query, entropy_queries, random_queries, rank_queries
from cryopick_active.oracles import Answer


@attrs.define
class Item:
    """One micrograph of the session: its preprocessed image and feature map."""

    name: str
    image: np.ndarray
    features: np.ndarray
    factor: tuple[float, float] = (1.0, 1.0)


@attrs.define
class RoundReport:
    round: int
    labels: int
    positives: int
    negatives: int
    asked: int
    seconds: float
    ap: float | None = None
    f1: float | None = None
    best_f1: float | None = None
    precision: float | None = None
    recall: float | None = None

    def to_dict(self) -> dict:
        d = attrs.asdict(self)
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items() if v is not None}

    def line(self) -> str:
        text = (f"round {self.round}: {self.labels} labels ({self.positives} particles, {self.negatives} "
                f"background; {self.asked} asked), fitted in {self.seconds:.1f}s")
        if self.ap is not None:
            text += f"; vs truth AP {self.ap:.3f}, F1 {self.f1:.3f} (best F1 {self.best_f1:.3f})"
        return text


class ActiveSession:
    """Micrographs with features, the labels so far and the current model of an ``ActivePicker``.

    Parameters
    ----------
    picker : cryopick_active.picker.ActivePicker
    items : list of Item
    diameter_px : float
        Particle diameter in preprocessed pixels.
    labels : dict, optional
        ``{name: Particles}`` answered so far (score 1 particle, 0 background).
    truth : dict, optional
        ``{name: Particles}`` for AP/F1 after each round; ``eval_names`` limits them to some micrographs.
    """

    def __init__(self, picker, items: list[Item], diameter_px: float, labels: dict[str, Particles] | None = None,
                 truth: dict[str, Particles] | None = None, eval_names: list[str] | None = None, seed: int = 0,
                 query_names: list[str] | None = None):
        self.picker = picker
        self.items = {it.name: it for it in items}
        self.diameter_px = float(diameter_px)
        self.labels: dict[str, Particles] = {n: p for n, p in (labels or {}).items() if n in self.items}
        self.truth = truth
        self.eval_names = eval_names if eval_names is not None else sorted(self.items)
        #: micrographs the questions are about (default all; the benchmark asks on its training micrographs)
        self.query_names = query_names if query_names is not None else sorted(self.items)
        self.rng = np.random.default_rng(seed)
        self.sample = picker.pixel_sample([it.features for it in items], seed)
        self.reports: list[RoundReport] = []
        self.model = None
        self.asked = 0
        self._cuts = None  # (model, {name: cut-off}) of picks()

    # -- state ----------------------------------------------------------------------------------------
    def image(self, name: str) -> np.ndarray:
        return self.items[name].image

    @property
    def border_px(self) -> float:
        return self.picker.config.border_fraction * self.diameter_px / 2

    def n_labels(self) -> tuple[int, int]:
        """``(particles, background)`` labelled so far."""
        pos = sum(int(np.sum(p.score > 0.5)) for p in self.labels.values())
        neg = sum(int(np.sum(p.score <= 0.5)) for p in self.labels.values())
        return pos, neg

    def add(self, answers: list[Answer]) -> int:
        """Add answered labels (skips ignored); returns how many were added."""
        added = 0
        for a in answers:
            if a.positive is None or a.name not in self.items:
                continue
            new = Particles([a.x], [a.y], [1.0 if a.positive else 0.0])
            old = self.labels.get(a.name)
            self.labels[a.name] = Particles.concat([old, new]) if old is not None else new
            added += 1
        return added

    # -- model ----------------------------------------------------------------------------------------
    def fit(self):
        """Fit the regression on the labels so far (the expected-pi term alone before any label)."""
        maps = {n: it.features for n, it in self.items.items()}
        self.model = self.picker.fit(maps, self.labels, sample=self.sample)
        self.picker.fit_template({n: it.image for n, it in self.items.items()}, self.labels, self.diameter_px)
        return self.model

    def logit_maps(self) -> dict[str, np.ndarray]:
        return {n: self.picker.logits(it.features) for n, it in self.items.items()}

    def candidates(self, names: list[str] | None = None) -> dict[str, Particles]:
        """Picks of the current model (logit maxima) on ``names`` (default all)."""
        return {n: self.picker.pick_logits(self.items[n].image, self.picker.logits(self.items[n].features),
                                           self.diameter_px)
                for n in (names or sorted(self.items))}

    def picks(self, names: list[str] | None = None, candidates: dict[str, Particles] | None = None
              ) -> dict[str, Particles]:
        """The candidates of ``names`` (default all) above the picker's default cut-off. The thresholder sees
        the candidates of ``candidates`` when given, else of every micrograph of the session (as ``cryopick
        run`` cuts a run's micrographs together); that cut is kept until the next fit."""
        from cryopick.stages.pick import compute_cutoffs

        spec, host = self.picker.default_threshold, self.picker.context.plugin_host()
        if candidates is not None:
            cuts, _ = compute_cutoffs(candidates, spec, host)
            return {n: c.above(cuts[n]) for n, c in candidates.items()}
        if self._cuts is None or self._cuts[0] is not self.model:
            self._cuts = (self.model, compute_cutoffs(self.candidates(), spec, host)[0])
        names = names or sorted(self.items)
        cands = self.candidates(names)
        return {n: cands[n].above(self._cuts[1][n]) for n in names}

    def evaluate(self) -> dict | None:
        """AP, F1 at the picker's default cut-off and best F1 against the truth on ``eval_names``; None
        without truth."""
        if not self.truth:
            return None
        from cryopick.metrics import evaluate

        cands = self.candidates(self.eval_names)
        picks = self.picks(candidates=cands)
        truth = {n: self.truth.get(n, Particles.empty()) for n in self.eval_names}
        e = evaluate(picks, truth, diameter_px=self.diameter_px, candidates=cands)
        return {"ap": e.average_precision, "f1": e.f1, "best_f1": e.best_f1, "precision": e.precision,
                "recall": e.recall}

    # -- queries --------------------------------------------------------------------------------------
    def propose(self, k: int, strategy: str | None = None) -> list[Query]:
        """The next ``k`` regions: most uncertain (eq. 5), random, or in the first round (no label yet, so
        every pixel is equally uncertain) the best candidates of the features' own particle score, or of a
        blob detector at the particle size, spread over the micrographs."""
        strategy = strategy or self.picker.config.acquisition
        if strategy == "random":
            shapes = {n: self.items[n].image.shape for n in self.query_names}
            return random_queries(shapes, k, self.rng, self.labels, self.diameter_px, self.border_px)
        if not self.labels or self.model is None:
            return self._cold_start(k)
        maps = {n: self.picker.logits(self.items[n].features) for n in self.query_names}
        return entropy_queries(maps, k, self.diameter_px, self.labels, self.border_px)

    def _cold_start(self, k: int) -> list[Query]:
        from cryopick.pickers.dog import DoGConfig, DoGPicker

        provider = self.picker.feature_provider()
        dog = DoGPicker(DoGConfig(auto_cut=False))
        per_mic = {}
        for n in self.query_names:
            it = self.items[n]
            prior = provider.prior(it.image, self.diameter_px)
            if prior is None:
                prior = dog.score(it.image, self.diameter_px)
            inside = (prior.x >= self.border_px) & (prior.x <= it.image.shape[1] - 1 - self.border_px) & \
                     (prior.y >= self.border_px) & (prior.y <= it.image.shape[0] - 1 - self.border_px)
            per_mic[n] = prior.subset(inside).sorted_by_score()
        # round-robin over micrographs by rank, so the first round sees several micrographs
        ranked = {n: Particles(c.x, c.y, -np.arange(len(c), dtype=np.float64)) for n, c in per_mic.items()}
        return rank_queries(ranked, k, self.labels, exclude_px=self.diameter_px / 2)

    # -- rounds ---------------------------------------------------------------------------------------
    def run_round(self, oracle, k: int, strategy: str | None = None) -> RoundReport | None:
        """Ask ``k`` regions, add the answers, refit, evaluate; None when the oracle stopped the labelling."""
        if self.model is None:
            self.fit()
        queries = self.propose(k, strategy)
        if not queries:
            return None
        answers = oracle.ask(queries, self)
        if not answers:
            return None
        return self.finish_round(answers)

    def finish_round(self, answers: list[Answer]) -> RoundReport:
        """Add a round's answers, refit, evaluate and record the round's report."""
        self.asked += len(answers)
        self.add(answers)
        t0 = time.perf_counter()
        self.fit()
        seconds = time.perf_counter() - t0
        pos, neg = self.n_labels()
        report = RoundReport(len(self.reports) + 1, pos + neg, pos, neg, len(answers), seconds)
        scores = self.evaluate()
        if scores:
            report = attrs.evolve(report, **scores)
        self.reports.append(report)
        return report
