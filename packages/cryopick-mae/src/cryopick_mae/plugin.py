"""cryopick-mae's registrations. Cheap to import: no torch here, only lazy ``"module:attr"`` targets."""

from __future__ import annotations

from cryopick.entries import BackboneEntry, LossEntry, PickerEntry
from cryopick.hookspecs import hookimpl


@hookimpl
def cryopick_register_pickers():
    return [PickerEntry("mae", "cryopick_mae.picker:MAEPicker",
                        "CryoMAE: few-shot picking by ViT-MAE features + self-cross similarity (15 exemplars)",
                        requires_torch=True)]


@hookimpl
def cryopick_register_backbones():
    return [BackboneEntry("vit-mae", "cryopick_mae.model:build_vit_mae",
                          "ViT masked autoencoder (sin-cos positions, 75% masking, light decoder)")]


@hookimpl
def cryopick_register_losses():
    return [
        LossEntry("scs", "cryopick_mae.losses:scs_loss", "CryoMAE self-cross similarity loss (eq. 1-3)",
                  inputs="features"),
        LossEntry("scs-pu", "cryopick_mae.losses:scs_pu_loss",
                  "CryoMAE PU-adjusted self-cross similarity loss (eq. 3-5)", inputs="features"),
    ]


@hookimpl
def cryopick_register_commands(cli):
    from cryopick_mae.commands import mae_group

    cli.add_command(mae_group)
