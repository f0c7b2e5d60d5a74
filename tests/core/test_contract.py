"""One contract test per hook, parametrised over every component the installed plugins register (STYLE.md
8): each picker trains (if trainable) and picks on a small simulated micrograph with its ``tiny`` preset,
each backbone maps a tensor, each loss returns a finite scalar with a gradient, each thresholder selects,
each preprocessor maps an image, each exporter/importer pair round-trips. ``test_every_hook_has_a_test``
keeps this honest when a hook is added."""

import inspect
import re
from pathlib import Path

import numpy as np
import pytest

from cryopick import hookspecs
from cryopick.host import KNOWN_PROVIDERS, build_host
from cryopick.particles import Particles

HOST = build_host()


def _names(kind):
    return HOST.registries[kind].names()


@pytest.fixture(autouse=True)
def _torch_one_thread():
    try:
        import torch
    except ImportError:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", _names("picker"))
def test_cryopick_register_pickers(name, simulated_micrograph):
    from cryopick.testing import check_picker_contract

    cls = HOST.pickers.load(name)
    settings = {"preset": "tiny"} if "tiny" in cls.presets else {}
    if getattr(HOST.pickers.get(name), "requires_torch", False):
        pytest.importorskip("torch")
    mic = simulated_micrograph
    cands = check_picker_contract(HOST, name, mic.image, mic.truth, diameter_px=24.0, settings=settings)
    assert len(cands) > 0 and np.all(cands.inside(mic.image.shape))


# Keyword arguments that make a backbone tiny; a backbone not listed is built with its defaults.
TINY_BACKBONES = {"vit-mae": dict(image_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2, decoder_dim=16,
                                  decoder_depth=1, decoder_heads=2)}


@pytest.mark.parametrize("name", _names("backbone"))
def test_cryopick_register_backbones(name):
    torch = pytest.importorskip("torch")
    entry = HOST.backbones.get(name)
    assert entry.framework == "torch"
    factory = HOST.backbones.load(name)
    kwargs = TINY_BACKBONES.get(name)
    if kwargs is None and "units" in inspect.signature(factory).parameters:
        kwargs = {"units": 4}
    net = factory(**(kwargs or {})).eval()
    size = int(getattr(net, "image_size", 0) or getattr(net, "receptive_field", 0) or 32)
    x = torch.randn(2, 1, size, size)
    with torch.no_grad():
        if hasattr(net, "extract"):  # topaz-style: per-pixel features
            out = net.extract(x)
        elif inspect.ismethod(getattr(net, "features", None)):  # mae-style: one feature vector per image
            out = net.features(x)
        else:
            out = net(x)
    out = out[0] if isinstance(out, tuple) else out
    assert out.shape[0] == 2 and torch.isfinite(out).all()


@pytest.mark.parametrize("name", _names("loss"))
def test_cryopick_register_losses(name):
    torch = pytest.importorskip("torch")
    entry = HOST.losses.get(name)
    loss = HOST.losses.load(name)()
    gen = torch.Generator().manual_seed(0)
    if entry.inputs == "pu-logits":
        a = torch.randn(8, generator=gen, requires_grad=True)
        b = torch.randn(64, generator=gen, requires_grad=True)
        value = loss(a, b, 0.1)
    elif entry.inputs == "dense":  # prediction and target of one shape (logits and 0/1 targets, or centres)
        a = torch.randn(4, 16, generator=gen, requires_grad=True)
        b = (torch.rand(4, 16, generator=gen) < 0.2).float().requires_grad_(True)
        value = loss(a, b)
    elif entry.inputs == "head-weights":  # dataset heads (K, P) and the generic head (P,)
        a = torch.randn(3, 16, generator=gen, requires_grad=True)
        b = torch.randn(16, generator=gen, requires_grad=True)
        value = loss(a, b)
    else:  # "features"
        a = torch.randn(4, 16, generator=gen, requires_grad=True)
        b = torch.randn(8, 16, generator=gen, requires_grad=True)
        value = loss(a, b)
    assert value.ndim == 0 and torch.isfinite(value)
    value.backward()
    grads = [t.grad for t in (a, b) if t.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads) and any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", _names("thresholder"))
def test_cryopick_register_thresholders(name):
    entry = HOST.thresholders.get(name)
    assert entry.scope in ("micrograph", "dataset") and entry.parameter_type in ("int", "float")
    rng = np.random.default_rng(0)
    scores = np.concatenate([rng.normal(0, 1, 300), rng.normal(8, 0.5, 30)])
    cut = HOST.thresholders.load(name)().cutoff(scores)
    kept = int((scores >= cut).sum())
    assert 0 < kept < scores.size, (name, cut)  # selects: neither nothing nor everything
    assert np.isinf(HOST.thresholders.load(name)().cutoff(np.zeros(0))) or name == "fixed"


@pytest.mark.parametrize("name", _names("preprocessor"))
def test_cryopick_register_preprocessors(name):
    from cryopick.preprocess import Preprocessed

    entry = HOST.preprocessors.get(name)
    params = {"factor": 2.0} if name == "downsample" else {}
    if entry.pixel_size:
        params["pixel_size_a"] = 1.0
    image = np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32)
    out = HOST.preprocessors.load(name)(**params)(image)
    assert isinstance(out, Preprocessed) and out.image.ndim == 2 and np.isfinite(out.image).all()
    fx, fy = out.factor
    assert out.image.shape == (round(64 / fy), round(64 / fx))


def _picks():
    return {"mic_a": Particles([20.0, 50.5, 90.0], [30.0, 60.0, 10.5], [0.9, 0.5, 0.1]),
            "mic_b": Particles([40.0], [44.0], [0.7])}


@pytest.mark.parametrize("name", sorted(set(_names("exporter")) | set(_names("importer"))))
def test_cryopick_register_exporters(name, tmp_path):
    """Exporters and importers of one format round-trip (the importer test below runs the same check)."""
    if name not in HOST.exporters or name not in HOST.importers:
        pytest.skip(f"{name}: no exporter/importer pair to round-trip")
    picks = _picks()
    shapes = {n: (128, 128) for n in picks}
    files = HOST.exporters.load(name)(picks, tmp_path, box_size=20, shapes=shapes,
                                      micrograph_files={n: f"{n}.mrc" for n in picks})
    assert files and all(Path(f).exists() for f in files)
    suffixes = HOST.importers.get(name).suffixes
    assert not suffixes or all(Path(f).suffix in suffixes for f in files)
    back = {}
    for f in files:
        for k, v in HOST.importers.load(name)(f).items():
            back[Path(k).stem.replace("_autopick", "")] = v
    assert set(back) == set(picks)
    for n, p in picks.items():
        order = np.lexsort((back[n].y, back[n].x))
        np.testing.assert_allclose(back[n].x[order], np.sort(p.x), atol=1.0)


test_cryopick_register_importers = test_cryopick_register_exporters


@pytest.mark.parametrize("name", _names("model_importer"))
def test_cryopick_register_model_importers(name, tmp_path):
    """Each model importer serves an installed picker, and reads files safely: a missing file, a file that is
    not a model, and a pickle that would run a command are one-line InputErrors, and the command never runs."""
    import os
    import pickle

    from cryopick.errors import InputError

    entry = HOST.model_importers.get(name)
    assert entry.picker in HOST.pickers, f"{name} imports models for {entry.picker!r}, which is not installed"
    assert all(s.startswith(".") for s in entry.suffixes)
    read = HOST.model_importers.load(name)
    suffix = entry.suffixes[0] if entry.suffixes else ".bin"
    with pytest.raises(InputError):
        read(tmp_path / f"missing{suffix}")
    junk = tmp_path / f"junk{suffix}"
    junk.write_bytes(b"\x00 not a model \xff" * 10)
    with pytest.raises(InputError):
        read(junk)
    target = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {target}",))

    evil = tmp_path / f"evil{suffix}"
    evil.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(InputError):
        read(evil)
    assert not target.exists()


def test_cryopick_register_commands():
    import click

    impls = HOST.pm.hook.cryopick_register_commands.get_hookimpls()
    group = click.Group("cryopick")
    HOST.register_commands(group)
    assert not [e for e in HOST.load_errors if "register_commands" in e.traceback]
    if impls:
        assert group.commands  # every plugin with the hook added something


def test_known_providers_register_what_they_promise():
    """KNOWN_PROVIDERS (the install hint of an unknown name) lists only components its distributions
    really register, when they are installed."""
    installed = {p.distribution for p in HOST.plugins}
    for kind, names in KNOWN_PROVIDERS.items():
        for name, dist in names.items():
            if dist in installed:
                assert HOST.registries[kind].registered(name).distribution == dist, (kind, name)


def test_every_hook_has_a_test():
    """Meta-test (STYLE.md 7): each hook in hookspecs.py has a test named after it in this module, and a
    documented signature in docs/hooks.md."""
    hooks = [n for n, f in vars(hookspecs).items() if n.startswith("cryopick_") and callable(f)]
    assert len(hooks) >= 8
    here = globals()
    docs = (Path(__file__).resolve().parents[2] / "docs" / "hooks.md").read_text()
    for hook in hooks:
        assert callable(here.get(f"test_{hook}")), f"no test_{hook} in {__file__}"
        assert re.search(rf"def {hook}\(", docs), f"{hook} has no signature in docs/hooks.md"
