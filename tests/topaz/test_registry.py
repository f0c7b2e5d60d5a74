"""topaz builds its backbone and loss through the plugin registry: a loss registered by another
distribution trains it with ``--set loss=NAME``; names are checked against the registry."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryopick.errors import ConfigError
from cryopick.host import build_host
from cryopick.pickers import make_picker

FIXTURE_PLUGINS = Path(__file__).resolve().parents[1] / "fixtures" / "plugins"


def test_third_party_loss_trains_topaz_from_the_shell(tmp_path):
    log = tmp_path / "loss-calls.txt"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(FIXTURE_PLUGINS), os.environ.get("PYTHONPATH", "")]),
               CRYOPICK_TEST_LOSS_LOG=str(log), CRYOPICK_DISABLE_PLUGINS="broken")
    cmd = [sys.executable, "-m", "cryopick.cli.main", "-q", "run", "--picker", "topaz", "--set", "preset=tiny",
           "--set", "loss=sigmoid-pu", "--out", "out", "--json"]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["picker"] == "topaz" and summary["evaluation"]["n_truth"] > 0
    calls = log.read_text().splitlines()
    assert len(calls) >= 30  # one per minibatch update of the tiny preset (epoch_size 30)
    n_pos, n_unl, pi = calls[0].split()
    assert int(n_pos) > 0 and int(n_unl) > 0 and 0 < float(pi) < 1


def test_component_names_are_checked_against_the_registry():
    host = build_host()
    with pytest.raises(ConfigError, match="unknown loss 'focal'.*accepts: ge-binomial, ge-kl, nnpu, pn"):
        make_picker(host, "topaz", {"loss": "focal"}, device="cpu")
    with pytest.raises(ConfigError, match="'scs' takes features inputs"):
        make_picker(host, "topaz", {"loss": "scs"}, device="cpu")  # mae's loss: features, not PU logits
    with pytest.raises(ConfigError, match="Did you mean 'resnet8'"):
        make_picker(host, "topaz", {"backbone": "resnet9"}, device="cpu")
    picker = make_picker(host, "topaz", {"backbone": "vit-mae"}, device="cpu")  # registered, wrong shape
    with pytest.raises(ConfigError, match="not a topaz-style backbone"):
        picker._build()


def test_backbone_comes_from_the_registry():
    import torch.nn as nn

    from cryopick_topaz.models import conv31

    class Wider(nn.Module):  # a "third-party" backbone: topaz's conv31 at twice the units
        def __new__(cls, units=32, **_):
            return conv31(units=2 * units)

    class Plugin:
        from cryopick import hookimpl

        @hookimpl
        def cryopick_register_backbones(self):
            from cryopick.entries import BackboneEntry

            return [BackboneEntry("wide31", f"{__name__}:_WIDE", "test backbone")]

    global _WIDE
    _WIDE = Wider
    host = build_host(plugins=[("wide", Plugin())])
    picker = make_picker(host, "topaz", {"preset": "tiny", "backbone": "wide31"}, device="cpu")
    assert sum(p.numel() for p in picker._build().parameters()) > sum(p.numel() for p in conv31(units=8).parameters())


_WIDE = None
