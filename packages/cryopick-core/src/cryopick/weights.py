"""Model weights files: named arrays in HDF5 plus a JSON config, never pickles.

Used for checkpoints that live outside a project store (for example ``cryopick mae pretrain``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np

from cryopick.errors import InputError
from cryopick.picker import ModelState

WEIGHTS_FORMAT = "cryopick-weights/1"


def save_weights(path: str | Path, state: ModelState) -> Path:
    """Write ``state`` atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["format"] = WEIGHTS_FORMAT
        f.attrs["config"] = json.dumps(state.config)
        group = f.create_group("arrays")
        for name, array in state.arrays.items():
            group.create_dataset(name.replace("/", "\\"), data=np.asarray(array))
    os.replace(tmp, path)
    return path


def load_weights(path: str | Path) -> ModelState:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: weights file not found")
    try:
        with h5py.File(path, "r") as f:
            if f.attrs.get("format") != WEIGHTS_FORMAT:
                raise InputError(f"{path}: not a cryopick weights file (format attribute is {f.attrs.get('format')!r})")
            config = json.loads(f.attrs["config"])
            arrays = {k.replace("\\", "/"): f["arrays"][k][()] for k in f["arrays"]}
    except OSError as exc:
        raise InputError(f"{path}: cannot read weights ({exc}); is it an HDF5 file written by cryopick?") from exc
    return ModelState(arrays, config)


def arrays_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 (hex) of named arrays (names and bytes, in name order): tells whether two models' weights are
    the same, for cache keys and resumed trainings."""
    h = hashlib.sha256()
    for k in sorted(arrays):
        h.update(k.encode())
        h.update(np.ascontiguousarray(arrays[k]).tobytes())
    return h.hexdigest()
