"""Entry module of cryopick-active: registers the ``active`` picker and the ``cryopick active`` commands.
Imports no torch: targets are lazy ``module:attr`` strings."""

from __future__ import annotations

from cryopick.entries import PickerEntry
from cryopick.hookspecs import hookimpl


@hookimpl
def cryopick_register_pickers():
    return [PickerEntry("active", "cryopick_active.picker:ActivePicker",
                        "active learning: logistic regression on pretrained per-pixel features, trained on the few "
                        "regions a person labels with 'cryopick active label'", requires_torch=True)]


@hookimpl
def cryopick_register_commands(cli):
    from cryopick_active.commands import active_group

    cli.add_command(active_group)
