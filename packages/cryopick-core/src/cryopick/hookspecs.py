"""Hook specifications of cryopick (pluggy project ``cryopick``).

Plugins are modules or objects with functions decorated by :data:`hookimpl`, found through the
``cryopick`` entry-point group. Registration hooks are called once, when the host is built, and return
lists of entries (see :mod:`cryopick.entries`); the host puts them into one registry per kind.
Hooks evolve by adding arguments only; implementations may accept fewer arguments than the spec.

A plugin's entry module must be cheap to import: no torch at module level. Point entries at the heavy
code with ``"module:attr"`` targets instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:  # pragma: no cover
    import click

    from cryopick.entries import (
        BackboneEntry,
        ExporterEntry,
        ImporterEntry,
        LossEntry,
        ModelImporterEntry,
        PickerEntry,
        PreprocessorEntry,
        ThresholderEntry,
    )

PROJECT = "cryopick"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def cryopick_register_preprocessors() -> list[PreprocessorEntry]:
    """Return image preprocessors (downsampling, normalisation, filters).

    Called once when the host is built. ``target(**params)`` must return a callable taking a 2-D float32
    image and returning a :class:`cryopick.preprocess.Preprocessed` (image and downsampling factor).
    """


@hookspec
def cryopick_register_backbones() -> list[BackboneEntry]:
    """Return feature-extracting networks that pickers can build by name.

    Called once when the host is built. ``target(**config)`` returns the network (for torch backbones an
    ``nn.Module``). Entries must not import torch at registration time.
    """


@hookspec
def cryopick_register_losses() -> list[LossEntry]:
    """Return training objectives that pickers can select by name (``--set loss=NAME``).

    Called once when the host is built. ``target(**params)`` returns the loss callable.
    """


@hookspec
def cryopick_register_thresholders() -> list[ThresholderEntry]:
    """Return score thresholders that turn candidates into picks (``--threshold NAME[:VALUE]``).

    Called once when the host is built. ``target(**params)`` returns an object with
    ``cutoff(scores: np.ndarray) -> float``; candidates with ``score >= cutoff`` are kept.
    """


@hookspec
def cryopick_register_exporters() -> list[ExporterEntry]:
    """Return writers of picks in coordinate formats (``--format NAME``).

    Called once when the host is built. ``target(picks, out, **options) -> list[pathlib.Path]`` writes
    ``picks: dict[str, Particles]`` (micrograph name -> particles, original pixels) under ``out``.
    """


@hookspec
def cryopick_register_importers() -> list[ImporterEntry]:
    """Return readers of coordinate formats, chosen by file suffix or by name.

    Called once when the host is built. ``target(path) -> dict[str, Particles]`` keyed by the micrograph
    name written in the file (matched to imported micrographs by basename).
    """


@hookspec
def cryopick_register_pickers() -> list[PickerEntry]:
    """Return particle pickers (``cryopick run --picker NAME``).

    Called once when the host is built. ``target`` is a :class:`cryopick.picker.Picker` subclass.
    """


@hookspec
def cryopick_register_model_importers() -> list[ModelImporterEntry]:
    """Return readers of models trained by other programs (``cryopick import-model PICKER FILE``).

    Called once when the host is built. ``target(path) -> cryopick.picker.ModelState``: the weights (numpy
    arrays) and config of a state that the picker named by ``entry.picker`` restores with its ``load``;
    the command stores it in the project as a model of that picker. Raise
    :class:`cryopick.errors.InputError` naming the file for anything it cannot read, and never unpickle
    the file with ``pickle``/``torch.load`` (use a restricted unpickler).
    """


@hookspec
def cryopick_register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``cryopick`` command group (for example ``cryopick mae pretrain``).

    Called when the CLI starts, with the root ``click.Group``. Import heavy modules inside the command
    functions, not here.
    """
