"""The ``hydra`` picker: HydraPicker (papers/hydrapicker-thesis.md), a detector with a shared trunk and one
head per training data set plus a generic head for data sets it has never seen.

* **Zero-shot** (no ``--labels``): picks with the generic head of a model trained on many data sets by
  ``cryopick hydra train``: the one shipped in this package (``checkpoint=builtin``, the default) or a
  given file (``--set checkpoint=FILE``). ``--set head=NAME`` picks with one of the model's data-set heads.
  Each micrograph's candidates get ``self_template`` x their capped correlation with a template of that
  micrograph's own best picks added (cryopick's addition), keeping the head's count at its cut-off.
* **Few-shot** (``--labels``): a new data-set head, initialised from the generic head, is trained on the
  labelled micrographs with the trunk and the generic head frozen (§4.7), with ``l_Hydra`` (eq. 3.1: the
  bias loss keeps it near the generic head); its candidates' logits get ``correlation`` x the labels'
  capped template correlation added (cryopick's addition, as mae's).
* **From scratch** (``--set checkpoint=none``, needs labels): trunk and generic head trained on the
  labelled micrographs alone (phase 1 of §4.3 on one data set).
* **Inference**: micrographs are rescaled so particles are about ``pick_diameter_px`` (25) px (§4.1: 20-24;
  the shipped model, trained at 22, ranks particles best at 25 on independent data),
  scored tile by tile (``tile``) in four 90-degree rotations averaged cell by cell (``tta``), each 16 px
  cell's anchor decoded to a centre (§3.1), then greedy NMS at ``nms_fraction`` (0.5: the particle radius)
  of the diameter; scores are the particle logits and any core thresholder cuts them (default
  ``fixed:LOGIT``: the model's own cut-off, the median over its validation sets of the logit with the best
  F1, when it has one; else logit 0, probability 0.5; a few-shot head's own cut-off, ``_few_shot_cut``).
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import numpy as np

from cryopick.config import config_to_dict
from cryopick.errors import ConfigError
from cryopick.particles import Particles
from cryopick.picker import ModelState, Picker, TrainingData
from cryopick.tta import validate_size

#: ``checkpoint`` value naming the generic model shipped in this package.
BUILTIN = "builtin"
BUILTIN_FILE = "hydra-generic.h5"
#: ``checkpoint`` value asking for no pre-trained model: train trunk and head from the labels.
NONE = "none"
#: Name of the head that few-shot training adds.
FEW_SHOT = "few-shot"
#: What ``model file`` config records mark a file written by ``cryopick hydra train``.
MODEL_KIND = "cryopick-hydra/model"
#: Few-shot cut-off: this quantile of the labelled particles' scores (``HydraConfig.cut_quantile``).
CUT_QUANTILE = 0.1
#: The labels' correlation norm is taken at its maximum within this fraction of the diameter of each label.
CORRELATION_SEARCH = 0.35
#: Zero-shot picks fewer than this many at the cut-off make no template (``HydraConfig.self_template``).
SELF_TEMPLATE_MIN = 5


def builtin_model():
    """Path of the generic model shipped with cryopick-hydra (``cryopick_hydra/pretrained/hydra-generic.h5``).
    A :class:`~cryopick.errors.ConfigError` when this installation has none."""
    from importlib import resources

    path = resources.files("cryopick_hydra") / "pretrained" / BUILTIN_FILE
    if not path.is_file():
        raise ConfigError(
            "hydra: no generic model is installed with cryopick-hydra (" + str(path) + " is missing), so there is "
            "nothing to pick with; pass --set checkpoint=FILE with a model trained by 'cryopick hydra train', "
            "or train one with 'cryopick hydra train' (or --set checkpoint=none with --labels to train from "
            "your labels alone)")
    return path


@attrs.define
class HydraConfig:
    """Settings of the ``hydra`` picker; defaults are the thesis's (§3.1, §4.3)."""

    #: The multi-data-set model: ``builtin`` (shipped with cryopick-hydra), a file from ``cryopick hydra
    #: train``, or ``none`` (no model: train trunk and head on the labelled micrographs).
    checkpoint: str = BUILTIN
    #: Head used for zero-shot picking: ``generic`` or the name of one of the model's data-set heads.
    head: str = "generic"
    #: Multi-data-set training (``cryopick hydra train``) downsamples micrographs so particles are about this
    #: wide (§4.1: 20-24 px; the shipped model was trained at 22).
    target_diameter_px: float = 22.0
    #: Picking (zero-shot, and the few-shot head, trained at the size it picks at) downsamples so particles are
    #: about this wide; None = ``target_diameter_px``. 25: the shipped model ranks particles best there on the
    #: independent sets (zero-shot AP, 22 -> 25: ribosome 0.600 -> 0.633, TRPV1 0.303 -> 0.336, ASPIRE 0.005
    #: 0.641 -> 0.647, ASPIRE 0.01 0.869 -> 0.897, apoferritin 0.050 -> 0.034; our simulator's held-out
    #: species fall: dumbbell 0.115 -> 0.103, C7 ring 0.236 -> 0.170; docs/benchmarks.md).
    pick_diameter_px: float | None = 25.0

    # Network (only used with checkpoint=none; a model file brings its own architecture).
    trunk_channels: int = 64
    trunk_groups: int = 32
    blocks: int = 3
    head_widths: tuple[int, ...] = (128, 256, 512, 1024)
    head_groups: int = 32
    dropout: float = 0.3
    #: Initial particle probability of every anchor (the logit bias, §3.1).
    prior: float = 0.02

    # Loss (eq. 3.1-3.4).
    alpha: float = 0.25
    gamma: float = 2.0
    #: Anchors matched to a particle at IoU above this (plus each particle's best anchor).
    iou: float = 0.6
    lambda_cls: float = 1.0
    #: Weight of the bias loss (eq. 3.4) that keeps the few-shot head near the generic one.
    lambda_bias: float = 0.01

    # Training on the labels (few-shot head, or everything with checkpoint=none).
    #: Crop side (px, a multiple of 16) and crops per minibatch (§4.3: 368 and 4).
    crop: int = 368
    batch: int = 4
    steps: int = 500
    lr: float = 1e-4
    #: Random rotations and flips of the crops.
    augment: bool = True

    # Picking.
    #: NMS radius as a fraction of the particle diameter (0.5: the radius).
    nms_fraction: float = 0.5
    #: Tile side (px) and context margin (px) when scoring micrographs.
    tile: int = 512
    margin: int = 64
    #: Test-time augmentation: each cell's logit and decoded centre are the mean over this many
    #: rotations/mirrors of the micrograph (1, 2, 4 or 8; ``cryopick.tta``). 4 raised zero-shot AP of the
    #: shipped model on all seven benchmark sets (ribosome 0.596 -> 0.600, TRPV1 0.285 -> 0.303, ASPIRE
    #: 0.604 -> 0.641 and 0.848 -> 0.869, C7 ring 0.166 -> 0.236; docs/benchmarks.md) for 2.5-4x the
    #: scoring time; 1 = one pass.
    tta: int = attrs.field(default=4, validator=validate_size)
    #: Few-shot head: add this multiple of each candidate's correlation with a template of the labelled
    #: particles to its logit (cryopick's addition, as mae's ``correlation``). The template is the rotational
    #: average of the labels' crops, one diameter in radius; the term is its correlation in robust standard
    #: units of the candidate's own micrograph, capped at the median the labelled particles reach against the
    #: template of the others (``cryopick.recentre.correlation_norm``, ``correlation_score``). The frozen trunk's
    #: features cap what a new head learns from a few labels; the template is what those labels say about this
    #: sample's particles directly. 0: the head's logits alone (zero-shot picking never has the term). 2 x 25
    #: labels, seed 0, AP / F1 at the cut with 0 -> 0.5 -> 1: ribosome 0.697 / 0.778 -> 0.729 / 0.785 -> 0.736 /
    #: 0.785, ASPIRE SNR 0.005 0.833 / 0.573 -> 0.871 / 0.581 -> 0.871 / 0.589, TRPV1 0.332 / 0.108 -> 0.372 /
    #: 0.204 -> 0.374 / 0.216, apoferritin 0.088 / 0.062 -> 0.155 / 0.141 -> 0.165 / 0.146 (docs/benchmarks.md).
    correlation: float = attrs.field(default=1.0, validator=attrs.validators.ge(0.0))
    #: Few-shot head's cut-off: the lower of the ``cut_quantile`` quantile of the labelled particles' own scores
    #: (each label's best candidate within the NMS radius; the labels are a random sample of the particles, so it
    #: keeps about 1 - q of them, whatever their number) and the logit at which the head picks as many on the
    #: labelled micrographs as the generic head does at the model's cut-off (``_few_shot_cut``). 0: the matched
    #: count alone (the earlier default). 2 x 25 labels, seed 0, F1 at the cut, 0 -> 0.1: ASPIRE SNR 0.005
    #: 0.589 -> 0.824, TRPV1 0.216 -> 0.450, ribosome 0.785 -> 0.785, apoferritin 0.146 -> 0.214
    #: (docs/benchmarks.md).
    cut_quantile: float = attrs.field(default=CUT_QUANTILE, validator=[attrs.validators.ge(0.0),
                                                                       attrs.validators.lt(1.0)])
    #: Zero-shot: add this multiple of each candidate's correlation with a template of the micrograph's own best
    #: picks to its logit (cryopick's addition; no labels needed). The template is the rotational average of the
    #: ``self_template_top`` best fraction of the picks at the model's cut-off (one diameter in radius); the term is
    #: as the few-shot head's ``correlation`` (robust standard units of the micrograph, capped at the median the
    #: picks reach against the template of the others). The generic head decides which candidates look like
    #: particles; the template says which of them look like *this* micrograph's particles. Each micrograph keeps as
    #: many picks at the cut-off as the head alone gives it (its scores are shifted so; the ranking within it is
    #: the term's). AP, 0 -> 2 (docs/benchmarks.md): ASPIRE SNR 0.005 0.669 -> 0.830, ASPIRE SNR 0.01 0.882 -> 0.964,
    #: ribosome 0.667 -> 0.725, TRPV1 0.359 -> 0.391, apoferritin 0.037 -> 0.033. 0: the head's logits alone.
    self_template: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.0))
    #: Both template terms (few-shot ``correlation``, zero-shot ``self_template``) fall again above this multiple of
    #: their clip within a particle radius (``cryopick.recentre.capped_correlation``): a candidate that matches the
    #: template twice as well as the particles' median is on something brighter or larger than a particle (ice, an
    #: aggregate). Zero-shot AP, 0 -> 2: ASPIRE SNR 0.005 0.829 -> 0.830, SNR 0.01 0.958 -> 0.960, the real sets and
    #: simulated species unchanged (the generic head already ranks contaminants low; docs/benchmarks.md). 0: the
    #: plain clip.
    contaminant: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.0))
    #: Fraction of the picks at the cut-off (the best by logit) the zero-shot template is made of.
    self_template_top: float = attrs.field(default=0.5, validator=[attrs.validators.gt(0.0),
                                                                   attrs.validators.le(1.0)])


PRESETS: dict[str, dict] = {
    # The thesis's sizes (for a GPU).
    "paper": {},
    # Two CPU cores: smaller crops and a narrower network when training from scratch.
    "cpu": dict(crop=128, batch=8, steps=300, lr=3e-4, trunk_channels=32, trunk_groups=8,
                head_widths=(32, 64, 128, 256), head_groups=8),
    # For tests (cryopick's contract test): a tiny network trained from the labels for a few steps.
    "tiny": dict(checkpoint=NONE, crop=64, batch=2, steps=6, lr=1e-3, trunk_channels=8, trunk_groups=4, blocks=1,
                 head_widths=(8, 8, 16, 16), head_groups=4, tile=128, margin=32, tta=1),
}


class HydraPicker(Picker):
    """HydraPicker: zero-shot with the generic head, few-shot with a new data-set head."""

    Config = HydraConfig
    presets: ClassVar[dict[str, dict]] = PRESETS
    default_threshold = "fixed:0"
    trainable: ClassVar[bool] = True

    def __init__(self, config, context=None) -> None:
        super().__init__(config, context)
        self.net = None
        self.head = config.head
        self.info: dict = {}
        #: the labelled particles' template and the clip of its correlation term (``correlation``); None
        #: without labels, with correlation=0 or for models stored without them
        self._template: np.ndarray | None = None
        self._clip: float | None = None
        #: the cut-off the default threshold applies (zero-shot picking keeps each micrograph's count at it)
        self._cut = 0.0

    @property
    def needs_labels(self) -> bool:
        """Only ``checkpoint=none`` needs labels; otherwise no labels means zero-shot picking."""
        return self.config.checkpoint == NONE

    @property
    def demo_labels(self) -> int | None:
        """The built-in demo: zero-shot (no labels) with a model, all truth on a third of it without one."""
        return None if self.config.checkpoint == NONE else 0

    @classmethod
    def default_preset(cls, device: str) -> str | None:
        return "paper" if str(device).startswith("cuda") else "cpu"

    def _device(self) -> str:
        return self.context.device or "cpu"

    def preprocessing(self, diameter_px: float, pixel_size_a: float | None) -> list[tuple[str, dict]]:
        factor = max(1.0, diameter_px / self.scale_px())  # §4.1: particles about 20-24 px
        return [("downsample", {"factor": round(factor, 4)}), ("normalize", {})]

    def scale_px(self) -> float:
        """Particle diameter (px) micrographs are downsampled to for picking and few-shot training."""
        cfg = self.config
        return float(cfg.pick_diameter_px or cfg.target_diameter_px)

    # -- models ---------------------------------------------------------------------------------------
    def _architecture(self) -> dict:
        from cryopick_hydra.model import ARCHITECTURE_KEYS

        return {k: getattr(self.config, k) for k in ARCHITECTURE_KEYS}

    def checkpoint_state(self) -> ModelState:
        """The multi-data-set model named by ``checkpoint`` (shipped or a file)."""
        from cryopick.weights import load_weights

        path = builtin_model() if self.config.checkpoint == BUILTIN else self.config.checkpoint
        state = load_weights(path)
        if state.config.get("kind") != MODEL_KIND:
            raise ConfigError(f"checkpoint={path}: not a HydraPicker model (write one with 'cryopick hydra train')")
        return state

    def _losses(self):
        from cryopick_hydra.train import LossSettings

        cfg = self.config
        load = self.context.load
        return LossSettings(focal=load("loss", "hydra-focal")(alpha=cfg.alpha, gamma=cfg.gamma),
                            localisation=load("loss", "hydra-l1")(), bias=load("loss", "hydra-bias")(),
                            lambda_cls=cfg.lambda_cls, lambda_bias=cfg.lambda_bias, box_px=self.scale_px(),
                            iou=cfg.iou)

    def train(self, data: TrainingData) -> ModelState:
        from cryopick.progress import echo
        from cryopick.torchutil import seed_everything
        from cryopick_hydra.model import GENERIC, net_from_state
        from cryopick_hydra.train import Schedule, fit, make_dataset

        cfg = self.config
        seed_everything(self.context.seed)
        rng = np.random.default_rng(self.context.seed)
        labelled = [it for it in data.items if it.labels is not None and len(it.labels)]
        self._template, self._clip = None, None
        if cfg.checkpoint == NONE:
            if not labelled:
                raise ConfigError("hydra with checkpoint=none trains from labels: give --labels, or pick zero-shot "
                                  "with the shipped model (leave checkpoint unset) or --set checkpoint=FILE")
            net = self.context.load("backbone", "hydra")(**self._architecture())
            source = {"checkpoint": NONE}
        else:
            state = self.checkpoint_state()
            net = net_from_state(state.arrays, state.config["architecture"])
            source = {"checkpoint": str(cfg.checkpoint), "trained_on": state.config.get("trained_on"),
                      "threshold": state.config.get("threshold")}
        if not labelled:  # zero-shot: the model as it is
            if cfg.head not in net.head_names:
                raise ConfigError(f"head={cfg.head}: the model has heads {', '.join(net.head_names)}")
            self._use(net, cfg.head, source.get("threshold"))
            echo(f"hydra: zero-shot picking with the {cfg.head} head of {source['checkpoint']}")
            return self._state(net, cfg.head, source)

        if cfg.checkpoint == NONE:
            head, params, bias_heads = GENERIC, list(net.parameters()), None
        else:  # §4.7: a new head from the generic one; trunk and generic head frozen
            head = FEW_SHOT
            net.add_head(head, GENERIC)
            for p in net.parameters():
                p.requires_grad_(False)
            params = list(net.heads[head].parameters())
            for p in params:
                p.requires_grad_(True)
            bias_heads = [head]
        if bias_heads and cfg.correlation > 0:
            self._fit_correlation([(it.image, it.labels) for it in labelled], data.diameter_px)
        crop = _crop_size(cfg.crop, min(min(it.image.shape) for it in labelled))
        dataset = make_dataset("labels", [(it.image, it.labels) for it in labelled], data.diameter_px, crop, rng)
        schedule = Schedule(steps=cfg.steps, batch=cfg.batch, crop=crop, lr=cfg.lr, augment=cfg.augment)
        history = fit(net, [dataset], {"labels": head}, schedule, self._losses(), rng=rng, device=self._device(),
                      params=params, bias_heads=bias_heads, desc=f"hydra {head} head")
        if bias_heads:
            source["generic_threshold"] = source.get("threshold")
            source["threshold"] = self._few_shot_cut(net, [(it.image, it.labels) for it in labelled],
                                                     data.diameter_px, source.get("threshold"))
        self._use(net, head, source.get("threshold"))
        source["history"] = history[-1:] if history else []
        return self._state(net, head, {**source, "labelled_micrographs": [it.name for it in labelled],
                                       "labelled_particles": int(sum(len(it.labels) for it in labelled))})

    def _few_shot_cut(self, net, labelled: list[tuple[np.ndarray, Particles]], diameter_px: float,
                      generic_cut: float | None, few_shot: list[Particles] | None = None) -> float:
        """The few-shot head's cut-off: the more permissive (lower) of the labels' quantile cut
        (``_labels_cut``) and the count matched to the generic head (``_matched_cut``); ``cut_quantile`` 0:
        the matched cut alone. The labels' own scores run high (the head was trained on them), so the quantile
        cut alone keeps fewer than 1 - q where the head fits its labels well (EMPIAR-10028: 75% recall at
        q = 0.1), and the matched cut is as wrong as the generic head (ASPIRE SNR 0.005: 39 picks per
        micrograph for 90 true). F1 at the cut, 2 x 25 labels, matched -> this: ASPIRE 0.589 -> 0.824,
        TRPV1 0.216 -> 0.450, ribosome 0.785 -> 0.785, apoferritin 0.146 -> 0.214 (docs/benchmarks.md).
        ``few_shot``: the few-shot head's candidates on the labelled micrographs, if already scored."""
        from cryopick.progress import echo

        images = [im for im, _ in labelled]
        if few_shot is None:  # scored once for both cuts
            few_shot = [self._scored(net, im, FEW_SHOT, diameter_px) for im in images]
        q = self.config.cut_quantile
        matched = self._matched_cut(net, images, diameter_px, generic_cut, few_shot, say=q <= 0)
        if q <= 0:
            return matched
        quantile = self._labels_cut(net, labelled, diameter_px, few_shot, say=False)
        cut = matched if quantile is None else min(matched, quantile)
        labels = "no label near a candidate" if quantile is None else f"the labels' {q:g}-quantile {quantile:.3f}"
        echo(f"hydra: few-shot cut-off {cut:.3f}, the lower of the count matched to the generic head "
             f"({matched:.3f}) and {labels}")
        return cut

    def _scored(self, net, image: np.ndarray, head: str, diameter_px: float) -> Particles:
        """The candidates of ``head`` on ``image`` as the picker scores them (the few-shot head's with the
        correlation term)."""
        from cryopick_hydra.inference import pick_image

        cfg = self.config
        net.eval()
        cands = pick_image(net, image, head, diameter_px, nms_fraction=cfg.nms_fraction, tile=cfg.tile,
                           margin=cfg.margin, device=self._device(), tta=cfg.tta)
        return self._with_correlation(image, cands, diameter_px) if head == FEW_SHOT else cands

    def _labels_cut(self, net, labelled: list[tuple[np.ndarray, Particles]], diameter_px: float,
                    few_shot: list[Particles] | None = None, say: bool = True) -> float | None:
        """The ``cut_quantile`` quantile of the labelled particles' scores, each label's score the best
        candidate's within the NMS radius (the scores the picker picks with, the correlation term included;
        ``few_shot``: those candidates, already scored). Labels are a random sample of the particles, so the cut
        keeps about 1 - q of every micrograph's particles, up to the head's fit to its own labels. None without
        a label near any candidate."""
        from cryopick.progress import echo

        cfg = self.config
        if few_shot is None:
            few_shot = [self._scored(net, im, FEW_SHOT, diameter_px) for im, _ in labelled]
        scores = label_scores(few_shot, [labels for _, labels in labelled], cfg.nms_fraction * diameter_px)
        if not scores.size:
            return None
        cut = float(np.quantile(scores, cfg.cut_quantile)) - 1e-6  # the quantile's own label stays above
        if say:
            echo(f"hydra: few-shot cut-off {cut:.3f} (keeps {1 - cfg.cut_quantile:.0%} of the {scores.size} "
                 f"labelled particles found among the candidates)")
        return cut

    def _matched_cut(self, net, images: list[np.ndarray], diameter_px: float, generic_cut: float | None,
                     few_shot: list[Particles] | None = None, say: bool = True) -> float:
        """The few-shot head's cut-off: the logit at which it picks as many particles on the labelled
        micrographs as the generic head does at the model's cut-off (median over the micrographs;
        ``few_shot``: the few-shot head's candidates there, already scored).

        A few-shot head is trained with every unlabelled particle of its micrographs as background; with
        sparse labels (most particles unlabelled) its logits fall, and the generic head's cut-off keeps too
        few picks (EMPIAR-10028, 25 labels on each of 2 micrographs: F1 0.445 at the generic cut, 0.749 at
        this one, best 0.754; docs/benchmarks.md). The generic head's count is independent of how many
        particles were labelled."""
        from cryopick.progress import echo
        from cryopick_hydra.model import GENERIC

        cut = 0.0 if generic_cut is None else float(generic_cut)
        if few_shot is None:
            few_shot = [self._scored(net, im, FEW_SHOT, diameter_px) for im in images]
        cuts, counts = [], []
        for image, cands in zip(images, few_shot):
            n = int((self._scored(net, image, GENERIC, diameter_px).score > cut).sum())
            scores = np.sort(cands.score)[::-1]
            counts.append(n)
            if n and scores.size:
                cuts.append(float(scores[min(n, scores.size) - 1]))
        if not cuts:  # the generic head picks nothing here: keep its cut
            return cut
        matched = float(np.median(cuts)) - 1e-6  # the n-th pick itself stays above the cut
        if say:
            echo(f"hydra: few-shot cut-off {matched:.3f} (the generic head picks {np.median(counts):.0f} per "
                 f"labelled micrograph at {cut:.3f})")
        return matched

    def _fit_correlation(self, labelled: list[tuple[np.ndarray, Particles]], diameter_px: float) -> None:
        """The template of the labelled particles (``labelled``: ``(image, labels)`` per micrograph) and the
        clip of its correlation term: the median over all labels of each one's standardised correlation with the
        template of the other labels of its micrograph (leave-one-out, ``cryopick.recentre.correlation_norm``)."""
        from cryopick.recentre import labels_correlation

        self._template, self._clip = labels_correlation([(im, lab.xy) for im, lab in labelled], diameter_px,
                                                        CORRELATION_SEARCH * diameter_px)

    def _with_correlation(self, image: np.ndarray, candidates: Particles, diameter_px: float) -> Particles:
        """``candidates`` with ``correlation`` x the labels' capped template correlation added to their scores
        (unchanged without a template)."""
        from cryopick.nms import greedy_nms
        from cryopick.recentre import CONTAMINANT_REACH, correlation_map, correlation_score

        if self._template is None or self._clip is None or self.config.correlation <= 0 or not len(candidates):
            return candidates
        term = correlation_score(correlation_map(image, self._template), candidates.xy, self._clip,
                                 self.config.contaminant, CONTAMINANT_REACH * diameter_px)
        rescored = Particles(candidates.x, candidates.y, candidates.score + self.config.correlation * term)
        # candidates are already a particle radius apart: this only sorts them by the new score
        return greedy_nms(rescored, max(1.0, self.config.nms_fraction * diameter_px))

    def _use(self, net, head: str, threshold: float | None = None) -> None:
        self.net = net.to(self._device()).eval()
        self.head = head
        if threshold is not None:  # the model's validated cut-off (best F1 of its generic head)
            self.default_threshold = f"fixed:{threshold:.4g}"
            self._cut = float(self.default_threshold.split(":", 1)[1])

    def _state(self, net, head: str, info: dict) -> ModelState:
        from cryopick_hydra.model import GENERIC, net_arrays

        # only what picks: the trunk, the head used and (for a few-shot head) the generic one
        keep = {head, GENERIC} if head == FEW_SHOT else {head}
        arrays = {k: v for k, v in net_arrays(net).items() if k.startswith("trunk.") or k.split(".")[1] in keep}
        if self._template is not None and self._clip is not None:
            arrays["correlation_template"] = self._template.astype(np.float32)
            arrays["correlation_clip"] = np.asarray([self._clip], dtype=np.float64)
        self.info = dict(info)
        return ModelState(arrays, {"kind": "cryopick-hydra/picker", "architecture": dict(net.architecture),
                                   "head": head, "heads": sorted(keep), "picker": config_to_dict(self.config),
                                   "info": info})

    def load(self, state: ModelState) -> None:
        from cryopick_hydra.model import net_from_state

        if "architecture" not in state.config or "head" not in state.config:
            raise ConfigError("not a hydra picker model")
        net = net_from_state(state.arrays, state.config["architecture"], state.config.get("heads"))
        self.info = dict(state.config.get("info", {}))
        # models stored before the correlation term (or picked with correlation=0) score without it
        template, clip = state.arrays.get("correlation_template"), state.arrays.get("correlation_clip")
        use = template is not None and clip is not None and self.config.correlation > 0
        self._template = np.asarray(template, dtype=np.float32) if use else None
        self._clip = float(np.asarray(clip, dtype=np.float64).reshape(-1)[0]) if use else None
        self._use(net, state.config["head"], self.info.get("threshold"))

    def facts(self) -> dict:
        if not self.info:
            return {}
        facts = {"hydra head": self.head, "hydra model": self.info.get("checkpoint")}
        if "labelled_particles" in self.info:
            facts["hydra labelled particles"] = self.info["labelled_particles"]
        if self._template is not None:
            facts["hydra correlation"] = self.config.correlation
        return facts

    # -- picking --------------------------------------------------------------------------------------
    def score(self, image: np.ndarray, diameter_px: float) -> Particles:
        if self.net is None:
            raise RuntimeError("hydra picker has no model: train() or load() first")
        candidates = self._scored(self.net, image, self.head, diameter_px)
        if self.zero_shot:
            candidates = self._with_self_template(image, candidates, diameter_px)
        return candidates

    @property
    def zero_shot(self) -> bool:
        """Picking with a model as it came, no labels of this data set used (not few-shot, not from scratch)."""
        return self.head != FEW_SHOT and "labelled_particles" not in self.info

    def _with_self_template(self, image: np.ndarray, candidates: Particles, diameter_px: float) -> Particles:
        """Zero-shot ``candidates`` with ``self_template`` x their capped correlation with the template of the
        micrograph's own best picks added, shifted so that as many stay at or above the cut-off as before."""
        from cryopick.recentre import self_correlation

        cfg, cut = self.config, self._cut
        if cfg.self_template <= 0:
            return candidates
        term = self_correlation(image, candidates, cut, cfg.self_template_top, diameter_px,
                                CORRELATION_SEARCH * diameter_px, SELF_TEMPLATE_MIN, cfg.contaminant)
        if term is None:
            return candidates
        n_cut = int(np.sum(candidates.score >= cut))
        score = candidates.score + cfg.self_template * term
        # the head's count at the cut-off stays (its cut-off is what the model validated); the term re-ranks
        score += cut - np.sort(score)[::-1][n_cut - 1]
        return Particles(candidates.x, candidates.y, score)


def label_scores(candidates: list[Particles], labels: list[Particles], radius: float) -> np.ndarray:
    """Each label's score: the best of its micrograph's candidates within ``radius`` of it (``candidates`` and
    ``labels``: one entry per micrograph); labels without a candidate that near are left out."""
    scores = [np.zeros(0)]
    for cands, lab in zip(candidates, labels):
        if not len(cands) or not len(lab):
            continue
        d = np.hypot(cands.x[None, :] - lab.x[:, None], cands.y[None, :] - lab.y[:, None])
        best = np.where(d <= radius, cands.score[None, :], -np.inf).max(axis=1)
        scores.append(best[np.isfinite(best)])
    return np.concatenate(scores)


def _crop_size(crop: int, smallest_side: int) -> int:
    """``crop`` rounded down to a multiple of 16 px, no larger than the smallest micrograph (at least 32)."""
    from cryopick_hydra.anchors import CELL_PX

    side = min(int(crop), max(int(smallest_side), 2 * CELL_PX))
    return max(2 * CELL_PX, side // CELL_PX * CELL_PX)
