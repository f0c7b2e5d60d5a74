"""The plugin module is cheap to import and registers every component."""

import subprocess
import sys

from cryopick.host import build_host
from cryopick.picker import Picker


def test_plugin_imports_without_torch():
    code = ("import sys, cryopick_topaz.plugin, cryopick_topaz.gmm; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_registered_components():
    from cryopick_topaz import plugin

    host = build_host(load_entry_points=False, plugins=[("topaz", plugin)])
    entry = host.pickers.get("topaz")
    assert entry.requires_torch
    cls = entry.load()
    assert issubclass(cls, Picker) and cls.default_preset("cpu") is None and cls.default_preset("cuda") is None
    # No silent small model: the defaults are topaz-em's as its users run it, on every device.
    cfg = cls.Config()
    assert (cfg.backbone, cfg.units, cfg.minibatch, cfg.epochs * cfg.epoch_size, cfg.autoencoder) == \
        ("resnet8", 32, 256, 1000, 0.0)
    for name in ("resnet8", "resnet16", "conv31", "conv63", "conv127"):
        assert host.backbones.get(name).load()(units=4).receptive_field > 0
    for name in ("pn", "ge-kl", "ge-binomial", "nnpu"):
        assert host.losses.get(name).inputs == "pu-logits" and callable(host.losses.load(name)())
    assert host.preprocessors.get("gmm").load()().sample > 0


def test_preprocessing_chain():
    from cryopick_topaz.picker import TopazConfig, TopazPicker

    chain = TopazPicker(TopazConfig()).preprocessing(96.0, 1.0)
    assert chain == [("downsample", {"factor": 4.0}), ("gmm", {})]
    assert TopazPicker(TopazConfig()).preprocessing(10.0, None)[0][1]["factor"] == 1.0
