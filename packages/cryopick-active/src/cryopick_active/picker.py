"""The ``active`` picker: per-pixel logistic regression (eq. 1-4) on pretrained features
(papers/active-learning.md), trained on the labels that ``cryopick active label`` collects.

* **Features**: ``features=filters`` (default: the most accurate in benchmarks/bench_active.py on the three
  real sets, ahead of the shipped networks), ``hydra`` (the trunk of cryopick-hydra's shipped generic model),
  ``mae`` or ``topaz:ID|FILE`` (see :mod:`cryopick_active.features`), on micrographs downsampled to the
  provider's scale (``scale=auto``; ``scale=8A`` for the paper's 8 Å/px, ``scale=22px`` for a particle
  diameter in pixels) and normalised.
* **Labels**: an answered label (score 1 = particle, 0 = background; the ``active`` label set) marks a square of
  ``box`` pixels around its centre; coordinates from a file (no score) are particles. Everything else is
  unlabelled and only enters the expected-pi term.
* **Picking**: the logit map plus ``correlation`` x the positive answers' capped template correlation
  (cryopick's addition, as mae's and hydra's; 0 for the regression alone); its local maxima at least
  ``nms_fraction`` diameters apart, scored by their value,
  then the candidates on their shoulders (``nms=tiered``: scored logit - 1000, so ranked after every local
  maximum); each candidate then gets ``self_template`` x its capped correlation with a template of its own
  micrograph's best candidates (cryopick's addition); the default threshold is Otsu's cut of the candidates'
  scores over the run (``otsu``). Probability
  0.5 (``fixed:0``) is no particle/background boundary here: the expected-pi term (eq. 3) pulls the mean
  probability to ``pi``, so on crowded micrographs it keeps a few per cent of the particles.

The stored model carries the feature network's weights with the regression, so it picks anywhere.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

import attrs
import numpy as np

from cryopick.config import config_to_dict
from cryopick.errors import ConfigError
from cryopick.particles import Particles
from cryopick.picker import ModelState, Picker, TrainingData

#: The project label set that ``cryopick active label`` writes and this picker trains on by default.
LABEL_SET = "active"
#: The answers' correlation norm is taken at its maximum within this fraction of the diameter of each answer.
CORRELATION_SEARCH = 0.35
#: The best this fraction of a micrograph's candidates at its Otsu cut-off make its ``self_template``.
SELF_TEMPLATE_FRACTION = 0.5
MODEL_KIND = "cryopick-active/model"


@attrs.define
class ActiveConfig:
    """Settings of the ``active`` picker; defaults are the paper's (METHODS.md, "Active learning")."""

    #: Feature provider: filters, hydra[:FILE], mae[:FILE] or topaz:ID|FILE. ``filters`` (no model file) is the
    #: default because it gave the best AP on all three real sets (docs/benchmarks.md); the paper uses a
    #: pretrained topaz network, which cryopick cannot ship (GPL): ``topaz:ID`` takes an imported one.
    features: str = "filters"
    #: Scale of the micrographs the features see: ``auto`` (the provider's own), ``<A>A`` (pixel size in Å,
    #: the paper's ``8A``; needs the micrographs' pixel size) or ``<D>px`` (particle diameter in pixels).
    scale: str = "auto"
    #: Side (pixels of the feature map) of the square a label marks (the reference's ``Box``).
    box: int = 5
    #: L2 weight on the regression weights (eq. 2).
    l2: float = 1.0
    #: Expected fraction of particle pixels (eq. 3).
    pi: float = 0.01
    #: Weight of the expected-pi penalty (eq. 3).
    pi_weight: float = 1000.0
    #: Weigh positive and negative labelled pixels equally in the BCE (eq. 1).
    balance: bool = True
    #: Pixels sampled over all micrographs for the expected-pi term and feature standardisation.
    sample_pixels: int = 50000
    #: BFGS iterations at most.
    max_iter: int = 500
    #: Regions asked per round (the paper: 1 or 10).
    per_round: int = 10
    #: ``entropy`` (eq. 5) or ``random`` (the benchmark's baseline).
    acquisition: Literal["entropy", "random"] = "entropy"
    #: NMS disk radius as a fraction of the diameter.
    nms_fraction: float = 0.5
    #: Candidate extraction (``cryopick.nms.extract_peaks``): "tiered" = topaz-em's greedy NMS over every pixel,
    #: with the candidates that are no local maximum (a particle on a brighter neighbour's shoulder) ranked
    #: after all the local maxima; "local-max" = only the maxima of their disk; "greedy" = the shoulders ranked by
    #: their own score. With filter features and 50 answers: ribosome 0.709 / 0.700 / 0.634, TRPV1 0.514 / 0.384
    #: / 0.431, apoferritin 0.302 / 0.239 / 0.285 (tiered / local-max / greedy; docs/active-learning.md). Picks
    #: above the default cut are the same as local-max's; the shoulders add recall at the end of the ranking.
    nms: Literal["tiered", "greedy", "local-max"] = "tiered"
    #: No picks or queries closer than this fraction of the radius to the edge.
    border_fraction: float = 0.5
    #: Tile side (px) for the networks.
    tile: int = 256
    #: Add this multiple of the positive answers' template correlation to the logit map before candidates are
    #: extracted (cryopick's addition, as mae's and hydra's ``correlation``): the rotational average of the
    #: particles answered so far (one diameter in radius), correlated with each micrograph in robust standard
    #: units of that micrograph and capped at the median the answered particles reach against the template of
    #: the others (``cryopick.recentre.labels_correlation``, ``correlation_score``). Rebuilt at every fit; the
    #: questions still come from the regression's own uncertainty. With filter features, AP after 50 answers,
    #: 0 / 1 / 2 / 4 / 8: ribosome 0.709 / 0.719 / 0.726 / 0.729 / 0.736, TRPV1 0.514 / 0.525 / 0.524 / 0.525 /
    #: 0.529, apoferritin 0.302 / 0.384 / 0.404 / 0.427 / 0.434; 4 keeps the regression's share of the ranking
    #: (docs/benchmarks.md). 0: the regression's logits alone.
    correlation: float = attrs.field(default=4.0, validator=attrs.validators.ge(0.0))
    #: Then add this multiple of each candidate's correlation with a template of its own micrograph's best picks
    #: (cryopick's addition, as hydra's zero-shot ``self_template``; ``cryopick.recentre.self_correlation``): the
    #: best half of the candidates at the micrograph's Otsu cut-off make the template, so it has that micrograph's
    #: defocus and contrast where the answers' template has those of the micrographs asked about. AP after 50
    #: answers, 0 / 2 / 4 / 8 / 16: ribosome 0.729 / 0.740 / 0.750 / 0.765 / 0.775, TRPV1 0.525 / 0.539 / 0.546 /
    #: 0.553 / 0.560, apoferritin 0.427 / 0.434 / 0.438 / 0.441 / 0.443, ASPIRE SNR 0.005 0.758 / 0.768 / 0.770 /
    #: 0.771 / 0.771 (docs/benchmarks.md); 8 keeps a share of the ranking for the regression. 0: none.
    self_template: float = attrs.field(default=8.0, validator=attrs.validators.ge(0.0))
    #: Both template terms fall again where the correlation within a particle radius of a candidate passes this
    #: multiple of their clip (``cryopick.recentre.capped_correlation``): a candidate that matches the template
    #: twice as well as the answered particles' median is on something brighter or larger than a particle (ice, an
    #: aggregate), and the regression, linear in the filters, ranks it first. AP after 25 / 50 / 100 answers, 0 -> 2:
    #: ASPIRE SNR 0.005 0.744 / 0.771 / 0.778 -> 0.907 / 0.914 / 0.910, the three real sets within 0.002 (ribosome
    #: after 100: 0.761 -> 0.778; docs/benchmarks.md). 0: the plain clip.
    contaminant: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.0))


PRESETS: dict[str, dict] = {
    "paper": {},
    # tests and the plugin contract: fixed filters, nothing to load
    "tiny": dict(features="filters", sample_pixels=5000, max_iter=200),
}

_SCALE = re.compile(r"^\s*(auto|([0-9.]+)\s*(a|å|px))\s*$", re.I)


def parse_scale(value: str) -> tuple[str, float | None]:
    """``auto`` -> ("auto", None); ``8A`` -> ("pixel", 8.0); ``22px`` -> ("diameter", 22.0)."""
    m = _SCALE.match(str(value))
    if not m:
        raise ConfigError(f"--set scale={value}: use auto, a pixel size such as 8A, or a diameter such as 22px")
    if m.group(1).lower() == "auto":
        return "auto", None
    number = float(m.group(2))
    if number <= 0:
        raise ConfigError(f"--set scale={value}: must be positive")
    return ("pixel" if m.group(3).lower() in ("a", "å") else "diameter"), number


def label_targets(labels: Particles) -> np.ndarray:
    """1 for particles, 0 for background: a label's score is 1 or 0; labels without a score (from a
    coordinate file) are particles."""
    score = np.asarray(labels.score, dtype=np.float64)
    return np.where(np.isnan(score), 1.0, (score > 0.5).astype(np.float64))


def box_pixels(labels: Particles, shape: tuple[int, int], box: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and targets of the pixels the labels mark: a ``box`` x ``box`` square around each
    (clipped to the image); a pixel marked twice keeps its last label."""
    h, w = shape
    half = (int(box) - 1) // 2
    offs = np.arange(-half, int(box) - half)
    targets = label_targets(labels)
    marked: dict[tuple[int, int], float] = {}
    for x, y, t in zip(labels.x, labels.y, targets):
        cx, cy = int(round(x)), int(round(y))
        for dy in offs:
            for dx in offs:
                r, c = cy + dy, cx + dx
                if 0 <= r < h and 0 <= c < w:
                    marked[(r, c)] = t
    if not marked:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    keys = np.array(list(marked.keys()))
    return keys[:, 0], keys[:, 1], np.array(list(marked.values()))


class ActivePicker(Picker):
    """Logistic regression on pretrained per-pixel features, trained from a few answered regions."""

    Config = ActiveConfig
    presets: ClassVar[dict[str, dict]] = PRESETS
    default_threshold = "otsu"
    #: A labelled set of the project to train on when a run brings no labels (core reads it).
    label_set: ClassVar[str] = LABEL_SET
    #: The demo gives 25 particles of one micrograph (as clicks; no negatives): run ``cryopick active label``
    #: for the full loop.
    demo_labels: ClassVar[int | None] = 25

    def __init__(self, config, context=None) -> None:
        super().__init__(config, context)
        parse_scale(config.scale)
        self.provider = None
        self.model = None
        self._cache: dict[tuple, np.ndarray] = {}
        #: the positive answers' template and the clip of its correlation term (``correlation``); None without
        #: positive answers, with correlation=0 or for models stored without them
        self._template: np.ndarray | None = None
        self._clip: float | None = None
        self.resolve_model = None  # set by the label command: stored models by ID (features=topaz:ID)

    # -- features -------------------------------------------------------------------------------------
    def feature_provider(self):
        """The feature provider (built once)."""
        if self.provider is None:
            from cryopick_active.features import make_provider

            self.provider = make_provider(self.config.features, self.context.device or "cpu", self.resolve_model,
                                          tile=self.config.tile)
        return self.provider

    def preprocessing(self, diameter_px: float, pixel_size_a: float | None) -> list[tuple[str, dict]]:
        kind, value = parse_scale(self.config.scale)
        provider = self.feature_provider()
        if kind == "auto" and provider.pixel_size_a and pixel_size_a:
            kind, value = "pixel", provider.pixel_size_a
        if kind == "pixel":
            if not pixel_size_a:
                raise ConfigError(f"scale={self.config.scale}: the micrographs have no pixel size; pass "
                                  "--pixel-size, or use scale=auto / scale=<D>px")
            factor = max(1.0, value / pixel_size_a)
        else:
            target = value if kind == "diameter" else provider.diameter_px
            factor = max(1.0, diameter_px / target)
        chain = [("downsample", {"factor": round(factor, 4)})]
        if provider.denoise > 0:
            chain.append(("lowpass", {"sigma_px": round(provider.denoise * diameter_px / factor, 3)}))
        return chain + [("normalize", {})]

    def features(self, image: np.ndarray) -> np.ndarray:
        """``(C, H, W)`` features of a preprocessed image (kept for the process: train and score share them)."""
        key = (image.shape, hash(np.ascontiguousarray(image).tobytes()))
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            self._cache[key] = self.feature_provider()(image)
        return self._cache[key]

    def feature_key(self) -> dict:
        """What cached features depend on (besides the preprocessing)."""
        return self.feature_provider().identity()

    # -- fitting --------------------------------------------------------------------------------------
    def pixel_sample(self, feature_maps: list[np.ndarray], seed: int | None = None) -> np.ndarray:
        """``(m, C)`` features of pixels drawn uniformly from all maps (deterministic given the seed)."""
        rng = np.random.default_rng(self.context.seed if seed is None else seed)
        total = sum(f.shape[1] * f.shape[2] for f in feature_maps)
        parts = []
        for f in feature_maps:
            n = f.shape[1] * f.shape[2]
            m = min(n, max(1, int(round(self.config.sample_pixels * n / max(total, 1)))))
            idx = rng.choice(n, size=m, replace=False)
            parts.append(f.reshape(f.shape[0], -1)[:, idx].T)
        return np.concatenate(parts).astype(np.float64)

    def fit(self, feature_maps: dict[str, np.ndarray], labels: dict[str, Particles],
            sample: np.ndarray | None = None):
        """Fit eq. 4 on the labelled squares of ``labels`` (preprocessed pixels, score 1/0/NaN)."""
        from cryopick_active.model import fit

        xs, ys = [], []
        for name, lab in labels.items():
            if lab is None or not len(lab) or name not in feature_maps:
                continue
            f = feature_maps[name]
            rows, cols, t = box_pixels(lab, f.shape[1:], self.config.box)
            xs.append(f[:, rows, cols].T)
            ys.append(t)
        channels = next(iter(feature_maps.values())).shape[0]
        x = np.concatenate(xs) if xs else np.zeros((0, channels))
        y = np.concatenate(ys) if ys else np.zeros(0)
        if sample is None:
            sample = self.pixel_sample(list(feature_maps.values()))
        cfg = self.config
        self.model = fit(x, y, sample, l2=cfg.l2, pi=cfg.pi, pi_weight=cfg.pi_weight, balance=cfg.balance,
                         max_iter=cfg.max_iter)
        self.model.info["labels"] = int(sum(len(v) for v in labels.values() if v is not None))
        return self.model

    def logits(self, features: np.ndarray) -> np.ndarray:
        if self.model is None:
            raise RuntimeError("active picker has no model: train() or load() first")
        return self.model.logits(features)

    def fit_template(self, images: dict[str, np.ndarray], labels: dict[str, Particles], diameter_px: float) -> None:
        """The template of the particles among ``labels`` (on the preprocessed ``images``) and the clip of its
        correlation term; none with correlation=0 or without a particle label."""
        from cryopick.recentre import labels_correlation

        self._template, self._clip = None, None
        positives = [(images[n], lab.xy[label_targets(lab) > 0.5]) for n, lab in labels.items()
                     if lab is not None and len(lab) and n in images]
        if self.config.correlation > 0 and any(len(xy) for _, xy in positives):
            self._template, self._clip = labels_correlation(positives, diameter_px, CORRELATION_SEARCH * diameter_px)

    def pick_logits(self, image: np.ndarray, logits: np.ndarray, diameter_px: float) -> Particles:
        """Candidates of a preprocessed ``image`` from its logit map, with ``correlation`` x the answers'
        capped template correlation added first (when there is a template), and lowered after extraction where
        that correlation, within a particle radius, is beyond the contaminant bound."""
        excess = None
        if self._template is not None and self._clip is not None and self.config.correlation > 0:
            from cryopick.recentre import CONTAMINANT_REACH, capped_correlation, correlation_map, neighbourhood_max
            from cryopick.recentre import standardised_correlation

            z = standardised_correlation(correlation_map(image, self._template))
            capped = np.minimum(z, self._clip)
            # the excess is taken per candidate, not on the map: lowered on the map, a contaminant's peak would
            # move to its rim
            reach = CONTAMINANT_REACH * diameter_px * image.shape[1] / logits.shape[1]  # in the image's pixels
            excess = capped - capped_correlation(z, self._clip, self.config.contaminant, neighbourhood_max(z, reach))
            if capped.shape != logits.shape:  # a feature map on another grid than the image: resample the term
                from scipy.ndimage import zoom

                factors = (logits.shape[0] / capped.shape[0], logits.shape[1] / capped.shape[1])
                capped, excess = zoom(capped, factors, order=1), zoom(excess, factors, order=1)
            logits = logits + (self.config.correlation * capped).astype(logits.dtype)
        candidates = self.peaks(logits, diameter_px)
        if excess is not None and len(candidates):
            from cryopick.recentre import sample_at

            lowered = self.config.correlation * sample_at(excess, candidates.xy)
            candidates = Particles(candidates.x, candidates.y, candidates.score - lowered)
        return self._with_self_template(image, candidates, logits.shape, diameter_px)

    def _with_self_template(self, image: np.ndarray, candidates: Particles, grid: tuple[int, int],
                            diameter_px: float) -> Particles:
        """``candidates`` (on a logit map of shape ``grid``) with ``self_template`` x their capped correlation with
        the template of the best half of the micrograph's candidates at its Otsu cut-off added."""
        from cryopick.recentre import self_correlation
        from cryopick.threshold import Otsu

        w = self.config.self_template
        if w <= 0 or not len(candidates):
            return candidates
        sx, sy = image.shape[1] / grid[1], image.shape[0] / grid[0]  # the logit map's grid -> the image's
        on_image = Particles(candidates.x * sx, candidates.y * sy, candidates.score)
        term = self_correlation(image, on_image, Otsu().cutoff(candidates.score), SELF_TEMPLATE_FRACTION,
                                diameter_px * sx, CORRELATION_SEARCH * diameter_px * sx, contaminant=self.config.contaminant)
        if term is None:
            return candidates
        return Particles(candidates.x, candidates.y, candidates.score + w * term)

    def peaks(self, logits: np.ndarray, diameter_px: float) -> Particles:
        from cryopick.nms import extract_peaks

        return extract_peaks(logits, radius=max(1.0, self.config.nms_fraction * diameter_px), method=self.config.nms,
                             exclude_border=self.config.border_fraction * diameter_px / 2)

    # -- pipeline -------------------------------------------------------------------------------------
    def train(self, data: TrainingData) -> ModelState:
        maps = {it.name: self.features(it.image) for it in data.items + data.unlabelled}
        labels = {it.name: it.labels for it in data.items if it.labels is not None}
        if not any(len(v) for v in labels.values()):
            raise ConfigError("the active picker needs labels: run 'cryopick active label' first, or give --labels")
        self.fit(maps, labels)
        self.fit_template({it.name: it.image for it in data.items}, labels, data.diameter_px)
        return self.state()

    def state(self) -> ModelState:
        arrays, provider_config = self.feature_provider().state()
        from cryopick_active.features import PREFIX

        out = {PREFIX + k: v for k, v in arrays.items()}
        out.update(self.model.arrays())
        if self._template is not None and self._clip is not None:
            out["correlation_template"] = self._template.astype(np.float32)
            out["correlation_clip"] = np.asarray([self._clip], dtype=np.float64)
        return ModelState(out, {"kind": MODEL_KIND, "features": provider_config, "picker": config_to_dict(self.config),
                                "fit": dict(self.model.info)})

    def load(self, state: ModelState) -> None:
        from cryopick_active.features import PREFIX, restore_provider
        from cryopick_active.model import Logistic

        if state.config.get("kind") != MODEL_KIND:
            raise ConfigError("not an active-learning model (write one with 'cryopick active label')")
        arrays = {k[len(PREFIX):]: v for k, v in state.arrays.items() if k.startswith(PREFIX)}
        self.provider = restore_provider(arrays, state.config["features"], self.context.device or "cpu",
                                         tile=self.config.tile)
        self.model = Logistic.from_arrays(state.arrays, state.config.get("fit"))
        # models stored before the correlation term (or picking with correlation=0) pick without it
        template, clip = state.arrays.get("correlation_template"), state.arrays.get("correlation_clip")
        use = template is not None and clip is not None and self.config.correlation > 0
        self._template = np.asarray(template, dtype=np.float32) if use else None
        self._clip = float(np.asarray(clip, dtype=np.float64).reshape(-1)[0]) if use else None

    def facts(self) -> dict:
        if self.model is None:
            return {}
        info = self.model.info
        return {"features": self.config.features, "labels": info.get("labels"),
                "labelled pixels": info.get("labelled_pixels")}

    def score(self, image: np.ndarray, diameter_px: float) -> Particles:
        return self.pick_logits(image, self.logits(self.features(image)), diameter_px)
