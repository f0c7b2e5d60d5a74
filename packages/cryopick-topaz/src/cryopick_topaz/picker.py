"""The ``topaz`` picker: a CNN trained from positive and unlabelled regions (Bepler et al. 2019).

Automatic defaults, so that nothing has to be guessed (the reference's ``-n``, radius and threshold are its
users' most frequent questions):

* **Downsampling**: micrographs are Fourier-cropped so particles are ``target_diameter_px`` (24) pixels
  wide, well inside the receptive field (71 px for resnet8), then GMM-normalised (``gmm`` preprocessor).
* **Positives**: every pixel within ``radius`` (3) pixels of a labelled centre, in the downsampled frame.
  All other pixels are unlabelled, not negative.
* **pi**: particles per micrograph x the 2-D disk pixel count of ``radius`` (29 for 3) / pixels per
  micrograph. The count is what Topaz users must guess (``-n``); here it is estimated from the data:
  half of each micrograph's labels are held out, a short pilot (``pilot_fraction`` of the epochs) trains
  on the rest, and the held-out labels' scores tell what fraction of all particles the pilot ranks above
  each cut (a mixture-proportion estimate, ``cryopick_topaz.prior``); a second pilot swaps the halves
  (``count_folds``). Right for sparse labels and for complete ones. ``--particles-per-micrograph N`` (or
  ``--set expected_particles=N``) gives it instead.
* **NMS**: greedy over every pixel, as the reference extracts, with a disk of ``nms_fraction`` x the particle
  diameter (0.5: the particle radius, paper §9); candidates that are no local maximum (shoulders of a brighter
  neighbour) rank after all that are (``nms=tiered``; ``nms=greedy`` keeps the reference's order).
* **Test-time augmentation**: the score map is the mean over the micrograph's four 90-degree rotations
  (``tta``; the network is trained on rotated crops but is not exactly invariant). ``tta=1`` scores once.
* **Threshold**: candidates carry per-pixel logits (log-likelihood ratios). The reference extracts at
  -6 and leaves the cut to the user, which keeps far too many candidates. Here training sets the logit
  cut-off that yields the particle count per micrograph on micrographs the model did not train on (up to
  ``calibration_micrographs`` unlabelled ones; the training micrographs only when there are none). It is
  stored with the model and becomes the picker's default ``fixed:CUT`` threshold (0, posterior 0.5, before
  training). ``--threshold`` takes any core thresholder instead (for example ``fixed:-2`` for more recall).
* **All labels train**: every labelled micrograph is used for training, as in the reference. Whole
  micrographs are held out for best-epoch selection only with ``validation_fraction > 0``.
* **Models trained with topaz-em**: ``--set checkpoint=model.sav`` picks with one instead of training (no
  labels needed), and ``cryopick import-model topaz model.sav`` stores one in the project for ``cryopick
  pick --model ID``; the file is read with a restricted unpickler (``cryopick_topaz.import_model``).
  Downsample as the model was trained: ``target_diameter_px`` = particle diameter / topaz's ``-s`` factor.
* **Weight averaging**: the network kept is the mean of its weights over the last half of training
  (``average_fraction``, SWA), which removes most of the training noise that moved AP by 0.15 between
  training seeds on crowded TRPV1; ``average_fraction=0`` keeps the last weights, as the reference does.
* **Defaults are the reference's** on every device (resnet8, 32 units, 4 epochs of 250 minibatches of 256
  crops, as topaz-em is run in BENCHMARKING.md). ``--set preset=fast`` is a smaller, faster model, opt-in.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import attrs
import numpy as np

from cryopick.config import config_to_dict
from cryopick.nms import extract_peaks
from cryopick.particles import Particles
from cryopick.picker import ModelState, Picker, TrainingData
from cryopick.progress import echo, progress
from cryopick.torchutil import autocast, channels_last, contiguous, training_precision
from cryopick.tta import validate_size

_RANDOM_START = (None, "", "none", "random")  # init values that mean random weights


def _train_forward(model, x):
    """Features and flat logits of a minibatch (module level: compiled once for every network of a run)."""
    z = model.extract(x)
    return z, model.classifier(z).flatten()


#: Minibatches from which ``compile="auto"`` compiles the training step.
COMPILE_MIN_STEPS = 500
DEFAULT_TTA = 4  # rotations averaged when scoring (TopazConfig.tta)
SCORED_CACHE = 16  # micrographs whose candidates a picker remembers (TopazPicker.score)


@attrs.define
class TopazConfig:
    #: Network: any registered backbone (cryopick plugins); topaz's own are resnet8, resnet16, conv31, conv63
    #: and conv127 (paper: resnet8). Built with ``units=`` (see docs/hooks.md for what topaz needs of it).
    backbone: str = attrs.field(default="resnet8", metadata={"component": "backbone"})
    #: Width of the first layer (32 or 64 in the reference; later layers are 2x and 4x wider).
    units: int = 32
    #: Downsample micrographs so particles are about this many pixels wide.
    target_diameter_px: float = 24.0
    #: Pixels within this radius (downsampled pixels) of a labelled centre are positives.
    radius: float = 3.0
    #: Radius of the per-particle positive area behind pi (downsampled pixels); None = ``radius``, the 2-D
    #: disk the labels mark (the paper's pi). topaz-em's pi counts a 3-D ball of ``radius`` (203 pixels at
    #: 3, the area of a disk of radius 8: 7x the disk). The count estimate's pilots always use ``radius``,
    #: and the default threshold still takes the particle count as the number of picks.
    prior_radius: float | None = attrs.field(default=None)
    #: Objective: any registered loss with ``inputs="pu-logits"``; topaz's own are ge-binomial (paper), ge-kl,
    #: nnpu and pn.
    loss: str = attrs.field(default="ge-binomial", metadata={"component": "loss", "inputs": "pu-logits"})
    #: Weight (lambda) of the GE term; None = the paper's 1 for ge-binomial, 10 for ge-kl.
    slack: float | None = None
    #: Particles per micrograph for pi; None = estimated from held-out labels (cryopick_topaz.prior).
    expected_particles: float | None = None
    #: Fraction of each micrograph's labels held out to estimate the particle count.
    holdout_fraction: float = 0.5
    #: Epochs of the pilot that estimates the count, as a fraction of ``epochs``.
    pilot_fraction: float = 0.25
    #: Pilots for the count: 2 = cross-fitted (the second trains on the held-out half and holds out the
    #: first, so every label is held out once; the estimate's spread falls by a quarter), 1 = one pilot.
    count_folds: int = attrs.field(default=2)
    #: Unlabelled micrographs scored to set the default threshold (the cut giving the particle count).
    calibration_micrographs: int = 3
    #: Autoencoder reconstruction weight gamma; 0 = off (the reference's default); None = the paper's rule,
    #: 10/N for N <= 250 labelled particles, else off (Fig. 5b). Off by default: on the ribosome protocol
    #: run (25 labels on each of 2 micrographs) 10/N gave AP 0.666 and 0 gave 0.739 (docs/benchmarks.md).
    autoencoder: float | None = 0.0
    #: Adam learning rate.
    learning_rate: float = 2e-4
    #: L2 weight decay of Adam.
    weight_decay: float = 0.0
    #: Crops per minibatch.
    minibatch: int = 256
    #: Fraction of each minibatch that is positive crops.
    balance: float = 0.0625
    #: Minibatch updates per epoch (the reference run of BENCHMARKING.md; the paper trains 10 x 1000).
    epoch_size: int = 250
    #: Epochs (the last is kept, or the best by validation AP when validation_fraction > 0).
    epochs: int = 4
    #: Random rotations (0-360) and flips of training crops.
    augment: bool = True
    #: Weight averaging (stochastic weight averaging, Izmailov et al. 2018): the network kept is the mean of
    #: its weights after each of the last ``average_fraction`` of the minibatch updates, with the BatchNorm
    #: statistics recomputed for the mean weights; 0 = the last update's weights (the reference). The count
    #: pilots keep their last weights. Not with validation_fraction > 0 (best-epoch selection keeps one epoch's
    #: weights).
    #: The same training scored both ways (2 x 25 labels, count given): AP TRPV1 0.482 -> 0.558 and
    #: 0.435 -> 0.568 (two training seeds), apoferritin 0.404 -> 0.424, ribosome 0.756 -> 0.760.
    average_fraction: float = attrs.field(default=0.5)
    #: Minibatches of training crops that recompute the BatchNorm statistics of averaged weights.
    average_bn_batches: int = 16
    #: Also draw unlabelled crops from the micrographs without labels (the paper's PU setting draws them from
    #: all micrographs); pi is then the positive fraction over all of them.
    use_unlabelled: bool = False
    #: Fraction of labelled micrographs held out for best-epoch selection (when there are >= 2); 0 = none:
    #: every labelled micrograph trains.
    validation_fraction: float = 0.0
    #: NMS disk radius as a fraction of the particle diameter.
    nms_fraction: float = 0.5
    #: Candidate extraction (``cryopick.nms.extract_peaks``): "tiered" = the reference's greedy NMS over every
    #: pixel (a particle on a brighter neighbour's shoulder still gets a candidate), with those shoulders ranked
    #: after every local maximum; "greedy" = the reference's order (a shoulder ranked by its own logit);
    #: "local-max" = only the maxima of their disk (on crowded EMPIAR-10059 55 % of the particles: AP 0.39 vs
    #: 0.48). Tiered >= greedy on all four protocol sets with the same networks (TRPV1 AP 0.485 vs 0.477, F1 at
    #: the calibrated cut 0.541 vs 0.528; ribosome, apoferritin equal; ASPIRE 0.865 vs 0.863).
    nms: Literal["tiered", "greedy", "local-max"] = "tiered"
    #: Test-time augmentation: the score map is the mean over this many rotations/mirrors of the micrograph
    #: (1, 2, 4 or 8; ``cryopick.tta``). The network is trained on rotated crops but is not exactly rotation
    #: invariant; averaging the four 90-degree rotations raised AP with the same networks on every protocol set
    #: (docs/benchmarks.md). 1 = the reference's single pass (4x cheaper scoring). None = 4 for a model trained
    #: now or a topaz-em ``checkpoint``; a stored model scores as its default threshold was calibrated (1 for
    #: models trained before this setting existed).
    tta: int | None = attrs.field(default=None, validator=validate_size)
    #: Ignore candidates closer than this fraction of the particle radius to the edge.
    border_fraction: float = 0.0
    #: Normalisation after downsampling: gmm (paper) or affine.
    normalization: Literal["gmm", "affine"] = "gmm"
    #: Compile the training step (``torch.compile``, channels-last; cryopick.torchutil.CompiledStep): "auto" =
    #: on CPU for runs of at least 500 minibatches (the default schedule: the same network and numbers to
    #: float rounding, about 2x faster per minibatch on 1-2 cores; compiling costs 15-60 s once per process),
    #: "on", or "off" (eager). Falls back to eager when compiling is not possible here.
    compile: Literal["auto", "on", "off"] = "auto"
    #: Arithmetic of the training forward (cryopick.torchutil.training_precision): "auto" = bfloat16 autocast
    #: on a CPU with bfloat16 hardware (AVX512-BF16/AMX: convolutions in bfloat16, weights, loss, optimiser and
    #: BatchNorm statistics in float32; 1.6x faster per minibatch, the same AP on the protocol sets,
    #: docs/benchmarks.md), float32 elsewhere; "float32"; "bfloat16". Scoring is always float32.
    precision: Literal["auto", "float32", "bfloat16"] = "auto"
    #: Output tile size (pixels) and tiles per batch when scoring whole micrographs.
    tile: int = 512
    tile_batch: int = 2
    #: Weights the network starts from before training (topaz-em starts from its bundled pretrained detectors
    #: unless --no-pretrained): None, "none" or "random" = random initialisation ("random" also silences the
    #: hint printed when topaz-em is installed); "topaz-em" = the detector topaz-em
    #: would start from (``<backbone>_u<units>.sav`` of an installed topaz-em, found without importing it);
    #: a topaz-em model file (.sav: its own layers are rebuilt and trained further, its classifier bias kept
    #: as topaz-em keeps it); or a cryopick weights file (.h5) of a topaz network, such as one written by
    #: ``recipes/pretrain_init.py``. topaz-em's resnet8_u32 with 2 x 25 labels: AP ribosome 0.774 -> 0.814,
    #: ASPIRE 0.863 -> 0.899, TRPV1 0.409 -> 0.469, apoferritin level (0.404 / 0.369 -> 0.360 / 0.374 over
    #: two training seeds; docs/benchmarks.md); it is
    #: GPL and not shipped, so the default is a random start, and a run with topaz-em installed says so; the
    #: recipe's network is not yet a better start than random (TRPV1 0.18).
    init: str | None = None
    #: A model trained with topaz-em (its .sav, whole model or state dict) to pick with instead of training;
    #: read with a restricted unpickler, never executed. backbone, units and the training settings are then
    #: not used.
    checkpoint: str | None = None

    @count_folds.validator
    def _one_or_two(self, attribute, value):
        if value not in (1, 2):
            raise ValueError(f"count_folds={value}: 1 (one pilot) or 2 (cross-fitted pilots)")

    @average_fraction.validator
    def _fraction(self, attribute, value):
        if not 0 <= value <= 1:
            raise ValueError(f"average_fraction={value}: a fraction of the training updates, 0 to 1 (0 = off)")

    @prior_radius.validator
    def _positive_or_none(self, attribute, value):
        if value is not None and not value > 0:
            raise ValueError(f"prior_radius={value}: a radius in downsampled pixels (> 0), or none for radius")


PRESETS: dict[str, dict] = {
    # The paper's schedule (10 epochs of 1000 minibatches); the defaults are topaz-em's as its users run it.
    "paper": {"epochs": 10, "epoch_size": 1000, "autoencoder": None},
    # Opt-in, not the default: about 15x cheaper training (8 units, 5 x 60 steps of 128) and less accurate.
    "fast": {"units": 8, "minibatch": 128, "epoch_size": 60, "epochs": 5, "learning_rate": 1e-3,
             "balance": 0.125, "autoencoder": 0.0, "tta": 1},
    # For tests: a tiny conv31 trained for a few steps.
    "tiny": {"backbone": "conv31", "units": 8, "minibatch": 64, "epoch_size": 30, "epochs": 2,
             "learning_rate": 2e-3, "balance": 0.125, "autoencoder": 0.0, "tile": 256, "tta": 1},
}


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """``sum_k Pr(k) (Re(k) - Re(k-1))`` over regions ranked by score (paper §8)."""
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        return float("nan")
    order = np.argsort(-np.asarray(scores), kind="stable")
    hits = labels[order]
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, hits.size + 1)
    return float(np.sum(precision[hits]) / hits.sum())


class TopazPicker(Picker):
    """Topaz: positive-unlabelled CNN picker (see the module docs for the automatic defaults)."""

    Config = TopazConfig
    presets = PRESETS
    default_threshold = "fixed:0"
    trainable = True
    count_setting = "expected_particles"

    @property
    def needs_labels(self) -> bool:
        """A topaz-em ``checkpoint`` needs no labels (nothing is trained)."""
        return not self.config.checkpoint

    def __init__(self, config, context=None):
        super().__init__(config, context)
        self.model = None
        self._scorer = None  # (model, its inference_copy): made once per trained or loaded model
        self.info: dict = {}
        self._init_spec: dict | None = None  # layer list of a topaz-em ``init`` network
        self._init_file: str | None = None  # the file ``init`` named (init=topaz-em: the one found)
        self._step = None  # the compiled training step, shared by the count pilots and the final network
        # Candidates already scored by the current model, by (pixels, diameter, nms, tta): the threshold's
        # calibration scores the unlabelled micrographs, and the pick stage then asks for the same ones.
        self._scored: tuple[object, dict] = (None, {})

    # -- preprocessing --------------------------------------------------------------------------------
    def preprocessing(self, diameter_px: float, pixel_size_a: float | None) -> list[tuple[str, dict]]:
        factor = max(1.0, diameter_px / self.config.target_diameter_px)
        norm = ("gmm", {}) if self.config.normalization == "gmm" else ("normalize", {})
        return [("downsample", {"factor": round(factor, 4)}), norm]

    # -- model ----------------------------------------------------------------------------------------
    def _build(self):
        """The backbone, built through the plugin registry (so another distribution's backbone works)."""
        from cryopick.errors import ConfigError

        model = self.context.load("backbone", self.config.backbone)(units=self.config.units)
        missing = [a for a in ("receptive_field", "latent_dim", "extract", "classifier") if not hasattr(model, a)]
        if missing:
            raise ConfigError(f"--set backbone={self.config.backbone}: not a topaz-style backbone (it lacks "
                              f"{', '.join(missing)}; see docs/hooks.md, cryopick_register_backbones)")
        return model

    def _initial_model(self):
        """The network training starts from: ``_build()`` at random, or with the weights of ``init``."""
        from pathlib import Path

        from cryopick.errors import ConfigError, InputError
        from cryopick.torchutil import load_arrays

        cfg = self.config
        if cfg.init in _RANDOM_START:
            return self._build()
        if cfg.init == "topaz-em":  # the detector topaz-em's own training would start from
            from cryopick_topaz.import_model import find_topaz_em_detector

            try:
                path = find_topaz_em_detector(cfg.backbone, cfg.units)
            except InputError as exc:
                raise ConfigError(f"--set init=topaz-em: {exc} (topaz-em has resnet8 and resnet16 with 32 or 64 "
                                  "units: set backbone= and units= to match, or init=none)") from None
        else:
            path = Path(cfg.init).expanduser()
        if not path.is_file():
            raise ConfigError(f"--set init={cfg.init}: no such file (a topaz-em .sav, a cryopick weights .h5, "
                              "or 'none')")
        self._init_file = str(path.resolve())
        if path.suffix == ".sav":
            from cryopick_topaz.import_model import read_topaz_model
            from cryopick_topaz.models import from_spec

            spec, arrays = read_topaz_model(path)
            model = from_spec(spec)
            load_arrays(model, arrays)
            self._init_spec = spec
            echo(f"topaz: training starts from the topaz-em network {path.name} ({spec['name']})")
            return model.train()
        from cryopick.weights import load_weights

        state = load_weights(path)
        made = state.config.get("config", {})
        if state.config.get("picker") != "topaz" or "architecture" in state.config:
            raise ConfigError(f"--set init={path}: not a weights file of a cryopick topaz network (its config "
                              f"says picker={state.config.get('picker')!r}); use a .sav for topaz-em models")
        if (made.get("backbone"), made.get("units")) != (cfg.backbone, cfg.units):
            raise ConfigError(f"--set init={path}: the file holds {made.get('backbone')} with {made.get('units')} "
                              f"units, but this run builds {cfg.backbone} with {cfg.units}; set backbone= and "
                              "units= to match, or init=none")
        model = self._build()
        try:
            load_arrays(model, state.arrays)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise ConfigError(f"--set init={path}: its arrays do not fit {cfg.backbone} ({exc})") from None
        echo(f"topaz: training starts from {path.name}")
        return model.train()

    def _pretrained_hint(self) -> str | None:
        """A line for users who have topaz-em but left ``init`` unset: its detector is a better start than random
        weights on three of the four protocol sets, and cryopick cannot ship it (GPL). None otherwise."""
        from cryopick.errors import InputError
        from cryopick_topaz.import_model import find_topaz_em_detector

        if self.config.init is not None:  # set, to "random" or a file: the user chose
            return None
        try:
            path = find_topaz_em_detector(self.config.backbone, self.config.units)
        except InputError:
            return None
        return (f"topaz: training from random weights; topaz-em is installed ({path.name} at {path.parent}): "
                "--set init=topaz-em starts from its pretrained detector, as topaz-em does (with 2 x 25 labels "
                "AP +0.04 to +0.06 on three of four benchmark sets, level on the fourth: docs/benchmarks.md); "
                "--set init=random hides this line")

    def _loss(self):
        """The loss, built through the plugin registry; ``slack`` goes to losses that take it (the GE ones)."""
        import inspect

        factory = self.context.load("loss", self.config.loss)
        try:
            takes_slack = "slack" in inspect.signature(factory).parameters
        except (TypeError, ValueError):
            takes_slack = False
        return factory(slack=self.config.slack) if takes_slack and self.config.slack is not None else factory()

    def _device(self) -> str:
        return self.context.device or "cpu"

    def train(self, data: TrainingData) -> ModelState:
        from cryopick.torchutil import seed_everything, state_dict_to_arrays

        cfg = self.config
        if cfg.checkpoint:
            return self._import_checkpoint(cfg.checkpoint)
        seed_everything(self.context.seed)
        rng = np.random.default_rng(self.context.seed)
        self.info = {}  # a model loaded before does not decide how this one scores (_tta)

        labelled = [it for it in data.items if it.labels is not None and len(it.labels)]
        if not labelled:
            raise ValueError("topaz needs at least one labelled particle to train")
        n_labels = sum(len(it.labels) for it in labelled)
        hint = self._pretrained_hint()
        if hint:
            echo(hint)

        # Every labelled micrograph trains (the reference does too); whole micrographs are held out for
        # best-epoch selection only when validation_fraction > 0 asks for it (they cost the user's labels).
        val_items = []
        if len(labelled) >= 2 and cfg.validation_fraction > 0:
            n_val = max(1, int(round(cfg.validation_fraction * len(labelled))))
            order = rng.permutation(len(labelled))
            val_items = [labelled[i] for i in sorted(order[:n_val])]
            train_items = [labelled[i] for i in sorted(order[n_val:])]
        else:
            train_items = labelled
        extra = [it for it in data.unlabelled if it.image is not None] if cfg.use_unlabelled else []

        # The particle count behind pi: given (--particles-per-micrograph or expected_particles), else
        # estimated with held-out labels and a pilot model (cryopick_topaz.prior).
        given = cfg.expected_particles  # --particles-per-micrograph sets it (count_setting)
        estimate = None
        if given is not None:
            expected, source = float(given), "given"
        else:
            estimate = self._estimate_count(train_items, extra, data.diameter_px, rng)
            if estimate is not None:
                expected, source = estimate.particles_per_micrograph, "estimated"
            else:
                expected = sum(len(it.labels) for it in train_items) / len(train_items)
                source = "labelled (too few labels to estimate)"
        echo(f"topaz: {expected:.1f} particles per micrograph ({source})")

        gamma = cfg.autoencoder
        if gamma is None:
            gamma = 10.0 / n_labels if n_labels <= 250 else 0.0  # paper Fig. 5b: gamma = 10/N
        prior_radius = cfg.radius if cfg.prior_radius is None else cfg.prior_radius
        fit = self._fit([it.image for it in train_items], [it.labels for it in train_items], extra, expected,
                        gamma, cfg.epochs, rng, val_items, "topaz train", prior_radius=prior_radius)
        model = fit["model"]
        self.model = model
        # The default cut-off: ``expected`` picks per micrograph, on micrographs the model did not train on
        # when there are any (the held-out or unlabelled ones), else on the training micrographs.
        unseen = val_items or [it for it in data.unlabelled if it.image is not None][: cfg.calibration_micrographs]
        cutoff = self._calibrate(unseen or train_items, data.diameter_px, expected)
        self.default_threshold = f"fixed:{cutoff:.4g}"
        self.info = {"threshold": cutoff, "threshold_micrographs": [it.name for it in (unseen or train_items)],
                     "tta": self._tta(),  # the score maps the threshold was calibrated on
                     "pi": fit["pi"], "pi_unlabelled": fit["pi_u"], "prior_radius": prior_radius,
                     "expected_particles": expected,
                     "expected_particles_source": source, "autoencoder": gamma,
                     "best_epoch": fit["best_epoch"], "history": fit["history"], "receptive_field": model.receptive_field,
                     "averaged_updates": fit["averaged_updates"], "precision": fit["precision"],
                     "train_micrographs": [it.name for it in train_items],
                     "unlabelled_micrographs": [it.name for it in extra],
                     "validation_micrographs": [it.name for it in val_items]}
        if estimate is not None:
            self.info["count_estimate"] = attrs.asdict(estimate)
        if self._init_file is not None:
            self.info["init_file"] = self._init_file
        config = {"picker": "topaz", "config": config_to_dict(cfg), "training": self.info}
        if self._init_spec is not None:  # a topaz-em network trained further: load() rebuilds its layers
            config["architecture"] = self._init_spec
        return ModelState(arrays=state_dict_to_arrays(model), config=config)

    def _estimate_count(self, items, extra, diameter_px: float, rng):
        """Particles per micrograph from pilots trained on part of the labels (``cryopick_topaz.prior``)."""
        from cryopick_topaz.prior import cross_fit, estimate_count, split_labels

        cfg = self.config
        first, second = split_labels([it.labels for it in items], cfg.holdout_fraction, rng)
        if sum(len(h) for h in second) < 4:
            return None
        folds = [(first, second), (second, first)][: cfg.count_folds]
        epochs = max(1, int(round(cfg.pilot_fraction * cfg.epochs)))
        estimates = []
        for k, (train, held) in enumerate(folds):
            guess = sum(len(t) for t in train) / len(items)  # a lower bound: the pilot's pi
            title = "topaz count" + (f" {k + 1}/{len(folds)}" if len(folds) > 1 else "")
            # The pilots keep their last weights: the estimator's quantiles were chosen on such pilots, and
            # averaged pilots rank the held-out labels higher, which lowered the estimates (TRPV1 382-782
            # for 666, ribosome 73 for 82.5).
            fit = self._fit([it.image for it in items], train, extra, guess, 0.0, epochs, rng, [], title,
                            prior_radius=cfg.radius, average_fraction=0.0)
            self.model = fit["model"]
            # The pilot's distinct peaks, whatever ``nms`` extracts: the greedy cover's extra candidates on the
            # shoulders of labelled particles would count as more particles (TRPV1: 988 estimated for 666).
            # One pass (tta=1): the estimator's quantiles were chosen on single-pass maps, and it is cheaper.
            cands = [self.score(it.image, diameter_px, nms="local-max", tta=1) for it in items]
            self.model = None
            est = estimate_count(cands, train, held, radius=diameter_px / 2)
            if est is not None:
                estimates.append(est)
        if not estimates:
            return None
        est = cross_fit(estimates)
        echo(f"topaz: count estimate from {est.held_out} held-out labels"
             f"{f' ({est.folds} folds)' if est.folds > 1 else ''}: {est.particles_per_micrograph:.1f} per micrograph")
        return est

    def _fit(self, images, labels, extra, expected: float, gamma: float, epochs: int, rng, val_items, title: str,
             prior_radius: float, average_fraction: float | None = None):
        """PU training of a fresh network on ``images`` with positive ``labels`` (Online Methods §4-5); pi
        counts a disk of ``prior_radius`` per expected particle. ``average_fraction``: None = the config's."""
        import torch

        from cryopick_topaz.losses import reconstruction_error
        from cryopick_topaz.models import Decoder
        from cryopick_topaz.sampling import CropSampler, augment, class_prior, positive_mask, unlabelled_prior

        cfg = self.config
        device = self._device()
        gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        model = self._initial_model().to(device)
        rf = model.receptive_field
        crop = int(math.ceil(rf * math.sqrt(2))) | 1 if cfg.augment else rf

        masks = [positive_mask(im.shape, lab, cfg.radius) for im, lab in zip(images, labels, strict=True)]
        images = list(images)
        # Micrographs without labels: unlabelled crops only (an all-false mask: no positives drawn there).
        masks += [np.zeros(it.image.shape, dtype=bool) for it in extra]
        images += [it.image for it in extra]
        sampler = CropSampler(images, masks, crop, rng)
        pixels = float(np.mean([im.size for im in images]))
        n_labelled = len(labels)
        # pi over all sampled micrographs: the labelled ones hold ``expected`` particles each; so, we assume,
        # do the unlabelled ones drawn with use_unlabelled.
        pi = class_prior(expected * (n_labelled + len(extra)) / len(images), prior_radius, pixels)
        observed = float(sum(m.sum() for m in masks)) / float(sum(m.size for m in masks))
        pi_u = unlabelled_prior(pi, observed)

        if cfg.init in _RANDOM_START:
            with torch.no_grad():  # start at the prior: logit(pi) on every crop, so early GE terms are small
                model.classifier.bias.fill_(math.log(pi / (1 - pi)))
        # A pretrained start keeps its own bias, as topaz-em's fine-tuning does: its logits are calibrated to
        # its features, and resetting the bias to logit(pi) would shift every score by the difference.
        loss_fn = self._loss()
        # A loss states the prior it takes: the positive fraction of the unlabelled crops (GE, nnPU), or the
        # class prior itself (PN weights positives by pi; pi_u would fall to its floor with complete labels).
        prior = pi if getattr(loss_fn, "prior", "unlabelled") == "total" else pi_u
        decoder = Decoder(model.latent_dim, rf).to(device) if gamma > 0 else None
        params = list(model.parameters()) + (list(decoder.parameters()) if decoder is not None else [])
        opt = torch.optim.Adam(params, lr=cfg.learning_rate, weight_decay=cfg.weight_decay)

        n_pos = max(1, int(round(cfg.balance * cfg.minibatch)))
        n_unl = max(1, cfg.minibatch - n_pos)
        val = self._validation_set(model, val_items, rng) if val_items else None
        forward = self._training_step(device)
        if forward.enabled:
            model = channels_last(model)
        amp = training_precision(cfg.precision, device)

        def minibatch():
            batch = np.concatenate([sampler.positives(n_pos), sampler.unlabelled(n_unl)])
            x = augment(torch.from_numpy(batch)[:, None], rf, gen, rotate=cfg.augment).to(device)
            return channels_last(x) if forward.enabled else x

        # Weight averaging (SWA) over the last ``average_fraction`` of the updates; not with best-epoch selection.
        n_updates = epochs * cfg.epoch_size
        if average_fraction is None:
            average_fraction = cfg.average_fraction
        n_avg = 0 if val is not None else int(round(average_fraction * n_updates))
        mean_weights, n_averaged, update = None, 0, 0

        history: list[dict] = []
        best_ap, best_state, best_epoch = -np.inf, None, epochs
        for epoch in range(epochs):
            model.train()
            if decoder is not None:
                decoder.train()
            total = 0.0
            steps = range(cfg.epoch_size)
            if self.context.progress:
                steps = progress(steps, f"{title} epoch {epoch + 1}/{epochs}", total=cfg.epoch_size)
            for _ in steps:
                x = minibatch()
                with autocast(device, amp):
                    z, logits = forward(model, x)
                    recon = decoder(z) if decoder is not None else None
                loss = loss_fn(logits[:n_pos].float(), logits[n_pos:].float(), prior)
                if decoder is not None:
                    # Autoencoder regulariser, Online Methods §5: gamma E_{x~D} ||x - d(f(x))||^2, summed over
                    # the crop's pixels (a mean over pixels would divide gamma by ~5000).
                    loss = loss + gamma * reconstruction_error(recon.float(), x)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                total += float(loss.detach())
                update += 1
                if n_avg and update > n_updates - n_avg:
                    with torch.no_grad():  # running mean of the weights after each averaged update
                        if mean_weights is None:
                            mean_weights = [p.detach().clone() for p in model.parameters()]
                        else:
                            for m, p in zip(mean_weights, model.parameters(), strict=True):
                                m.add_(p.detach() - m, alpha=1.0 / (n_averaged + 1))
                    n_averaged += 1
            record = {"epoch": epoch + 1, "loss": total / max(cfg.epoch_size, 1)}
            if val is not None:
                record["val_ap"] = self._validate(model, val)
                if record["val_ap"] > best_ap:
                    best_ap, best_epoch = record["val_ap"], epoch + 1
                    best_state = copy.deepcopy(model.state_dict())
            history.append(record)
            echo(f"{title} epoch {record['epoch']}: loss {record['loss']:.4f}"
                 + (f", validation AP {record['val_ap']:.3f}" if "val_ap" in record else ""))
        if best_state is not None:
            model.load_state_dict(best_state)
        if n_averaged < 2:  # nothing to average
            n_averaged = 0
        else:
            self._set_averaged(model, mean_weights, minibatch)
        model = contiguous(model)
        model.eval()
        return {"model": model, "pi": pi, "pi_u": pi_u, "history": history, "best_epoch": best_epoch,
                "averaged_updates": n_averaged, "precision": amp}

    def _set_averaged(self, model, mean_weights, minibatch) -> None:
        """Give ``model`` the averaged weights and recompute its BatchNorm statistics for them: the running
        means and variances were collected under the last weights, not the mean (SWA's BN update), from
        ``average_bn_batches`` minibatches drawn as training draws them."""
        import torch

        with torch.no_grad():
            for p, m in zip(model.parameters(), mean_weights, strict=True):
                p.copy_(m)
            norms = [mod for mod in model.modules() if isinstance(mod, torch.nn.modules.batchnorm._BatchNorm)]
            if not norms:
                return
            momenta = [bn.momentum for bn in norms]
            for bn in norms:
                bn.reset_running_stats()
                bn.momentum = None  # a cumulative mean over the minibatches below
            model.train()
            for _ in range(max(1, self.config.average_bn_batches)):
                model(minibatch())
            for bn, momentum in zip(norms, momenta, strict=True):
                bn.momentum = momentum

    def _training_step(self, device: str):
        """The training forward, compiled per the ``compile`` setting (one per picker: pilots and the final
        network share its graph)."""
        from cryopick.torchutil import CompiledStep

        cfg = self.config
        if cfg.compile == "auto":
            enabled = device == "cpu" and cfg.epochs * cfg.epoch_size >= COMPILE_MIN_STEPS
        else:
            enabled = cfg.compile == "on"
        if not enabled:
            return CompiledStep(_train_forward, False)
        if self._step is None:
            self._step = CompiledStep(_train_forward, True, "topaz train")
        return self._step  # disabled for good if compiling failed once

    def _validation_set(self, model, items, rng, max_pos: int = 2000, n_unl: int = 6000):
        """Fixed crops of the held-out micrographs: positive pixels (within ``radius``) and random others."""
        from cryopick_topaz.sampling import CropSampler, positive_mask

        masks = [positive_mask(it.image.shape, it.labels, self.config.radius) for it in items]
        sampler = CropSampler([it.image for it in items], masks, model.receptive_field,
                              np.random.default_rng(rng.integers(2 ** 31)))
        n_pos = min(max_pos, int(sampler.n_pos.sum()))
        crops = np.concatenate([sampler.positives(n_pos), sampler.unlabelled(n_unl)])
        labels = np.zeros(crops.shape[0], dtype=bool)
        labels[:n_pos] = True
        return crops, labels

    def _validate(self, model, val) -> float:
        import torch

        crops, labels = val
        model.eval()
        scores = []
        with torch.inference_mode():
            for i in range(0, crops.shape[0], 1024):
                x = torch.from_numpy(crops[i: i + 1024])[:, None].to(self._device())
                scores.append(model(x).flatten().float().cpu().numpy())
        model.train()
        return average_precision(np.concatenate(scores), labels)

    def _calibrate(self, items, diameter_px: float, expected: float) -> float:
        """Logit cut-off that gives ``expected`` picks per micrograph on ``items`` (their labels are not
        used: on sparse labels, most true particles are unlabelled and an F1 against labels would count them
        as false positives). Falls back to 0 (posterior 0.5) when nothing scores."""
        scores = [self.score(it.image, diameter_px).score for it in items]
        s = np.sort(np.concatenate(scores))[::-1] if scores else np.zeros(0)
        if s.size == 0:
            return 0.0
        k = int(round(expected * len(items)))
        return float(s[min(max(k, 1), s.size) - 1])

    def _import_checkpoint(self, path: str) -> ModelState:
        """A topaz-em model instead of training (``--set checkpoint=FILE``)."""
        from cryopick_topaz.import_model import import_topaz_model

        state = import_topaz_model(path)
        state.config["config"] = config_to_dict(self.config)
        self.load(state)
        echo(f"topaz: picking with the topaz-em model {path} ({state.config['architecture']['name']}, "
             f"receptive field {self.model.receptive_field}); nothing is trained")
        return state

    def load(self, state: ModelState) -> None:
        from cryopick.torchutil import load_arrays
        from cryopick_topaz.models import from_spec

        # an imported topaz-em model carries its own layer list (cryopick_topaz.import_model)
        spec = state.config.get("architecture")
        model = from_spec(spec) if spec else self._build()
        load_arrays(model, state.arrays)
        model.to(self._device()).eval()
        self.model = model
        self.info = dict(state.config.get("training", {}))
        self._warn_if_checkpoint_changed()
        if "threshold" in self.info:
            self.default_threshold = f"fixed:{self.info['threshold']:.4g}"
            calibrated = int(self.info.get("tta", 1))
            if self.config.tta is not None and self.config.tta != calibrated:
                echo(f"topaz: this model's default threshold was calibrated on maps averaged over {calibrated} "
                     f"rotation(s); scoring with tta={self.config.tta} changes the maps, so the number of picks "
                     f"will differ (omit tta to score as calibrated, or give --threshold)")

    def _warn_if_checkpoint_changed(self) -> None:
        """A stored model made from ``--set checkpoint=FILE`` is found again by the settings (the path);
        say so when the file at that path is no longer the one it was made from."""
        import hashlib
        from pathlib import Path

        path, digest = self.config.checkpoint, self.info.get("sha256")
        if path and digest and Path(path).is_file() and hashlib.sha256(Path(path).read_bytes()).hexdigest() != digest:
            echo(f"warning: {path} has changed since its weights were stored in this project; the stored ones "
                 "are used (cryopick import-model topaz FILE stores the new file)")

    def facts(self) -> dict:
        if "imported_from" in self.info:
            return {"topaz-em model": self.info["imported_from"]}
        if "expected_particles" not in self.info:
            return {}
        source = self.info.get("expected_particles_source", "")
        facts = {"particles per micrograph": f"{self.info['expected_particles']:.1f}" + (f" ({source})" if source else "")}
        if self.info.get("precision") == "bfloat16":  # said, so that a user comparing machines knows
            facts["training arithmetic"] = "bfloat16 autocast (--set precision=float32 for float32)"
        return facts

    # -- scoring --------------------------------------------------------------------------------------
    def score_map(self, image: np.ndarray, tta: int | None = None) -> np.ndarray:
        """Per-pixel logits of ``image`` (preprocessed pixels), same shape, computed tile by tile; averaged over
        ``tta`` rotations of the micrograph (default: the config's)."""
        from cryopick.tta import augmented_score_map
        from cryopick_topaz.models import inference_copy, score_map

        if self.model is None:
            raise RuntimeError("topaz picker has no model: train() or load() first")
        device = self._device()
        if self._scorer is None or self._scorer[0] is not self.model:
            self._scorer = (self.model, inference_copy(self.model, channels_last=not device.startswith("cuda")))
        scorer = self._scorer[1]

        def one(x: np.ndarray) -> np.ndarray:
            return score_map(scorer, x, tile=self.config.tile, batch=self.config.tile_batch, device=device,
                             fuse=False)

        tta = self._tta() if tta is None else tta
        return one(image) if tta == 1 else augmented_score_map(one, image, tta)

    def _tta(self) -> int:
        """Rotations averaged when scoring: the setting; else as the loaded model's threshold was calibrated
        (a model trained before ``tta`` existed has a threshold and no ``tta``: one pass); else the default."""
        if self.config.tta is not None:
            return self.config.tta
        if "threshold" in self.info:
            return int(self.info.get("tta", 1))
        return DEFAULT_TTA

    def score(self, image: np.ndarray, diameter_px: float, nms: str | None = None, tta: int | None = None
              ) -> Particles:
        """Candidates of ``image`` (preprocessed pixels), extracted by ``nms`` and scored with ``tta`` rotations
        (defaults: the config's). The same pixels asked for again with the same model are not scored again."""
        import hashlib

        nms = nms or self.config.nms
        tta = self._tta() if tta is None else tta
        pixels = np.ascontiguousarray(image)
        key = (hashlib.blake2b(pixels.view(np.uint8).reshape(-1), digest_size=16).digest(), pixels.shape,
               pixels.dtype.str, float(diameter_px), nms, tta)
        model, seen = self._scored
        if model is not self.model:
            seen = {}
            self._scored = (self.model, seen)
        if key not in seen:
            logits = self.score_map(pixels, tta)
            seen[key] = extract_peaks(logits, radius=max(1.0, self.config.nms_fraction * diameter_px), method=nms,
                                      exclude_border=self.config.border_fraction * diameter_px / 2)
            while len(seen) > SCORED_CACHE:
                seen.pop(next(iter(seen)))
        c = seen[key]
        return Particles(c.x.copy(), c.y.copy(), c.score.copy())
