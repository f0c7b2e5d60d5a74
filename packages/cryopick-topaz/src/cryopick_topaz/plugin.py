"""Registration hooks of cryopick-topaz. Imports no torch: every target is a lazy ``module:attr`` string."""

from __future__ import annotations

from cryopick.entries import BackboneEntry, LossEntry, ModelImporterEntry, PickerEntry, PreprocessorEntry
from cryopick.hookspecs import hookimpl


@hookimpl
def cryopick_register_preprocessors():
    return [
        PreprocessorEntry("gmm", "cryopick_topaz.gmm:GMMNormalize",
                          "Topaz per-micrograph 2-component Gaussian mixture normalisation (background to N(0,1))"),
    ]


@hookimpl
def cryopick_register_backbones():
    return [
        BackboneEntry("resnet8", "cryopick_topaz.models:resnet8", "Topaz ResNet8 (receptive field 71, stride 4)"),
        BackboneEntry("resnet16", "cryopick_topaz.models:resnet16", "Topaz ResNet16 (receptive field 91, stride 4)"),
        BackboneEntry("conv31", "cryopick_topaz.models:conv31", "Topaz 3-layer CNN (receptive field 31)"),
        BackboneEntry("conv63", "cryopick_topaz.models:conv63", "Topaz 4-layer CNN (receptive field 63)"),
        BackboneEntry("conv127", "cryopick_topaz.models:conv127", "Topaz 5-layer CNN (receptive field 127)"),
    ]


@hookimpl
def cryopick_register_losses():
    # inputs="pu-logits": called as loss(positive_logits, unlabelled_logits, pi) (docs/hooks.md)
    return [
        LossEntry("pn", "cryopick_topaz.losses:PN", "positive-negative: unlabelled treated as negative, pi-weighted",
                  inputs="pu-logits"),
        LossEntry("ge-kl", "cryopick_topaz.losses:GEKL", "generalised expectation, KL to pi (Topaz)",
                  inputs="pu-logits"),
        LossEntry("ge-binomial", "cryopick_topaz.losses:GEBinomial",
                  "generalised expectation, binomial count of positives per minibatch (Topaz default)",
                  inputs="pu-logits"),
        LossEntry("nnpu", "cryopick_topaz.losses:NNPU", "non-negative PU risk (Kiryo et al. 2017)", inputs="pu-logits"),
    ]


@hookimpl
def cryopick_register_pickers():
    return [
        PickerEntry("topaz", "cryopick_topaz.picker:TopazPicker",
                    "positive-unlabelled CNN (Topaz): train on few labelled particles, per-pixel logits + NMS",
                    requires_torch=True),
    ]


@hookimpl
def cryopick_register_model_importers():
    return [
        ModelImporterEntry("topaz-em", "cryopick_topaz.import_model:import_topaz_model",
                           "models trained with topaz-em (.sav: whole LinearClassifier or state dict; read with a "
                           "restricted unpickler)", picker="topaz", suffixes=(".sav", ".pt", ".pth")),
    ]
