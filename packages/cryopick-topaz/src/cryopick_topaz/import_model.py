"""Models trained with topaz-em, as cryopick-topaz networks (``cryopick import-model topaz model.sav``,
``--set checkpoint=model.sav``).

The file is read by :func:`cryopick_topaz.sav.load_sav` (a restricted unpickler: no code of the file
runs, topaz is not imported). Two kinds of file are understood:

* **whole modules**, what ``topaz train`` saves (``torch.save(classifier, path)``): a
  ``topaz.model.classifier.LinearClassifier`` whose ``features`` is a ``topaz.model.features.resnet``
  ``ResNet8``/``ResNet16`` (``features.features`` is a ``Sequential`` of ``BasicConv`` (conv, bn?, act)
  and ``ResidA`` (proj?, conv0, bn0?, act0, conv1, bn1?, act1) blocks) or a
  ``topaz.model.features.basic.BasicConv`` (conv31/63/127: a ``Sequential`` of ``Conv2d``,
  ``BatchNorm2d``?, activation, per layer) and whose ``classifier`` is a 1x1 ``Conv2d``. Strides,
  dilations, batch normalisation and the activation are read from the pickled attributes.
* **state dicts** (topaz-em's bundled ``pretrained/detector/*.sav``, or ``torch.save(model.state_dict())``):
  keys ``features.features.<i>.<layer>.<weight|bias|...>`` and ``classifier.<weight|bias>``. Strides and
  dilations are not stored, so the architecture is recognised from the blocks: ResNet8 is
  ``conv7 s2, ResidA d2, ResidA d2 s2 (proj), ResidA d2, conv5``; ResNet16 is ``conv7, ResidA s2,
  3 x ResidA, ResidA s2 (proj), 2 x ResidA, conv5`` (topaz-em 0.3.20 ``model/features/resnet.py``);
  a chain of plain convolutions is topaz's ``BasicConv``, stride 2 but the last. The activation is PReLU
  when a layer has slopes, else ReLU (topaz's ResNet default; its pretrained detectors are built with
  ``bn=False``, ``model/factory.py``).

topaz-em's residual block adds the shortcut before batch normalisation (``act1(bn1(conv1(h) +
shortcut))``); the rebuilt blocks do the same (``norm_after_add``). Dropout is the identity when
picking and is dropped; the autoencoder's decoder (``generative``) is not needed for picking and is
ignored. Max-pooling models are refused.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from cryopick.errors import InputError
from cryopick_topaz.sav import Record, load_sav

_ACTIVATIONS = {"torch.nn.modules.activation.ReLU": "relu", "torch.nn.modules.activation.PReLU": "prelu"}
_RESNET = "topaz.model.features.resnet."
_BASIC = "topaz.model.features.basic."


def _modules(record: Record) -> dict[str, Any]:
    return dict(record.__dict__.get("_modules") or {})


def _tensors(record: Record, prefix: str, out: dict[str, np.ndarray]) -> None:
    """Parameters and buffers of ``record`` and its children, under state-dict names."""
    for group in ("_parameters", "_buffers"):
        for name, value in (record.__dict__.get(group) or {}).items():
            if value is not None:
                out[f"{prefix}{name}"] = np.asarray(value)
    for name, child in _modules(record).items():
        if isinstance(child, Record):
            _tensors(child, f"{prefix}{name}.", out)


def _pair(value) -> int:
    return int(value[0] if isinstance(value, (tuple, list)) else value)


class _Fail(Exception):
    pass


# ------------------------------------------------------------------------------------------ whole modules
def _activation_of(record: Record | None) -> tuple[str, int | None]:
    if record is None:
        raise _Fail("a block has no activation")
    kind = _ACTIVATIONS.get(record.qualname)
    if kind is None:
        raise _Fail(f"activation {record.qualname} is not supported (ReLU or PReLU)")
    if kind == "prelu":
        return kind, int(np.asarray(record._parameters["weight"]).size)
    return kind, None


def _resnet_layers(seq: Record) -> list[tuple[str, dict]]:
    """(topaz prefix, layer spec) of a ResNet's ``features`` Sequential."""
    layers = []
    for index, block in _modules(seq).items():
        name = block.qualname
        prefix = f"features.features.{index}."
        if name.endswith(("Dropout", "Dropout2d")):
            continue
        if name == _RESNET + "BasicConv":
            mods = _modules(block)
            conv = mods["conv"]
            act, slopes = _activation_of(mods.get("act"))
            layers.append((prefix, dict(kind="conv", nin=int(conv.in_channels), nout=int(conv.out_channels),
                                        kernel=_pair(conv.kernel_size), stride=int(block.stride),
                                        dilation=int(block.og_dilation), bn="bn" in mods, activation=act,
                                        prelu=slopes)))
        elif name == _RESNET + "ResidA":
            mods = _modules(block)
            conv0, conv1 = mods["conv0"], mods["conv1"]
            act0, slopes0 = _activation_of(mods.get("act0"))
            act1, slopes1 = _activation_of(mods.get("act1"))
            if act0 != act1:
                raise _Fail("a residual block with two different activations")
            fill = int(block.__dict__.get("dilation", 1)) or 1  # > 1 when saved in fill mode
            layers.append((prefix, dict(kind="resid", nin=int(conv0.in_channels), nhidden=int(conv0.out_channels),
                                        nout=int(conv1.out_channels), dilation=_pair(conv1.dilation) // fill,
                                        stride=int(block.stride), bn=bool(block.bn), activation=act0,
                                        prelu0=slopes0, prelu=slopes1, norm_after_add=True)))
        else:
            raise _Fail(f"layer {index} is a {name}, which cryopick cannot rebuild (max-pooling models are "
                        "not supported)")
    return layers


def _basic_layers(seq: Record, strides: list[int]) -> list[tuple[str, dict]]:
    """(topaz prefix, layer spec) of topaz's ``BasicConv`` Sequential: Conv2d, BatchNorm2d?, activation."""
    children = list(_modules(seq).items())
    if len(strides) < len(children):
        strides = strides + [1] * (len(children) - len(strides))
    layers: list[tuple[str, dict]] = []
    prefixes: dict[str, str] = {}
    for (index, mod), stride in zip(children, strides):
        name = mod.qualname
        if name == "torch.nn.modules.conv.Conv2d":
            prefixes = {"conv": f"features.features.{index}."}
            layers.append((prefixes, dict(kind="conv", nin=int(mod.in_channels), nout=int(mod.out_channels),
                                          kernel=_pair(mod.kernel_size), stride=int(stride), dilation=1, bn=False,
                                          activation="", prelu=None)))
        elif not layers:
            raise _Fail(f"layer {index} ({name}) comes before the first convolution")
        elif name == "torch.nn.modules.batchnorm.BatchNorm2d":
            layers[-1][1]["bn"] = True
            prefixes["bn"] = f"features.features.{index}."
        elif name in _ACTIVATIONS:
            layers[-1][1]["activation"], layers[-1][1]["prelu"] = _activation_of(mod)
            prefixes["act"] = f"features.features.{index}."
        elif name.endswith(("Dropout", "Dropout2d")):
            continue
        else:
            raise _Fail(f"layer {index} is a {name}, which cryopick cannot rebuild (pooling is not supported)")
    for _, spec in layers:
        if not spec["activation"]:
            raise _Fail("a convolution without an activation")
    return layers


def _from_module(model: Record) -> tuple[list, dict[str, np.ndarray], str]:
    if model.qualname != "topaz.model.classifier.LinearClassifier":
        raise _Fail(f"the file holds a {model.qualname}, not a topaz LinearClassifier")
    mods = _modules(model)
    features = mods.get("features")
    if not isinstance(features, Record) or "classifier" not in mods:
        raise _Fail("the classifier has no features or no classifier layer")
    if features.__dict__.get("pooling") or features.__dict__.get("filled") or features.__dict__.get("pad"):
        raise _Fail("the model was saved in fill mode or with pooling")
    seq = _modules(features).get("features")
    if features.qualname.startswith(_RESNET):
        layers, name = _resnet_layers(seq), features.qualname.rsplit(".", 1)[-1].lower()
    elif features.qualname.startswith(_BASIC):
        layers = _basic_layers(seq, [int(s) for s in features.__dict__.get("strides", [])])
        name = f"conv{_receptive_field(layers)}"
    else:
        raise _Fail(f"feature extractor {features.qualname} is not supported")
    tensors: dict[str, np.ndarray] = {}
    _tensors(features, "features.", tensors)
    _tensors(mods["classifier"], "classifier.", tensors)
    return layers, tensors, name


# ----------------------------------------------------------------------------------------- state dicts
_KEY = re.compile(r"^features\.features\.(\d+)\.(.+)$")
# topaz-em 0.3.20 model/features/resnet.py: (kind, stride, dilation) of each block, pooling=None.
_RESNET_PLANS = {
    "resnet8": [("conv", 2, 1), ("resid", 1, 2), ("resid", 2, 2), ("resid", 1, 2), ("conv", 1, 1)],
    "resnet16": [("conv", 1, 1), ("resid", 2, 1), ("resid", 1, 1), ("resid", 1, 1), ("resid", 1, 1),
                 ("resid", 2, 1), ("resid", 1, 1), ("resid", 1, 1), ("conv", 1, 1)],
}


def _from_state_dict(state: dict) -> tuple[list, dict[str, np.ndarray], str]:
    tensors = {str(k): np.asarray(v) for k, v in state.items()}
    if "classifier.weight" not in tensors:
        raise _Fail("a state dict without classifier.weight is not a topaz LinearClassifier")
    blocks: dict[int, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        m = _KEY.match(key)
        if m:
            blocks.setdefault(int(m.group(1)), {})[m.group(2)] = value
        elif not key.startswith("classifier.") and not key.startswith("generative."):
            raise _Fail(f"unexpected key {key}")
    if not blocks:
        raise _Fail("no features.features.* weights")
    order = sorted(blocks)
    if all(k.split(".")[0] in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
           for b in blocks.values() for k in b):
        return _basic_from_state(blocks, order), tensors, ""
    kinds = ["resid" if "conv0.weight" in blocks[i] else "conv" for i in order]
    plan_name = next((n for n, plan in _RESNET_PLANS.items() if [p[0] for p in plan] == kinds), None)
    if plan_name is None:
        raise _Fail(f"its blocks ({', '.join(kinds)}) are neither topaz's ResNet8 nor ResNet16")
    layers = []
    for i, (kind, stride, dilation) in zip(order, _RESNET_PLANS[plan_name]):
        b, prefix = blocks[i], f"features.features.{i}."
        if kind == "conv":
            w = b["conv.weight"]
            layers.append((prefix, dict(kind="conv", nin=w.shape[1], nout=w.shape[0], kernel=w.shape[2], stride=stride,
                                        dilation=dilation, bn="bn.weight" in b or "bn.running_mean" in b,
                                        activation="prelu" if "act.weight" in b else "relu",
                                        prelu=b["act.weight"].size if "act.weight" in b else None)))
        else:
            w0, w1 = b["conv0.weight"], b["conv1.weight"]
            prelu = "act0.weight" in b
            layers.append((prefix, dict(kind="resid", nin=w0.shape[1], nhidden=w0.shape[0], nout=w1.shape[0],
                                        dilation=dilation, stride=stride, bn="bn0.running_mean" in b,
                                        activation="prelu" if prelu else "relu",
                                        prelu0=b["act0.weight"].size if prelu else None,
                                        prelu=b["act1.weight"].size if prelu else None, norm_after_add=True)))
    return layers, tensors, plan_name


def _basic_from_state(blocks: dict[int, dict[str, np.ndarray]], order: list[int]) -> list:
    layers: list = []
    for i in order:
        b, prefix = blocks[i], f"features.features.{i}."
        w = b.get("weight")
        if w is not None and w.ndim == 4:
            layers.append(({"conv": prefix}, dict(kind="conv", nin=w.shape[1], nout=w.shape[0], kernel=w.shape[2],
                                                  stride=2, dilation=1, bn=False, activation="relu", prelu=None)))
        elif not layers:
            raise _Fail(f"layer {i} comes before the first convolution")
        elif "running_mean" in b:
            layers[-1][1]["bn"] = True
            layers[-1][0]["bn"] = prefix
        elif w is not None and w.ndim == 1:
            layers[-1][1]["activation"], layers[-1][1]["prelu"] = "prelu", int(w.size)
            layers[-1][0]["act"] = prefix
    if layers:
        layers[-1][1]["stride"] = 1  # topaz BasicConv: stride 2 but the last layer
    return layers


# ----------------------------------------------------------------------------------------- our names
def _receptive_field(layers: list) -> int:
    rf, jump = 1, 1
    for _, spec in layers:
        if spec["kind"] == "conv":
            rf += (spec["kernel"] - 1) * spec["dilation"] * jump
        else:
            rf += 2 * jump + 2 * spec["dilation"] * jump
        jump *= spec["stride"]
    return rf


_BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _rename(layers: list, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """topaz state-dict names -> the names of :func:`cryopick_topaz.models.from_spec`'s network."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()

    def take(src: str, dst: str, required: bool = True) -> None:
        if src in tensors:
            out[dst] = tensors[src]
            used.add(src)
        elif required:
            raise _Fail(f"missing weight {src}")

    for i, (prefix, spec) in enumerate(layers):
        ours = f"features.{i}."
        if spec["kind"] == "conv":
            p = prefix if isinstance(prefix, dict) else {"conv": prefix + "conv.", "bn": prefix + "bn.",
                                                         "act": prefix + "act."}
            take(p["conv"] + "weight", ours + "conv.conv.weight")
            if not spec["bn"]:
                take(p["conv"] + "bias", ours + "conv.conv.bias")
            else:
                for k in _BN:
                    take(p["bn"] + k, ours + "bn." + k, required=k != "num_batches_tracked")
            if spec["activation"] == "prelu":
                take(p["act"] + "weight", ours + "act.weight")
        else:
            for conv in ("conv0", "conv1"):
                take(f"{prefix}{conv}.weight", f"{ours}{conv}.conv.weight")
                if not spec["bn"]:
                    take(f"{prefix}{conv}.bias", f"{ours}{conv}.conv.bias")
            if spec["bn"]:
                for bn in ("bn0", "bn1"):
                    for k in _BN:
                        take(f"{prefix}{bn}.{k}", f"{ours}{bn}.{k}", required=k != "num_batches_tracked")
            if spec["nin"] != spec["nout"]:
                take(f"{prefix}proj.weight", f"{ours}project.conv.weight")
            if spec["activation"] == "prelu":
                take(f"{prefix}act0.weight", f"{ours}act0.weight")
                take(f"{prefix}act1.weight", f"{ours}act.weight")
    take("classifier.weight", "classifier.weight")
    take("classifier.bias", "classifier.bias")
    left = [k for k in tensors if k not in used and not k.startswith("generative.")
            and not k.endswith("num_batches_tracked")]
    if left:
        raise _Fail(f"weights that fit no layer: {', '.join(left[:4])}")
    return {k: np.ascontiguousarray(v, dtype=np.int64 if k.endswith("num_batches_tracked") else np.float32)
            for k, v in out.items()}


def read_topaz_model(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The layer list and the weights (under our names) of a topaz-em model file.

    Parameters
    ----------
    path : str or Path
        A ``.sav`` written by topaz-em (a whole ``LinearClassifier``) or a topaz state dict.

    Returns
    -------
    spec : dict
        ``{"layers": [...], "latent_dim": int, "name": str, "receptive_field": int}`` for
        :func:`cryopick_topaz.models.from_spec`.
    arrays : dict of str to numpy.ndarray
        The network's state dict.

    Raises
    ------
    InputError
        Unreadable or refused file (see :func:`cryopick_topaz.sav.load_sav`), or a model whose
        structure is not one of topaz's detectors; the message names the file.
    """
    path = Path(path)
    obj = load_sav(path)
    try:
        if isinstance(obj, Record):
            layers, tensors, name = _from_module(obj)
        elif isinstance(obj, dict):
            layers, tensors, name = _from_state_dict(obj)
        else:
            raise _Fail(f"it holds a {type(obj).__name__}, not a model or a state dict")
        arrays = _rename(layers, tensors)
    except _Fail as exc:
        raise InputError(f"{path}: not a topaz-em particle detector cryopick can import: {exc}") from None
    except (KeyError, AttributeError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{path}: not a topaz-em particle detector cryopick can import "
                         f"({type(exc).__name__}: {exc})") from None
    plain = [{k: (int(v) if isinstance(v, (np.integer, int)) and not isinstance(v, bool) else v)
              for k, v in spec.items()} for _, spec in layers]
    rf = _receptive_field(layers)
    spec = {"layers": plain, "latent_dim": int(plain[-1]["nout"]), "name": name or f"conv{rf}",
            "receptive_field": rf, "source": "topaz-em"}
    return spec, arrays


def topaz_network(path: str | Path):
    """A :class:`cryopick_topaz.models.Classifier` with the weights of a topaz-em model file (eval mode)."""
    from cryopick.torchutil import load_arrays
    from cryopick_topaz.models import from_spec

    spec, arrays = read_topaz_model(path)
    net = from_spec(spec)
    load_arrays(net, arrays)
    return net.eval()


def import_topaz_model(path: str | Path):
    """The model-importer target of cryopick-topaz: a topaz-em ``.sav`` as a topaz picker
    :class:`~cryopick.picker.ModelState` (weights as arrays; the layer list in ``config["architecture"]``),
    which :meth:`cryopick_topaz.picker.TopazPicker.load` rebuilds."""
    from cryopick.picker import ModelState

    path = Path(path)
    spec, arrays = read_topaz_model(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ModelState(arrays=arrays, config={
        "picker": "topaz", "architecture": spec,
        "training": {"imported_from": str(path.resolve()), "sha256": digest, "receptive_field": spec["receptive_field"]},
    })


def _topaz_em_packages() -> list[Path]:
    """Folders of installed topaz-em packages, found without importing them: the ``topaz`` package of this
    Python, and that of the Python behind each ``topaz`` executable on PATH (topaz-em often lives in an
    environment of its own)."""
    import importlib.util
    import os
    import shutil

    found: list[Path] = []
    try:
        spec = importlib.util.find_spec("topaz")
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.origin:
        found.append(Path(spec.origin).parent)
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        exe = shutil.which("topaz", path=folder) if folder else None
        if exe is None:
            continue
        try:
            with open(exe, "rb") as f:
                first = f.readline(512).decode("utf-8", "replace")
        except OSError:
            continue
        if first.startswith("#!"):  # a console script: its interpreter's prefix holds the package
            python = Path(first[2:].strip().split()[0])
            found += sorted(python.parent.parent.glob("lib/python3*/site-packages/topaz"))
    return list(dict.fromkeys(p.resolve() for p in found if p.is_dir()))


def find_topaz_em_detector(backbone: str, units: int) -> Path:
    """The pretrained detector topaz-em's ``train`` starts from for ``backbone`` with ``units`` (its
    ``pretrained/detector/<backbone>_u<units>.sav``), in an installed topaz-em. The file is topaz-em's (GPL):
    cryopick does not ship it, it reads the user's copy."""
    packages = _topaz_em_packages()
    if not packages:
        raise InputError("no topaz-em installation found (neither a 'topaz' package in this Python nor a "
                         "'topaz' executable on PATH); install it (pip install topaz-em, in any environment "
                         "whose 'topaz' is on PATH) or give the file itself, "
                         f"<site-packages>/topaz/pretrained/detector/{backbone}_u{units}.sav")
    name = f"{backbone}_u{units}.sav"
    for package in packages:
        path = package / "pretrained" / "detector" / name
        if path.is_file():
            return path
    have = sorted({p.name for package in packages for p in (package / "pretrained" / "detector").glob("*.sav")})
    raise InputError(f"topaz-em ({', '.join(map(str, packages))}) has no pretrained {name}; it has "
                     f"{', '.join(have) or 'none'}")
