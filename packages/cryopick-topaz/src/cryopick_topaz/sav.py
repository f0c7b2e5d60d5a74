"""Reading topaz-em ``.sav`` model files without running the code they could contain.

A ``.sav`` is a ``torch.save`` file: either the zip archive of torch >= 1.6 (``<archive>/data.pkl``, the
pickled object, plus ``<archive>/data/<key>``, one raw storage per key), or the older "legacy" stream
(pickles of a magic number, the protocol version and system information, then the object, then the
list of storage keys, then each storage as an int64 element count and the raw bytes). The storage
references in the object's pickle are persistent ids ``("storage", storage_type, key, location,
numel[, view_metadata])``. (Facts from torch/serialization.py; topaz-em 0.3.20 saves trained models
with ``torch.save(classifier, path)`` and ships its pretrained detectors as legacy state dicts.)

Pickles can call any importable function; this module never lets them. :class:`RestrictedUnpickler`
resolves only the globals a model file needs, and none of them to the real object:

* ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_tensor`` / ``_rebuild_parameter`` /
  ``_rebuild_parameter_with_state`` become functions of this module that only record where an array's
  values lie (:class:`LazyArray`); ``torch.<Dtype>Storage`` become dtypes;
* ``collections.OrderedDict`` and ``builtins.set`` are themselves (containers, no code);
* the torch and topaz module classes a Topaz model is made of (``torch.nn.modules.*`` and
  ``topaz.model.*`` classes listed in :data:`MODULE_CLASSES`) become :class:`Record` objects that only
  keep the pickled attributes, which :mod:`cryopick_topaz.import_model` reads.

Anything else (``os.system``, ``builtins.eval``, an unknown class...) stops loading with an
:class:`~cryopick.errors.InputError` naming the file and the refused global. Neither torch nor topaz is
imported: the arrays are read with numpy.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cryopick.errors import InputError

#: torch's legacy-format magic number and protocol version (torch/serialization.py)
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

#: ``torch.<Name>`` storage classes -> numpy dtype of their elements (little endian, as torch writes).
STORAGE_DTYPES = {
    "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2", "BFloat16Storage": "<u2",
    "LongStorage": "<i8", "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}

#: Module classes a Topaz detector is pickled with (topaz-em 0.3.20: topaz/model/classifier.py,
#: features/resnet.py, features/basic.py, generative.py; and the torch.nn modules they hold).
MODULE_CLASSES = {
    "topaz.model.classifier": {"LinearClassifier"},
    "topaz.model.features.resnet": {"ResNet", "ResNet6", "ResNet8", "ResNet16", "BasicConv", "ResidA", "MaxPool"},
    "topaz.model.features.basic": {"BasicConv", "Conv127", "Conv63"},
    "topaz.model.generative": {"ConvGenerator"},  # the autoencoder's decoder, not used for picking
    "torch.nn.modules.conv": {"Conv2d", "ConvTranspose2d"},
    "torch.nn.modules.batchnorm": {"BatchNorm2d"},
    "torch.nn.modules.activation": {"ReLU", "PReLU", "LeakyReLU", "Sigmoid", "Tanh"},
    "torch.nn.modules.container": {"Sequential", "ModuleList"},
    "torch.nn.modules.dropout": {"Dropout", "Dropout2d"},
    "torch.nn.modules.pooling": {"MaxPool2d", "AvgPool2d"},
    "torch.nn.modules.linear": {"Identity"},
}


class Record:
    """A pickled object of an allowed module class, kept as data: ``qualname`` and its attributes."""

    qualname = ""

    def __init__(self, *args) -> None:  # only reached by a REDUCE of the class itself
        self.__dict__["_args"] = args

    def __setstate__(self, state) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slots state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f"unexpected state of {self.qualname}: {type(state).__name__}")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<{self.qualname}>"


_RECORD_CLASSES: dict[str, type] = {}


def _record_class(module: str, name: str) -> type:
    qualname = f"{module}.{name}"
    if qualname not in _RECORD_CLASSES:
        _RECORD_CLASSES[qualname] = type(name, (Record,), {"qualname": qualname, "__module__": __name__})
    return _RECORD_CLASSES[qualname]


class Storage:
    """A storage named by a persistent id; ``data`` (raw bytes) is filled in once read."""

    def __init__(self, key: str, dtype: str, numel: int) -> None:
        self.key, self.dtype, self.numel = key, np.dtype(dtype), int(numel)
        self.data: bytes | None = None
        self.base: tuple[Storage, int] | None = None  # legacy views: (root storage, element offset)

    def array(self) -> np.ndarray:
        if self.base is not None:
            root, offset = self.base
            return root.array()[offset: offset + self.numel]
        if self.data is None:
            raise InputError(f"storage {self.key} has no data in the file")
        values = np.frombuffer(self.data, dtype=self.dtype)
        if values.size < self.numel:
            raise InputError(f"storage {self.key} holds {values.size} values, {self.numel} expected")
        return values[: self.numel]


class LazyArray:
    """What ``_rebuild_tensor_v2`` made: a strided view of a storage, read once storages are loaded."""

    def __init__(self, storage: Storage, offset: int, size, stride) -> None:
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError("a tensor that does not refer to a storage")
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def numpy(self) -> np.ndarray:
        flat = self.storage.array()
        if not self.size:
            return flat[self.offset: self.offset + 1].reshape(()).copy()
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
        if self.offset < 0 or any(s < 0 for s in self.stride) or any(n < 0 for n in self.size) or last >= flat.size:
            raise InputError(f"a tensor of shape {self.size} lies outside its storage of {flat.size} values")
        if int(np.prod(self.size, dtype=np.float64)) > flat.size:  # model weights never repeat values
            raise InputError(f"a tensor of shape {self.size} has more values than its storage ({flat.size})")
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(flat[self.offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride), writeable=False)
        out = np.array(view)
        if self.storage.dtype == np.dtype("<u2"):  # bfloat16: the high half of a float32
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out


def _rebuild_tensor(storage, storage_offset, size, stride, *_):
    return LazyArray(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *_):
    return data


ALLOWED_FUNCTIONS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("__builtin__", "set"): set,
}


class RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, module: str, name: str) -> None:
        super().__init__(f"{module}.{name}")
        self.qualname = f"{module}.{name}"


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the globals listed in the module docs (no code runs).

    ``storages`` collects the storages named by persistent ids, by key.
    """

    def __init__(self, file, storages: dict[str, Storage]) -> None:
        super().__init__(file, encoding="latin1")
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED_FUNCTIONS:
            return ALLOWED_FUNCTIONS[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return ("dtype", STORAGE_DTYPES[name])
        if name in MODULE_CLASSES.get(module, ()):
            return _record_class(module, name)
        raise RefusedGlobal(module, name)

    def persistent_load(self, pid) -> Any:
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module" and len(pid) >= 2 and isinstance(pid[1], type) and issubclass(pid[1], Record):
            return pid[1]  # legacy files record each module class (and its source): the class itself
        if kind != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        view = pid[5] if len(pid) == 6 else None
        if not (isinstance(storage_type, tuple) and storage_type[0] == "dtype"):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        key = str(key)
        if key not in self.storages:
            self.storages[key] = Storage(key, storage_type[1], numel)
        if view is None:
            return self.storages[key]
        view_key, offset, view_size = view
        view_key = str(view_key)
        if view_key not in self.storages:
            self.storages[view_key] = Storage(view_key, storage_type[1], view_size)
            self.storages[view_key].base = (self.storages[key], int(offset))
        return self.storages[view_key]


def _materialise(obj: Any, seen: set[int] | None = None) -> Any:
    """Replace every :class:`LazyArray` in ``obj`` (containers and records, in place) by its numpy array."""
    seen = set() if seen is None else seen
    if isinstance(obj, LazyArray):
        return obj.numpy()
    if id(obj) in seen:
        return obj
    seen.add(id(obj))
    if isinstance(obj, dict):
        for k in list(obj):
            obj[k] = _materialise(obj[k], seen)
    elif isinstance(obj, list):
        obj[:] = [_materialise(v, seen) for v in obj]
    elif isinstance(obj, tuple):
        return tuple(_materialise(v, seen) for v in obj)
    elif isinstance(obj, Record):
        for k, v in list(obj.__dict__.items()):
            obj.__dict__[k] = _materialise(v, seen)
    return obj


def _refused(path: Path, exc: RefusedGlobal) -> InputError:
    return InputError(
        f"{path}: refused to load: the file asks for {exc.qualname}, which is not part of a Topaz model "
        "(only tensors and topaz/torch module classes are read); it may be a malicious file")


def _unpickle(path: Path, file, storages: dict[str, Storage]) -> Any:
    try:
        return RestrictedUnpickler(file, storages).load()
    except RefusedGlobal as exc:
        raise _refused(path, exc) from None
    except InputError:
        raise
    except Exception as exc:  # truncated or malformed pickles raise many kinds
        raise InputError(f"{path}: is not a readable torch .sav file ({type(exc).__name__}: {exc})") from None


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise InputError(f"{path}: is a zip archive but not a torch.save file (no <archive>/data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() not in (b"little", b""):
            raise InputError(f"{path}: was written on a big-endian machine, which is not supported")
        storages: dict[str, Storage] = {}
        obj = _unpickle(path, io.BytesIO(archive.read(pickles[0])), storages)
        for key, storage in storages.items():
            if storage.base is not None:
                continue
            member = f"{prefix}data/{key}"
            if member not in names:
                raise InputError(f"{path}: lacks the storage {member}")
            storage.data = archive.read(member)
    return obj


def _load_legacy(path: Path) -> Any:
    storages: dict[str, Storage] = {}
    with open(path, "rb") as f:
        header = [_unpickle(path, f, {}) for _ in range(3)]
        if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
            raise InputError(f"{path}: is not a torch .sav file (not a zip archive, and no torch magic number)")
        if isinstance(header[2], dict) and header[2].get("little_endian") is False:
            raise InputError(f"{path}: was written on a big-endian machine, which is not supported")
        obj = _unpickle(path, f, storages)
        keys = _unpickle(path, f, {})
        if not isinstance(keys, list):
            raise InputError(f"{path}: malformed storage list")
        for key in keys:
            storage = storages.get(str(key))
            if storage is None:
                raise InputError(f"{path}: storage {key} is listed but not used")
            count = np.frombuffer(f.read(8), dtype="<i8")
            if count.size != 1 or count[0] < 0:
                raise InputError(f"{path}: truncated at storage {key}")
            nbytes = int(count[0]) * storage.dtype.itemsize
            storage.data = f.read(nbytes)
            if len(storage.data) != nbytes:
                raise InputError(f"{path}: truncated at storage {key}")
    return obj


def load_sav(path: str | Path) -> Any:
    """The object saved in a torch ``.sav``/``.pt`` file, read with :class:`RestrictedUnpickler`.

    Parameters
    ----------
    path : str or Path
        A zip-archive or legacy torch file.

    Returns
    -------
    object
        Dicts, lists, tuples, numbers, strings, numpy arrays (the tensors) and :class:`Record` objects
        (the module instances, with their pickled attributes).

    Raises
    ------
    InputError
        Missing or malformed file, or a pickle asking for a global outside the allowed list (the message
        names the file and the global); nothing of the file is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: model file not found")
    obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    return _materialise(obj)
