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
    ``__call__(image) -> cryopick.preprocess.Preprocessed``."""

    kind: ClassVar[str] = "preprocessor"


@attrs.frozen
class BackboneEntry(Entry):
    """A feature extractor (usually a torch ``nn.Module`` factory)."""

    kind: ClassVar[str] = "backbone"
    framework: str = "torch"


@attrs.frozen
class LossEntry(Entry):
    """A training objective (usually a torch callable)."""

    kind: ClassVar[str] = "loss"
    framework: str = "torch"


@attrs.frozen
class ThresholderEntry(Entry):
    """``target(**params)`` returns an object with ``cutoff(scores) -> float``."""

    kind: ClassVar[str] = "thresholder"


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


ENTRY_TYPES: dict[str, type[Entry]] = {
    cls.kind: cls
    for cls in (PreprocessorEntry, BackboneEntry, LossEntry, ThresholderEntry, ExporterEntry, ImporterEntry, PickerEntry)
}
