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
