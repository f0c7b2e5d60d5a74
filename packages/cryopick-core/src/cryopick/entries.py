"""Registry entries: what a plugin's registration hooks return.

Each entry names a component and points at it with a lazy ``"package.module:attr"`` target, so that
listing plugins never imports heavy code (torch). The target is imported when the component is used.
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import attrs


def _check_target(instance, attribute, value: str) -> None:
    module, _, attr = value.partition(":")
    if not module or not attr:
        raise ValueError(f"{attribute.name} must look like 'package.module:attr', got {value!r}")


def _check_name(instance, attribute, value: str) -> None:
    if not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ValueError(f"component name must be non-empty and use letters, digits, '-', '_' or '.': {value!r}")


@attrs.frozen
class Entry:
    """Base of all registry entries.

    Parameters
    ----------
    name : str
        The name users type (``--picker NAME``); unique per kind.
    target : str
        ``"package.module:attr"``: the class or function that implements it, imported lazily.
    summary : str
        One line shown by ``cryopick plugins``.
    """

    kind: ClassVar[str] = "component"

    name: str = attrs.field(validator=_check_name)
    target: str = attrs.field(validator=_check_target)
    summary: str = ""

    def load(self) -> Any:
        """Import and return the target object."""
        module_name, _, attr_path = self.target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            obj = getattr(obj, part)
        return obj


@attrs.frozen
class PreprocessorEntry(Entry):
    """An image transform: ``target(**params)`` returns an object with
    ``__call__(image) -> cryopick.preprocess.Preprocessed``.

    ``pixel_size``: when True the pipeline also passes ``pixel_size_a=`` (Å per pixel of the micrograph,
    or None) to ``target`` (core's ``downsample`` uses it to downsample to a target pixel size).
    """

    kind: ClassVar[str] = "preprocessor"
    pixel_size: bool = False


@attrs.frozen
class BackboneEntry(Entry):
    """A feature extractor (usually a torch ``nn.Module`` factory)."""

    kind: ClassVar[str] = "backbone"
    framework: str = "torch"


#: What a loss is called with, by ``LossEntry.inputs`` (see docs/hooks.md).
LOSS_INPUTS = {
    # topaz and any positive-unlabelled classifier: loss(positive_logits, unlabelled_logits, pi) -> scalar
    "pu-logits": "(positive_logits: Tensor[n_p], unlabelled_logits: Tensor[n_u], pi: float) -> scalar Tensor",
    # CryoMAE's self-cross similarity: loss(exemplar_features, unlabelled_features) -> scalar
    "features": "(exemplar_features: Tensor[m, D], unlabelled_features: Tensor[n, D]) -> scalar Tensor",
    # HydraPicker's focal and L1 losses: loss(prediction, target), tensors of one shape (logits and 0/1
    # targets, or predicted and true centres)
    "dense": "(prediction: Tensor[n, ...], target: Tensor[n, ...]) -> scalar Tensor",
    # HydraPicker's bias loss: loss(dataset_heads, generic_head), flattened head weights
    "head-weights": "(dataset_heads: Tensor[K, P], generic_head: Tensor[P]) -> scalar Tensor",
}


@attrs.frozen
class LossEntry(Entry):
    """A training objective (usually a torch callable): ``target(**params)`` returns the loss.

    ``inputs`` says what the loss is called with (a key of :data:`LOSS_INPUTS`): ``"pu-logits"`` (the
    default; what ``topaz`` accepts with ``--set loss=NAME``), ``"features"`` (CryoMAE's SCS losses), ``"dense"``
    or ``"head-weights"`` (HydraPicker's detection and bias losses).
    """

    kind: ClassVar[str] = "loss"
    framework: str = "torch"
    inputs: str = attrs.field(default="pu-logits", validator=attrs.validators.in_(tuple(LOSS_INPUTS)))


@attrs.frozen
class ThresholderEntry(Entry):
    """``target(**params)`` returns an object with ``cutoff(scores) -> float``.

    ``parameter`` is the keyword that receives ``VALUE`` of ``--threshold NAME:VALUE``, converted with
    ``parameter_type`` (``"float"`` or ``"int"``). ``scope`` is where the cut-off is taken by default:
    ``"micrograph"`` (on each micrograph's scores) or ``"dataset"`` (on all scores together);
    ``--threshold-scope`` overrides it.
    """

    kind: ClassVar[str] = "thresholder"
    parameter: str = "value"
    parameter_type: str = attrs.field(default="float", validator=attrs.validators.in_(("float", "int")))
    scope: str = attrs.field(default="dataset", validator=attrs.validators.in_(("micrograph", "dataset")))


@attrs.frozen
class ExporterEntry(Entry):
    """A writer of picks: ``target(picks, out, **options) -> list[Path]`` (see ``cryopick.io.coords``)."""

    kind: ClassVar[str] = "exporter"
    suffix: str = ""


@attrs.frozen
class ImporterEntry(Entry):
    """A reader of coordinates: ``target(path) -> dict[str, Particles]`` keyed by micrograph name."""

    kind: ClassVar[str] = "importer"
    suffixes: tuple[str, ...] = attrs.field(default=(), converter=tuple)


@attrs.frozen
class PickerEntry(Entry):
    """A particle picker: ``target`` is a :class:`cryopick.picker.Picker` subclass."""

    kind: ClassVar[str] = "picker"
    requires_torch: bool = False


@attrs.frozen
class ModelImporterEntry(Entry):
    """A reader of models trained by another program, for one picker (``cryopick import-model PICKER FILE``):
    ``target(path) -> cryopick.picker.ModelState``, a state that picker's ``load`` accepts. ``picker`` is
    the registered name of that picker; ``suffixes`` are the file suffixes it reads (``(".sav",)``), used
    to choose among several importers of one picker (empty: any file)."""

    kind: ClassVar[str] = "model_importer"
    picker: str = attrs.field(default="", validator=_check_name)
    suffixes: tuple[str, ...] = attrs.field(default=(), converter=tuple)


ENTRY_TYPES: dict[str, type[Entry]] = {
    cls.kind: cls
    for cls in (PreprocessorEntry, BackboneEntry, LossEntry, ThresholderEntry, ExporterEntry, ImporterEntry, PickerEntry,
                ModelImporterEntry)
}
