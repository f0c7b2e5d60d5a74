"""The ``mae`` picker: CryoMAE (papers/cryomae.md), few-shot picking with a masked autoencoder.

Stage 1 (``train``): start from a pre-trained MAE (``--set checkpoint=weights.h5`` from
``cryopick mae pretrain``; without one, a short self-supervised pre-training on the run's own
micrographs), then fine-tune on one reference micrograph: ``exemplars`` labelled particles, each also
rotated by 90/180/270 degrees, and twice as many random unlabelled regions, with the total loss
``MSE + beta * SCS`` (eq. 6; PU-adjusted SCS eq. 4-5 unless ``pu=false``, no SCS with ``scs=false``).

Stage 2 (``score``): slide a window of ``crop_factor x diameter`` over the micrograph at a stride of
``stride x diameter``, encode every window without masking, score it by its largest (``match=max``) or
mean (``match=mean``) cosine similarity to the exemplar features (both centred on the reference
micrograph's mean window feature, ``centre``; cryopick's addition) plus a linear probe's score (``linear``),
keep the local maxima of the score grid, refine them to sub-stride precision, move them onto the exemplars'
template (``recentre``) and add the template's capped correlation there (``correlation``; both cryopick's), and
merge duplicates on one particle by greedy NMS within ``nms_fraction x diameter``. The cut-off is calibrated
on the exemplars' leave-one-out scores (``calibrate``), or the paper's density threshold (§3.3) per micrograph
with ``calibrate=false``.

Stride: the paper slides at 28 px over particles of 149-174 px (mean 163 px, Table 1), i.e. about
0.17 diameters; ``stride = 0.17`` keeps that ratio at any scale (its 14/42/56 px ablation is
``stride = 0.086 / 0.26 / 0.34``).
"""

from __future__ import annotations

import time
from typing import ClassVar, Literal

import attrs
import numpy as np

from cryopick.config import config_to_dict
from cryopick.errors import ConfigError
from cryopick.particles import Particles
from cryopick.picker import ModelState, Picker, TrainingData

#: CryoMAE's sliding stride as a fraction of the particle diameter (28 px / ~163 px, see module docstring).
PAPER_STRIDE_FRACTION = 0.17
#: ``checkpoint`` value naming the pre-trained MAE shipped in this package.
BUILTIN = "builtin"
BUILTIN_FILE = "mae-cpu.h5"


def builtin_weights():
    """Path of the shipped pre-trained MAE (``cryopick_mae/pretrained/mae-cpu.h5``, float16 arrays in HDF5)."""
    from importlib import resources

    path = resources.files("cryopick_mae") / "pretrained" / BUILTIN_FILE
    if not path.is_file():
        raise ConfigError(f"checkpoint=builtin: the shipped weights {path} are missing from this installation of "
                          "cryopick-mae; reinstall it, or use --set checkpoint=none to pre-train on your micrographs")
    return path


@attrs.define
class MAEConfig:
    """Settings of the ``mae`` picker; defaults are the paper's (§4.1.5)."""

    # Network (vit-mae): 224 px input, 16 px patches, ViT-B encoder, 8-block decoder.
    image_size: int = 224
    patch_size: int = 16
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    decoder_dim: int = 512
    decoder_depth: int = 8
    decoder_heads: int = 16
    mlp_ratio: float = 4.0
    #: Fraction of patches masked in training.
    mask_ratio: float = 0.75
    #: Reconstruct per-patch normalised pixels (He et al.'s variant); off = raw pixels.
    norm_pix_loss: bool = False
    #: Region (window and exemplar crop) side as a multiple of the particle diameter.
    crop_factor: float = 1.2
    #: Normalise each window to zero mean and unit variance before encoding.
    window_norm: bool = True
    #: Denoising before picking (the paper denoises micrographs first, §4.1.5): Gaussian low-pass whose
    #: width is this fraction of the particle diameter; 0 turns it off.
    denoise: float = 0.1

    # Pre-training (§3.2.1).
    #: Pre-trained weights: ``builtin`` (the MAE shipped with cryopick-mae, pre-trained on real, simulated
    #: and ASPIRE micrographs by ``recipes/pretrain_encoder.py``; for the ``cpu`` architecture), an HDF5 file
    #: from ``cryopick mae pretrain``, or none: pre-train for ``pretrain_steps`` on the run's micrographs.
    checkpoint: str | None = None
    pretrain_steps: int = 1000
    #: Further pre-training on the run's micrographs after loading ``checkpoint`` (steps; 0: none).
    continue_pretraining: int = 0
    pretrain_batch: int = 64
    pretrain_lr: float = 1e-5

    # Fine-tuning on the reference micrograph (§3.2, §4.1.5).
    #: Number of labelled exemplars taken from the reference micrograph.
    exemplars: int = 15
    #: Add the 90/180/270 degree rotations of each exemplar.
    rotations: bool = True
    #: Unlabelled regions per positive region in each step (2:1 in the paper).
    unlabelled_ratio: float = 2.0
    #: Fraction of encoder blocks frozen (the first half: six of twelve in the paper).
    freeze_fraction: float = 0.5
    finetune_steps: int = 5000
    finetune_lr: float = 1e-5
    #: Use the self-cross similarity loss (``scs=false``: the paper's "w/o SCS" ablation).
    scs: bool = True
    #: PU-adjusted SCS, eq. 4-5 (``pu=false``: unadjusted eq. 1-3).
    pu: bool = True
    #: Feature compared by similarity: ``mean`` of the encoder's patch tokens, the ``cls`` token, or all
    #: patch ``tokens`` flattened (position-aware: a window matches only when the particle sits where it
    #: sits in the exemplars).
    pooling: Literal["mean", "cls", "tokens"] = "mean"
    #: Compute the SCS features on the masked inputs (the paper) or on a second, unmasked pass.
    scs_masked: bool = True
    alpha: float = 0.7
    tau: float = 0.02
    beta: float = 5.0
    pi_hat: float = 0.018
    #: Name of the reference micrograph (default: the first with labels).
    reference: str | None = None

    # Threshold.
    #: Cut-off from the exemplars (``MAEPicker._calibrate``): the ``recall_quantile`` quantile of their
    #: leave-one-out scores; false: the paper's density cut-off (§3.3), which keeps a handful of picks on
    #: crowded or low-contrast micrographs (docs/benchmarks.md).
    calibrate: bool = True
    #: Fraction of the exemplars' leave-one-out scores below the cut. The exemplars were fine-tuned on, so their
    #: leave-one-out scores sit above unseen particles': at the 0.1 quantile 80 %, not 90 %, of the test particles
    #: pass (EMPIAR-10028, ASPIRE). 0.05 aims at recall 0.9 of unseen particles: F1 at the cut, mean of label draws
    #: 0-2, 0.1 -> 0.05 (harness, end to end): ASPIRE SNR 0.01 (held out of every earlier choice) 0.810 -> 0.852,
    #: ASPIRE SNR 0.005 0.804 -> 0.830, EMPIAR-10028 0.785 -> 0.805, EMPIAR-10059 0.571 -> 0.574, EMPIAR-10146
    #: 0.367 -> 0.357; lower on our own simulator (docs/benchmarks.md, "CryoMAE: a held-out ASPIRE set, and the
    #: cut's quantile").
    recall_quantile: float = 0.05

    # Picking (§3.3).
    #: Sliding stride as a fraction of the particle diameter.
    stride: float = PAPER_STRIDE_FRACTION
    #: Score = largest (``max``) or mean (``mean``) cosine similarity to the exemplars.
    match: Literal["max", "mean"] = "max"
    #: Subtract the reference micrograph's mean window feature from every feature before the cosine
    #: similarity (not in the paper, which compares raw features). Raw features share a large common part
    #: (positions, background), so cosines crowd near 1 and background decides the ranking on crowded,
    #: low-contrast micrographs: EMPIAR-10059 AP 0.056 raw vs 0.259 centred, EMPIAR-10028 and ASPIRE
    #: within 0.007 (docs/benchmarks.md). ``centre=false``: the paper's raw features.
    centre: bool = True
    #: Random windows of the reference micrograph averaged for that mean (and the unlabelled windows of
    #: ``linear``).
    centre_windows: int = 4096
    #: Add a linear probe's score to the cosine similarity (cryopick's addition, not in the paper): a logistic
    #: regression of the exemplar windows (shifted by up to ``linear_jitter`` of a stride, and rotated with
    #: ``rotations``) against the ``centre_windows`` random windows of the reference micrograph, which under
    #: randomly chosen exemplars ranks windows as P(particle | window) (Elkan & Noto 2008; cryopick_mae.linear).
    #: Both scores are standardised over the random windows and summed. AP on EMPIAR-10028 / ASPIRE SNR 0.005 /
    #: EMPIAR-10059 / EMPIAR-10146, the same trained models scored both ways, mean of three exemplar draws:
    #: 0.764 / 0.699 / 0.239 / 0.116 with the cosine alone, 0.765 / 0.748 / 0.295 / 0.134 with both
    #: (docs/benchmarks.md). ``linear=false``: the paper's cosine score.
    linear: bool = True
    #: Inverse strength of the probe's L2 penalty (``cryopick_mae.linear.fit_logistic``).
    linear_c: float = 10.0
    #: Exemplar windows for the probe are shifted by 0 and +-this fraction of the sliding stride in x and y.
    linear_jitter: float = 0.5
    #: Move each candidate to the best match, within this fraction of the diameter, of a template made from
    #: the exemplars (the rotational average of their mean crop; ``cryopick.recentre``) before duplicates are
    #: merged; 0 = the score grid's own peaks (the paper). cryopick's addition: on crowded micrographs a window
    #: holds two or three particles and the score peaks between them (EMPIAR-10059: 40 % of the particles had a
    #: candidate within 0.2 diameters). 15 exemplars, seed 0, the same trained models, AP / best F1
    #: (docs/benchmarks.md): EMPIAR-10059 0.323 / 0.494 -> 0.408 / 0.585, EMPIAR-10146 0.157 / 0.289 -> 0.253 /
    #: 0.381, EMPIAR-10028 0.728 / 0.799 -> 0.732 / 0.803, ASPIRE SNR 0.005 0.752 / 0.762 -> 0.765 / 0.770.
    recentre: float = attrs.field(default=0.35, validator=attrs.validators.ge(0.0))
    #: Radius of that template as a fraction of the diameter: 1 takes in the particle's surroundings (the
    #: ring of ice or neighbours around it), which located particles better than the particle's disk alone
    #: (0.5: EMPIAR-10146 best F1 0.296 vs 0.356, EMPIAR-10059 0.556 vs 0.581 at a search of 0.25).
    recentre_template: float = attrs.field(default=1.0, validator=attrs.validators.gt(0.0))
    #: Add this multiple of the candidate's correlation with that template to its score (cryopick's addition): the
    #: matched filter's response, in robust standard units of its own micrograph and clipped at the exemplars'
    #: leave-one-out median (higher responses are contaminants and aggregates, not better particles;
    #: ``cryopick.recentre.correlation_score``). The cosine and the probe rank which windows hold a particle; the
    #: template says how much of the particle is centred there, and separates particles from background windows that the
    #: features confuse. The same trained models both ways, 15 exemplars, mean of seeds 0-2, AP / best F1 / F1 at the
    #: cut (docs/benchmarks.md): ASPIRE SNR 0.005 +0.062 / +0.050 / +0.012, EMPIAR-10028 -0.018 / +0.017 / -0.007,
    #: EMPIAR-10059 +0.010 / +0.002 / +0.004, EMPIAR-10146 +0.026 / +0.009 / +0.006. 0: the score alone.
    correlation: float = attrs.field(default=0.1, validator=attrs.validators.ge(0.0))
    #: The correlation term falls again where the correlation within a particle radius passes this multiple of its
    #: clip (``cryopick.recentre.capped_correlation``): a window that matches the template twice as well as the
    #: exemplars' median holds something brighter or larger than a particle (ice, an aggregate). The same trained
    #: models, 0 -> 2, AP / F1 at the cut: ASPIRE SNR 0.005 seeds 0-2 0.878 / 0.830 -> 0.892 / 0.839, 0.840 / 0.740 ->
    #: 0.841 / 0.741, 0.831 / 0.691 -> 0.876 / 0.709; the real sets within 0.002 (docs/benchmarks.md). 0: the
    #: plain clip.
    contaminant: float = attrs.field(default=2.0, validator=attrs.validators.ge(0.0))
    #: Duplicate windows closer than this fraction of the diameter are merged (greedy NMS).
    nms_fraction: float = 0.6
    #: Window centres reach this close (fraction of the diameter) to the micrograph edge.
    edge_fraction: float = 0.25
    #: Windows encoded per batch.
    batch_size: int = 256


PRESETS: dict[str, dict] = {
    # The paper's network and training (§4.1.5); features pooled over the masked inputs as in eq. 1-5.
    "paper": {},
    # A small ViT that trains in about a minute and picks a 1024^2 micrograph in a few seconds on two CPU
    # cores: 32 px input in 8 px patches (16 tokens, the particle about 27 px across), width 96, four
    # blocks. Tuned on the built-in demo (SNR 0.02, see the package README): with a network this small
    # and so little training, three of the paper's choices lose: position-aware ``tokens`` features, SCS
    # on the unmasked features and nothing frozen each raised AP. Matching stays the paper's ``max``:
    # ``match=mean`` ranks the demo better (AP 0.58 vs 0.27) but piles the best windows up against its
    # ceiling (the norm of the mean exemplar feature), and the per-micrograph density cut then keeps only
    # that pile (F1 0.28 vs 0.41 on the demo; 0.84 vs 0.85 and 0.83 vs 0.82 on sim:globular/asymmetric).
    # The SCS floor (eq. 3's tau) is 0.1, not the paper's 0.02: at this preset's learning rate (200 x the paper's)
    # the small ViT pulls the exemplars' features together until they are one point (pairwise cosine 0.9996), and
    # a higher floor stops the pull sooner. It changes only the runs whose loss reaches 0.02 (4 of 12 here):
    # 15 exemplars, label draws 0-2, F1 at the cut / best F1 (docs/benchmarks.md): ASPIRE SNR 0.005 draw 1
    # 0.747 / 0.760 -> 0.865 / 0.872, draw 0 0.841 / 0.847 -> 0.854 / 0.862; EMPIAR-10028 draw 0 0.771 / 0.819
    # -> 0.756 / 0.815, draw 1 0.758 / 0.814 -> 0.774 / 0.817; TRPV1 and apoferritin's draws unchanged.
    "cpu": dict(checkpoint=BUILTIN, image_size=32, patch_size=8, embed_dim=96, depth=4, num_heads=4, decoder_dim=64,
                decoder_depth=1, decoder_heads=4, pretrain_steps=50, pretrain_batch=64, pretrain_lr=1e-3,
                finetune_steps=300, finetune_lr=2e-3, freeze_fraction=0.0, pooling="tokens", scs_masked=False,
                tau=0.1, batch_size=512),
    # For tests (cryopick's contract test): a 16 px ViT trained for a few steps.
    "tiny": dict(image_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2, decoder_dim=16, decoder_depth=1,
                 decoder_heads=2, pretrain_steps=4, pretrain_batch=16, finetune_steps=4, batch_size=128),
}


class MAEPicker(Picker):
    """CryoMAE few-shot picker."""

    Config = MAEConfig
    presets: ClassVar[dict[str, dict]] = PRESETS
    default_threshold: ClassVar[str] = "density"
    trainable: ClassVar[bool] = True
    demo_labels: ClassVar[int | None] = 15

    def __init__(self, config, context=None) -> None:
        super().__init__(config, context)
        self._model = None
        self._exemplar_features = None
        self._feature_mean = None
        #: the linear probe (``linear``): {"weight": (D,), "norm": [cos mean, cos sd, probe mean, probe sd]}
        self._linear: dict | None = None
        self._checkpoint_state: ModelState | None = None
        #: the exemplars' centring template (``recentre``), None for models stored without one
        self._template: np.ndarray | None = None
        #: the clip of the template's correlation term (``correlation``), None without that term
        self._correlation: float | None = None
        #: the exemplars' leave-one-out standardised correlations (training only: the calibration)
        self._exemplar_z: np.ndarray | None = None
        self.calibration: dict | None = None
        self.history: dict = {}

    @classmethod
    def default_preset(cls, device: str) -> str | None:
        return "paper" if str(device).startswith("cuda") else "cpu"

    # -- architecture and checkpoint -----------------------------------------------------------------
    def checkpoint_state(self) -> ModelState | None:
        """The pre-trained weights named by ``checkpoint`` (loaded once), or None."""
        if self.config.checkpoint and self._checkpoint_state is None:
            from cryopick.weights import load_weights

            state = load_weights(builtin_weights() if self.config.checkpoint == BUILTIN else self.config.checkpoint)
            if "architecture" not in state.config:
                raise ConfigError(f"checkpoint={self.config.checkpoint}: not a cryopick-mae weights file "
                                  "(write one with 'cryopick mae pretrain')")
            self._checkpoint_state = state
        return self._checkpoint_state

    def architecture(self) -> dict:
        """The network's architecture: the checkpoint's when one is given, else the config's."""
        from cryopick_mae.model import ARCHITECTURE_KEYS

        state = self.checkpoint_state()
        if state is not None:
            return dict(state.config["architecture"])
        return {k: getattr(self.config, k) for k in ARCHITECTURE_KEYS}

    def window_px(self, diameter_px: float) -> int:
        from cryopick_mae.windows import window_size

        return window_size(diameter_px, self.config.crop_factor, int(self.architecture()["image_size"]))

    # -- pipeline calls ------------------------------------------------------------------------------
    def preprocessing(self, diameter_px: float, pixel_size_a: float | None) -> list[tuple[str, dict]]:
        # Downsample so that a window (crop_factor x diameter) is about the model input: windows then
        # need no resizing, and the fewest pixels are encoded.
        size = int(self.architecture()["image_size"])
        factor = max(1.0, self.config.crop_factor * diameter_px / size)
        chain = [("downsample", {"factor": round(factor, 4)})]
        if self.config.denoise > 0:
            chain.append(("lowpass", {"sigma_px": round(self.config.denoise * diameter_px / factor, 3)}))
        return chain + [("normalize", {"robust": True})]

    def _reference(self, data: TrainingData):
        labelled = [it for it in data.items if it.labels is not None and len(it.labels)]
        if self.config.reference:
            named = [it for it in data.items if it.name == self.config.reference]
            if not named:
                raise ConfigError(f"reference={self.config.reference}: no such training micrograph; have "
                                  f"{', '.join(it.name for it in data.items)}")
            if named[0].labels is None or not len(named[0].labels):
                raise ConfigError(f"reference={self.config.reference}: that micrograph has no labels")
            return named[0]
        if not labelled:
            raise ConfigError("the mae picker needs at least one micrograph with labelled exemplars (--labels)")
        return labelled[0]

    def train(self, data: TrainingData) -> ModelState:
        import torch

        from cryopick.torchutil import seed_everything
        from cryopick_mae.train import encode, finetune, fresh_regions, model_from_state, pretrain
        from cryopick_mae.windows import crop_centred, to_input, with_rotations

        cfg = self.config
        device = self.context.device
        seed_everything(self.context.seed)
        rng = np.random.default_rng(self.context.seed)
        diameter = float(data.diameter_px)
        window = self.window_px(diameter)
        timings = {}

        start = time.perf_counter()
        state = self.checkpoint_state()
        if state is not None:
            model = model_from_state(state)
            if cfg.continue_pretraining > 0:
                images = [it.image for it in data.items] + [it.image for it in data.unlabelled]
                sampler = fresh_regions(images, cfg.pretrain_batch, window, rng)
                self.history["pretrain_loss"] = pretrain(
                    model, sampler, steps=cfg.continue_pretraining, lr=cfg.pretrain_lr, mask_ratio=cfg.mask_ratio,
                    device=device, window_norm=cfg.window_norm, desc="mae pre-training (continued)")
        else:
            model = self.context.load("backbone", "vit-mae")(**self.architecture())
            images = [it.image for it in data.items] + [it.image for it in data.unlabelled]
            if cfg.pretrain_steps > 0:
                sampler = fresh_regions(images, cfg.pretrain_batch, window, rng)
                losses = pretrain(model, sampler, steps=cfg.pretrain_steps, lr=cfg.pretrain_lr,
                                  mask_ratio=cfg.mask_ratio, device=device, window_norm=cfg.window_norm,
                                  desc="mae pre-training")
                self.history["pretrain_loss"] = losses
        timings["pretrain_s"] = time.perf_counter() - start

        reference = self._reference(data)
        labels = reference.labels
        if len(labels) > cfg.exemplars:
            chosen = np.sort(rng.choice(len(labels), size=cfg.exemplars, replace=False))
            labels = labels.subset(chosen)
        crops = crop_centred(reference.image, labels.xy, window)
        if cfg.rotations:
            crops = with_rotations(crops)
        positives = to_input(crops, model.image_size, cfg.window_norm, device)

        if cfg.scs:
            # through the registry (losses "scs-pu" / "scs", inputs="features"), like any plugin's loss
            params = {"alpha": cfg.alpha, "tau": cfg.tau, **({"pi": cfg.pi_hat} if cfg.pu else {})}
            loss_fn = self.context.load("loss", "scs-pu" if cfg.pu else "scs")(**params)
        else:
            loss_fn = None
        start = time.perf_counter()
        depth = len(model.blocks)
        history = finetune(model, positives, reference.image, window_px=window, steps=cfg.finetune_steps,
                           lr=cfg.finetune_lr, mask_ratio=cfg.mask_ratio, unlabelled_ratio=cfg.unlabelled_ratio,
                           freeze_blocks=int(round(cfg.freeze_fraction * depth)), scs_loss=loss_fn, beta=cfg.beta,
                           rng=rng, device=device, window_norm=cfg.window_norm, scs_masked=cfg.scs_masked,
                           pooling=cfg.pooling)
        timings["finetune_s"] = time.perf_counter() - start
        self.history["finetune"] = history

        features = encode(model, positives, cfg.batch_size, cfg.pooling).cpu().numpy()
        self._model = model
        self._exemplar_features = torch.from_numpy(features)
        random_features = self._random_features(reference.image, window, rng) if cfg.centre or cfg.linear else None
        self._feature_mean = _mean(random_features) if cfg.centre else None
        self._linear = None
        if cfg.linear:
            start = time.perf_counter()
            self._linear = self._fit_linear(reference.image, labels.xy, diameter, random_features)
            timings["linear_s"] = time.perf_counter() - start
        self._template, self._correlation = None, None
        if cfg.recentre > 0 or cfg.correlation > 0:
            from cryopick.recentre import correlation_norm, radial_template

            self._template = radial_template(reference.image, labels.xy, cfg.recentre_template * diameter)
            if cfg.correlation > 0:
                self._correlation, self._exemplar_z = correlation_norm(
                    reference.image, labels.xy, cfg.recentre_template * diameter, cfg.recentre * diameter)
        calibration = None
        if cfg.calibrate:
            calibration = self._calibrate(reference.image, labels, diameter, rng)
            self._apply_calibration(calibration)
        return self._state(model, features, diameter, window, reference.name, timings, calibration)

    def _random_features(self, image: np.ndarray, window: int, rng: np.random.Generator):
        """Unmasked features ``(centre_windows, D)`` of random windows of ``image``: their mean is the
        centring vector (``centre``), and they are the unlabelled windows of the linear probe (``linear``)."""
        import torch

        from cryopick_mae.train import encode
        from cryopick_mae.windows import crop_random, to_input

        cfg = self.config
        if cfg.centre_windows < 1:
            raise ConfigError(f"centre_windows={cfg.centre_windows}: the mean feature needs at least one window; "
                              "give a positive number (default 4096), or --set centre=false --set linear=false for "
                              "the paper's raw features")
        out = []
        for start in range(0, cfg.centre_windows, cfg.batch_size):
            n = min(cfg.batch_size, cfg.centre_windows - start)
            x = to_input(crop_random(image, n, window, rng), self._model.image_size, cfg.window_norm,
                         self.context.device)
            out.append(encode(self._model, x, cfg.batch_size, cfg.pooling).detach().cpu().float())
        return torch.cat(out)

    def _unit(self, features):
        """Centred (``centre``) and L2-normalised features, the space in which windows are compared."""
        import torch.nn.functional as F

        return F.normalize(self._centred(features.float()), dim=1)

    def _cosine(self, sim):
        """Window scores from their cosine similarities to the exemplars ``(windows, exemplars)`` (``match``)."""
        return sim.max(dim=1).values if self.config.match == "max" else sim.mean(dim=1)

    def _fit_linear(self, image: np.ndarray, exemplar_xy: np.ndarray, diameter: float, random_features) -> dict:
        """The linear probe (``linear``) on the exemplar windows against ``random_features``."""
        import torch

        from cryopick_mae.linear import fit_logistic, jitter_offsets, standardiser
        from cryopick_mae.train import encode
        from cryopick_mae.windows import crop_centred, to_input, with_rotations

        cfg = self.config
        window = self.window_px(diameter)
        offsets = jitter_offsets(max(1, int(round(cfg.stride * diameter))), cfg.linear_jitter)
        crops = crop_centred(image, (exemplar_xy[:, None, :] + offsets[None]).reshape(-1, 2), window)
        if cfg.rotations:
            crops = with_rotations(crops)
        x = to_input(crops, self._model.image_size, cfg.window_norm, self.context.device)
        positives = self._unit(encode(self._model, x, cfg.batch_size, cfg.pooling).detach().cpu()).numpy()
        unlabelled = self._unit(random_features).numpy()
        bank = self._unit(self._exemplar_features).numpy()
        cos_norm = standardiser(self._cosine(torch.from_numpy(unlabelled @ bank.T)).numpy())

        w, _ = fit_logistic(positives, unlabelled, cfg.linear_c)
        return {"weight": torch.from_numpy(w), "norm": [*cos_norm, *standardiser(unlabelled @ w)]}

    def _scores(self, sim, features, probe: dict | None = None):
        """Window scores from their similarities ``sim`` to the exemplars and their ``_unit`` ``features``."""
        return self._with_probe(self._cosine(sim), features, probe)

    def _with_probe(self, cosine, features, probe: dict | None = None):
        """The windows' cosine scores, plus, with a linear probe (``linear``; ``probe`` or the picker's), the
        probe's score of their ``_unit`` ``features``, both standardised over the reference's random windows."""
        probe = probe if probe is not None else self._linear
        if probe is None:
            return cosine
        mc, sc, ml, sl = probe["norm"]
        return (cosine - mc) / sc + (features @ probe["weight"].to(features.device, features.dtype) - ml) / sl

    def _centred(self, features):
        """``features`` minus the centring vector (unchanged when there is none), on their device."""
        if self._feature_mean is None:
            return features
        return features - self._feature_mean.to(features.device, features.dtype)

    def _calibrate(self, image: np.ndarray, exemplars: Particles, diameter: float, rng: np.random.Generator,
                   draws: int = 10) -> dict:
        """Score cut-off from the exemplars alone: the ``recall_quantile`` quantile of their leave-one-out
        scores. Each exemplar is scored as picking scores a particle it has not seen: windows on a grid of
        ``stride`` around it (offset at random within half a stride, as the sliding grid falls on a particle),
        each compared with the other exemplars' features only (``match``), and the largest over the 3 x 3
        neighbourhood kept (a candidate is a local maximum of the score grid); ``draws`` random offsets
        each. Exemplars are a random sample of the particles, so a particle would score above the cut with
        probability about ``1 - recall_quantile`` if fine-tuning had not seen them (it lifts their scores, hence
        the default 0.05). With the linear probe (``linear``), its part of the score
        comes from the probe fitted on all the exemplars: probes refitted without each fold of exemplars
        gave cuts that moved by up to 0.4 (standardised units) with the random windows drawn and fell below
        most false candidates, F1 at the cut 0.54-0.65 against 0.79 on EMPIAR-10028 (docs/benchmarks.md)."""
        import torch

        from cryopick_mae.train import encode
        from cryopick_mae.windows import crop_centred, to_input

        cfg = self.config
        n = len(exemplars)
        step = max(1, int(round(cfg.stride * diameter)))
        window = self.window_px(diameter)
        bank = self._unit(self._exemplar_features)
        own = (torch.arange(bank.shape[0])[None, :] % n) == torch.arange(n)[:, None]  # column c: exemplar c % n
        grid = step * np.array([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], dtype=np.float64)
        scores = []
        for _ in range(draws):
            centres = exemplars.xy + rng.uniform(-step / 2, step / 2, size=(n, 2))
            xy = (centres[:, None, :] + grid[None, :, :]).reshape(-1, 2)  # exemplar-major, 9 windows each
            x = to_input(crop_centred(image, xy, window), self._model.image_size, cfg.window_norm, self.context.device)
            feats = self._unit(encode(self._model, x, cfg.batch_size, cfg.pooling).cpu())
            sim = (feats @ bank.T).reshape(n, len(grid), -1)
            mask = own[:, None, :].expand_as(sim)
            if cfg.match == "max":
                s = sim.masked_fill(mask, -torch.inf).max(dim=2).values
            else:
                s = sim.masked_fill(mask, 0.0).sum(dim=2) / (~mask).sum(dim=2)
            s = self._with_probe(s.reshape(-1), feats).reshape(n, len(grid))
            scores.append(s.max(dim=1).values.numpy())
        if self._correlation is not None:  # each exemplar's correlation term, with the others' template
            from cryopick.recentre import capped_correlation

            term = cfg.correlation * capped_correlation(self._exemplar_z, self._correlation, cfg.contaminant)
            scores = [s + term for s in scores]
        loo = np.sort(np.concatenate(scores))
        cut = float(np.quantile(loo, cfg.recall_quantile))
        return {"threshold": cut, "recall_quantile": cfg.recall_quantile,
                "loo_median": round(float(np.median(loo)), 6), "exemplars": n}

    def _correlation_term(self, corr: np.ndarray, candidates: Particles, diameter_px: float) -> np.ndarray:
        """``correlation`` x the clipped, standardised template correlation ``corr`` at ``candidates``."""
        from cryopick.recentre import CONTAMINANT_REACH, correlation_score

        return self.config.correlation * correlation_score(corr, candidates.xy, self._correlation,
                                                           self.config.contaminant, CONTAMINANT_REACH * diameter_px)

    def _apply_calibration(self, calibration: dict | None) -> None:
        if calibration is not None:
            self.default_threshold = f"fixed:{calibration['threshold']:.8g}"
            self.calibration = calibration

    def facts(self) -> dict:
        out = dict(super().facts())
        if self.calibration:
            out["threshold"] = (f"{self.calibration['threshold']:.6g} (the {self.calibration['recall_quantile']:g} "
                                "quantile of the exemplars' leave-one-out scores)")
        return out

    def _state(self, model, features: np.ndarray, diameter: float, window: int, reference: str,
               timings: dict, calibration: dict | None = None) -> ModelState:
        from cryopick_mae.train import model_arrays

        arrays = model_arrays(model)
        arrays["exemplar_features"] = np.asarray(features, dtype=np.float32)
        if self._feature_mean is not None:
            arrays["feature_mean"] = self._feature_mean.numpy().astype(np.float32)
        if self._template is not None:
            arrays["centre_template"] = self._template.astype(np.float32)
        if self._correlation is not None:
            arrays["correlation_clip"] = np.asarray([self._correlation], dtype=np.float64)
        if self._linear is not None:
            arrays["linear_weight"] = self._linear["weight"].numpy().astype(np.float32)
            arrays["linear_norm"] = np.asarray(self._linear["norm"], dtype=np.float64)
        config = {"architecture": dict(model.architecture), "picker": config_to_dict(self.config),
                  "diameter_px": diameter, "window_px": window, "reference": reference,
                  "timings": {k: round(v, 3) for k, v in timings.items()}, "calibration": calibration}
        return ModelState(arrays, config)

    def load(self, state: ModelState) -> None:
        import torch

        from cryopick_mae.train import model_from_state

        if "exemplar_features" not in state.arrays:
            raise ConfigError("this mae model has no exemplar features; it is a pre-training checkpoint, "
                              "pass it as --set checkpoint=PATH and train")
        self._model = model_from_state(state).to(self.context.device).eval()
        self._exemplar_features = torch.from_numpy(np.asarray(state.arrays["exemplar_features"], dtype=np.float32))
        # models saved before centring existed (or with centre=false) have no mean: raw features
        mean = state.arrays.get("feature_mean") if self.config.centre else None
        self._feature_mean = None if mean is None else torch.from_numpy(np.asarray(mean, dtype=np.float32))
        # models saved before the linear probe existed (or with linear=false) score by the cosine alone
        weight = state.arrays.get("linear_weight") if self.config.linear else None
        self._linear = None if weight is None else {
            "weight": torch.from_numpy(np.asarray(weight, dtype=np.float32)),
            "norm": [float(v) for v in np.asarray(state.arrays["linear_norm"], dtype=np.float64)]}
        # models saved before re-centring existed (or with recentre=0) keep the score grid's peaks; those saved
        # before the correlation term (or with correlation=0) score without it
        norm = state.arrays.get("correlation_clip") if self.config.correlation > 0 else None
        self._correlation = None if norm is None else float(np.asarray(norm, dtype=np.float64).reshape(-1)[0])
        template = state.arrays.get("centre_template") if self.config.recentre > 0 or norm is not None else None
        self._template = None if template is None else np.asarray(template, dtype=np.float32)
        if self.config.calibrate:
            self._apply_calibration(state.config.get("calibration"))

    def score_grid(self, image: np.ndarray, diameter_px: float):
        """Similarity of every window: ``(scores (ny, nx), x0, y0, step, window)`` where window
        ``(i, j)`` is centred at ``(x0 + j * step, y0 + i * step)`` in ``image`` pixels."""
        import torch
        import torch.nn.functional as F

        from cryopick.progress import progress
        from cryopick_mae.windows import to_input

        if self._model is None:
            raise RuntimeError("mae picker: call train() or load() before score()")
        cfg = self.config
        device = self.context.device
        model = self._model.to(device).eval()
        window = self.window_px(diameter_px)
        step = max(1, int(round(cfg.stride * diameter_px)))
        # Zero padding (the mean of a normalised micrograph) lets centres come within
        # edge_fraction * diameter of the edge.
        pad = max(0, int(round(window / 2 - cfg.edge_fraction * diameter_px)))
        img = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
        img = F.pad(img, (pad, pad, pad, pad))
        if img.shape[0] < window or img.shape[1] < window:
            img = F.pad(img, (0, max(0, window - img.shape[1]), 0, max(0, window - img.shape[0])))
        views = img.unfold(0, window, step).unfold(1, window, step)  # (ny, nx, window, window), no copy
        ny, nx = views.shape[:2]
        exemplars = self._unit(self._exemplar_features.to(device))
        rows_per_batch = max(1, cfg.batch_size // nx)
        scores = torch.empty(ny, nx)
        with torch.inference_mode():
            for r0 in progress(range(0, ny, rows_per_batch), desc="mae scoring", total=-(-ny // rows_per_batch)):
                batch = views[r0: r0 + rows_per_batch].reshape(-1, window, window)
                x = to_input(batch, model.image_size, cfg.window_norm, device)
                feats = self._unit(model.features(x, cfg.pooling))
                s = self._scores(feats @ exemplars.T, feats)
                scores[r0: r0 + rows_per_batch] = s.reshape(-1, nx).float().cpu()
        origin = (window - 1) / 2 - pad
        return scores.numpy(), origin, origin, step, window

    def score(self, image: np.ndarray, diameter_px: float) -> Particles:
        grid, x0, y0, step, _ = self.score_grid(image, diameter_px)
        return self.grid_candidates(image, grid, x0, y0, step, diameter_px)

    def grid_candidates(self, image: np.ndarray, grid: np.ndarray, x0: float, y0: float, step: int,
                        diameter_px: float) -> Particles:
        """Picks of ``image`` from its score grid (``score_grid``'s ``grid, x0, y0, step``): the grid's local maxima,
        re-centred on the template, plus the correlation term, duplicates merged."""
        from scipy import ndimage

        from cryopick.nms import greedy_nms
        from cryopick.recentre import correlation_map, parabola_offset, recentre

        # Local maxima of the score grid (3 x 3), refined by a parabola through each peak and its
        # neighbours along x and y: sub-stride centres at no extra encoding cost.
        peaks = grid >= ndimage.maximum_filter(grid, size=3, mode="nearest")
        iy, ix = np.nonzero(peaks)
        padded = np.pad(grid, 1, mode="edge")
        c = padded[iy + 1, ix + 1]
        dx = parabola_offset(padded[iy + 1, ix], c, padded[iy + 1, ix + 2])
        dy = parabola_offset(padded[iy, ix + 1], c, padded[iy + 2, ix + 1])
        x = x0 + (ix + dx) * step
        y = y0 + (iy + dy) * step
        h, w = image.shape
        candidates = Particles(np.clip(x, 0, w - 1), np.clip(y, 0, h - 1), c)
        if self._template is not None:  # only built or loaded with recentre > 0 or correlation > 0
            corr = correlation_map(image, self._template)
            candidates = recentre(candidates, corr, self.config.recentre * diameter_px)  # recentre=0: unmoved
            if self._correlation is not None:
                candidates = Particles(candidates.x, candidates.y,
                                       candidates.score + self._correlation_term(corr, candidates, diameter_px))
        return greedy_nms(candidates, self.config.nms_fraction * diameter_px)


def _mean(features):
    """Mean feature (accumulated in float64) of ``(n, D)`` features: the centring vector (``centre``)."""
    return features.double().mean(dim=0).float()
