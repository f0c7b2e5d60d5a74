"""Stage 3, train: a trainable picker learns from the labelled micrographs (or loads the model it trained
earlier on the same inputs).

Inputs: preprocessing key, label set, micrograph names, the picker (name, config, seed). Output: the model
key; the model at ``/models/<key>`` (weights as datasets, attributes as in :class:`StoredModel`).
"""

from __future__ import annotations

from typing import Any, TypedDict

import attrs

from cryopick import progress
from cryopick.config import config_to_dict
from cryopick.errors import InputError
from cryopick.picker import TrainingData, TrainingItem
from cryopick.project import digest
from cryopick.stages.preprocess import preprocessed_diameter

#: Version of :class:`StoredModel`; bump when a field changes meaning.
MODEL_SCHEMA_VERSION = 1


class StoredModel(TypedDict):
    """The attributes of ``/models/<key>`` (docs/store.md, "Models"). ``config`` is the picker's own
    ``ModelState.config`` (JSON, what its ``load`` needs); the rest is written by this stage."""

    schema_version: int  # MODEL_SCHEMA_VERSION
    picker: str  # registered picker name
    settings: dict[str, Any]  # the picker's attrs config (config_to_dict) it was trained with
    config: dict[str, Any]  # ModelState.config, owned by the picker
    labels: str  # label set trained on (/labels/<labels>)
    preprocessing: str  # preprocessing key (/preprocessed/<key>)
    micrographs: list[str]  # micrographs given to train() (labelled and unlabelled)
    diameter_px: float  # particle diameter in original pixels
    seed: int


@attrs.frozen
class TrainResult:
    key: str | None  # /models/<key>; None for pickers that need no training
    reused: bool  # the model was trained earlier on the same inputs


def model_key(picker, prep_key: str, labels: dict, names: list[str]) -> str:
    """Hash of everything a model depends on: picker, settings, preprocessing, label coordinates, seed and
    micrograph names."""
    label_digest = digest({n: [p.x.round(2).tolist(), p.y.round(2).tolist()] for n, p in sorted(labels.items())})
    name = picker.context.name
    return f"{name}-" + digest([name, config_to_dict(picker.config), prep_key, label_digest, picker.context.seed,
                                sorted(names)])


def train(project, picker, prep_key: str, diameter_px: float, names: list[str],
          label_set: str = "train") -> TrainResult:
    """Train ``picker`` on ``names`` (labels from ``label_set``) or load the model trained on the same
    inputs; afterwards the picker holds the model."""
    if not picker.trainable:
        return TrainResult(None, False)
    labels = project.labels(label_set)
    key = model_key(picker, prep_key, labels, names)
    state = project.model(key)
    if state is not None:
        progress.echo(f"train: using the model trained earlier ({key})")
        picker.load(state)
        return TrainResult(key, True)
    items, unlabelled = [], []
    for name in names:
        image, factor = project.preprocessed(prep_key, name)
        if name in labels:
            items.append(TrainingItem(name, image, labels[name].scaled(factor)))
        else:
            unlabelled.append(TrainingItem(name, image, None))
    if not items and picker.needs_labels:
        raise InputError(f"picker {picker.context.name!r} needs labelled particles: give --labels FILE "
                         "(STAR, .box, Topaz .txt, CSV or cryoSPARC .cs)")
    data = TrainingData(items, preprocessed_diameter(project, prep_key, diameter_px, names), unlabelled)
    state = picker.train(data)
    if state is None:
        return TrainResult(None, False)
    info = StoredModel(schema_version=MODEL_SCHEMA_VERSION, picker=picker.context.name,
                       settings=config_to_dict(picker.config), config=state.config, labels=label_set,
                       preprocessing=prep_key, micrographs=sorted(names), diameter_px=float(diameter_px),
                       seed=picker.context.seed)
    project.put_model(key, info.pop("picker"), state, **{k: v for k, v in info.items() if k != "config"})
    project.store.compact()
    return TrainResult(key, False)


def use_model(project, picker, key: str) -> TrainResult:
    """Load the stored model ``key`` (``cryopick pick --model ID``: trained earlier, or brought in with
    ``cryopick import-model``) into ``picker`` instead of training; it must be a model of that picker."""
    found = project.store.attributes(f"/models/{key}")
    if found is None:
        known = project.store.children("/models")
        raise InputError(f"{project.store.path} has no model {key!r}; its models: {', '.join(known) or 'none'} "
                         "(cryopick import-model PICKER FILE brings in a model trained elsewhere)")
    if found.get("picker") != picker.context.name:
        raise InputError(f"model {key} belongs to picker {found.get('picker')!r}, not {picker.context.name!r}: "
                         f"pick with --picker {found.get('picker')}")
    picker.load(project.model(key))
    progress.echo(f"train: using model {key}" + (f" (imported from {found['imported_from']})"
                                                   if found.get("imported_from") else ""))
    return TrainResult(key, True)


def import_model(project, host, picker: str, path, name: str | None = None) -> str:
    """Store a model trained by another program as a model of ``picker``; returns its ID.

    The file is read by a model importer registered for ``picker`` (``cryopick_register_model_importers``;
    among several, the first whose suffixes fit the file). The ID is ``name`` or
    ``<picker>-import-<first 12 hex of the file's SHA-256>``, so importing the same file again replaces
    the same model. Pick with it with ``cryopick pick --picker PICKER --model ID``.
    """
    import hashlib
    from pathlib import Path

    from cryopick.picker import ModelState

    path = Path(path)
    host.pickers.get(picker)  # an unknown picker lists the installed ones
    importers = [r for r in host.model_importers.items() if r.entry.picker == picker]
    if not importers:
        known = sorted({r.entry.picker for r in host.model_importers.items()})
        raise InputError(f"no installed plugin imports models for picker {picker!r}; pickers with a model "
                         f"importer: {', '.join(known) or 'none'}")
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    suffix = path.suffix.lower()
    fitting = [r for r in importers if not r.entry.suffixes or suffix in r.entry.suffixes]
    if not fitting:
        wanted = ", ".join(s for r in importers for s in r.entry.suffixes)
        raise InputError(f"{path}: {picker} model importers read {wanted} files, not {suffix or 'files without suffix'}")
    entry = fitting[0].entry
    state = host.model_importers.load(entry.name)(path)
    if not isinstance(state, ModelState):
        raise TypeError(f"model importer {entry.name} returned {type(state).__name__}, not a ModelState")
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    key = name or f"{picker}-import-{sha[:12]}"
    if not key or not all(c.isalnum() or c in "-_." for c in key):
        raise InputError(f"--name {key!r}: use letters, digits, '-', '_' or '.'")
    project.put_model(key, picker, state, schema_version=MODEL_SCHEMA_VERSION, settings={}, labels="",
                      preprocessing="", micrographs=[], diameter_px=0.0, seed=0,
                      imported_from=str(path.resolve()), importer=entry.name, sha256=sha)
    project.store.compact()
    return key
