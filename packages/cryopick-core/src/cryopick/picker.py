"""The picker contract.

A picker is a class (registered with a :class:`cryopick.entries.PickerEntry`) that the pipeline drives
through four calls, always in the frame of the *preprocessed* image it asked for:

1. ``preprocessing(diameter_px, pixel_size_a)``: the preprocessing chain it wants, as
   ``[(preprocessor_name, params), ...]``; the pipeline applies it, caches the result in the store and
   converts labels into that frame.
2. ``train(data) -> ModelState | None``: learn from labelled micrographs (few-shot exemplars, sparse
   PU labels, or full labels). Classical pickers return ``None``.
3. ``load(state)``: restore a trained model (from the store, possibly in a later process).
4. ``score(image, diameter_px) -> Particles``: candidate centres and scores for one micrograph; the
   pipeline maps them back to original pixels, thresholds and exports them.

Model state is arrays plus a JSON config (stored in HDF5), never a pickle.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs
import numpy as np

from cryopick.particles import Particles


@attrs.define
class PickerContext:
    """What the pipeline gives a picker besides its config: the device, the seed, the plugin host (to
    build registered backbones and losses by name) and the name the picker is registered under."""

    device: str = "cpu"
    seed: int = 0
    host: Any = None  # cryopick.host.PluginHost; None = a host with every installed plugin, built when needed
    progress: bool = True
    name: str = ""

    def plugin_host(self):
        """The plugin host (built with every installed plugin the first time, when none was given)."""
        if self.host is None:
            from cryopick.host import build_host

            self.host = build_host()
        return self.host

    def registry(self, kind: str):
        """The host's :class:`~cryopick.host.Registry` of ``kind`` (``"backbone"``, ``"loss"``, ...)."""
        return self.plugin_host().registries[kind]

    def load(self, kind: str, name: str) -> Any:
        """The registered component ``name`` of ``kind`` (its imported target), for example
        ``context.load("backbone", config.backbone)(**params)``. An unknown name is a
        :class:`~cryopick.errors.UnknownComponentError` listing the installed ones."""
        return self.registry(kind).load(name)


@attrs.define
class TrainingItem:
    """One preprocessed micrograph with (possibly partial) labels, in preprocessed pixels."""

    name: str
    image: np.ndarray
    labels: Particles | None = None


@attrs.define
class TrainingData:
    items: list[TrainingItem]
    diameter_px: float  # particle diameter in preprocessed pixels
    unlabelled: list[TrainingItem] = attrs.Factory(list)  # micrographs without labels (pre-training, PU)


@attrs.define
class ModelState:
    """A trained model: named float arrays (weights) and a JSON-serialisable config."""

    arrays: dict[str, np.ndarray]
    config: dict


class Picker:
    """Base class of pickers. Subclasses set ``Config`` (an attrs class whose defaults are the paper's)
    and may set ``presets``; ``self.config`` is an instance of ``Config``."""

    Config: ClassVar[type]
    presets: ClassVar[dict[str, dict]] = {}
    #: ``--threshold`` spec used when the user gives none. A trained model may set its own on the
    #: instance in train()/load() (for example a cut-off calibrated on held-out labels); the pipeline
    #: reads ``self.picker.default_threshold`` after training.
    default_threshold: str = "otsu"
    #: False for classical pickers that need no training (train() is not called).
    trainable: ClassVar[bool] = True
    #: True when train() cannot work without labelled particles (the pipeline then asks for --labels).
    needs_labels: ClassVar[bool] = True
    #: How many labelled particles the built-in demo gives it: None = all truth on the training
    #: micrographs; an int = that many exemplars from one micrograph (few-shot pickers); 0 = no labels
    #: (zero-shot pickers). The pipeline reads it on the instance, so a property may decide by the settings.
    demo_labels: ClassVar[int | None] = None
    #: The config field that holds the expected particles per micrograph, set by the generic
    #: ``--particles-per-micrograph N`` of ``run``/``train``/``pick`` (None: the picker takes no count).
    count_setting: ClassVar[str | None] = None

    def __init__(self, config: Any, context: PickerContext | None = None) -> None:
        self.config = config
        self.context = context or PickerContext()

    @classmethod
    def default_preset(cls, device: str) -> str | None:
        """Preset applied when the user names none (for example a small model on CPU)."""
        return None

    def preprocessing(self, diameter_px: float, pixel_size_a: float | None) -> list[tuple[str, dict]]:
        """Preprocessing chain for micrographs whose particles are ``diameter_px`` wide (original
        pixels). Default: downsample so particles are about 32 px, then normalise."""
        factor = max(1.0, diameter_px / 32.0)
        return [("downsample", {"factor": round(factor, 4)}), ("normalize", {})]

    def train(self, data: TrainingData) -> ModelState | None:
        return None

    def load(self, state: ModelState) -> None:
        """Restore the model from ``state`` (as returned by :meth:`train`)."""

    def score(self, image: np.ndarray, diameter_px: float) -> Particles:
        raise NotImplementedError

    def facts(self) -> dict[str, Any]:
        """What the run summary should tell about the trained or loaded model (for example an estimated
        particle count), as ``{label: value}``; values are JSON-serialisable."""
        return {}
