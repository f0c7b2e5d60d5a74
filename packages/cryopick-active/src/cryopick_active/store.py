"""What cryopick-active keeps in the project store (docs/store.md, "Active learning"):

``/active/features/<key>/<name>``
    per-pixel features of a preprocessed micrograph (float16 ``(C, H, W)`` in an array file); ``<key>`` hashes
    the feature provider (kind and weights) and the preprocessing key, and the record holds the micrograph's
    checksum, so that rounds and later sessions do not recompute them.
``/labels/active/<name>``
    the answered labels (original pixels; score 1 = particle, 0 = background).
``/active/session``
    attributes: ``features``, ``preprocessing``, ``feature_key``, ``model`` (the latest model's key),
    ``rounds`` (every round's report so far), ``updated``.
"""

from __future__ import annotations

import time

import numpy as np

from cryopick.particles import Particles
from cryopick.project import digest
from cryopick.store import Record

SESSION = "/active/session"


def feature_key(picker, prep_key: str) -> str:
    return digest([picker.feature_key(), prep_key])


def has_features(project, key: str, name: str) -> bool:
    return project._current(f"/active/features/{key}/{name}", name)


def put_features(project, key: str, name: str, features: np.ndarray, identity: dict) -> None:
    mic = project.micrograph(name)
    project.store.write({f"/active/features/{key}/{name}": Record(
        {"features": np.asarray(features, dtype=np.float16)},
        {"checksum": mic.checksum if mic else "", "provider": identity, "shape": list(features.shape)},
        external=True)})


def get_features(project, key: str, name: str) -> np.ndarray:
    return np.asarray(project.store.get(f"/active/features/{key}/{name}").arrays["features"], dtype=np.float32)


def put_labels(project, labels_pre: dict[str, Particles], factors: dict[str, tuple[float, float]],
               label_set: str, source: str) -> dict[str, Particles]:
    """Store labels given in preprocessed pixels as original pixels; returns what was stored."""
    original = {n: p.scaled((1 / factors[n][0], 1 / factors[n][1])) for n, p in labels_pre.items() if len(p)}
    project.put_labels(label_set, original, source)
    return original


def session_info(project) -> dict:
    return dict(project.store.attributes(SESSION) or {})


def put_session(project, **attributes) -> None:
    info = session_info(project)
    info.update(attributes)
    info["updated"] = time.time()
    project.store.put(SESSION, **info)
