"""Registration hooks of cryopick-hydra. Imports no torch: every target is a lazy ``module:attr`` string."""

from __future__ import annotations

from cryopick.entries import BackboneEntry, LossEntry, PickerEntry
from cryopick.hookspecs import hookimpl


@hookimpl
def cryopick_register_pickers():
    return [PickerEntry("hydra", "cryopick_hydra.picker:HydraPicker",
                        "HydraPicker: multi-dataset detector; zero-shot with its generic head, few-shot with a new "
                        "dataset head", requires_torch=True)]


@hookimpl
def cryopick_register_backbones():
    return [
        BackboneEntry("hydra-trunk", "cryopick_hydra.model:hydra_trunk",
                      "HydraPicker trunk: 2 convs + 3 residual blocks of paired 3x3 convs, 64 ch, GroupNorm, stride 1"),
        BackboneEntry("hydra", "cryopick_hydra.model:hydra_net",
                      "HydraPicker trunk + SSD-style heads (stride 16: logit and centre offsets per cell)"),
    ]


@hookimpl
def cryopick_register_losses():
    return [
        LossEntry("hydra-focal", "cryopick_hydra.losses:FocalLoss",
                  "HydraPicker focal classification loss (eq. 3.3, gamma 2, alpha 0.25)", inputs="dense"),
        LossEntry("hydra-l1", "cryopick_hydra.losses:L1Localisation",
                  "HydraPicker L1 localisation over matched anchors (eq. 3.2)", inputs="dense"),
        LossEntry("hydra-bias", "cryopick_hydra.losses:BiasLoss",
                  "HydraPicker bias loss tying dataset heads to the generic head (eq. 3.4)", inputs="head-weights"),
    ]


@hookimpl
def cryopick_register_commands(cli):
    from cryopick_hydra.commands import hydra_group

    cli.add_command(hydra_group)
