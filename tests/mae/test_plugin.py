"""Registration: the entry module is cheap (no torch), the components resolve through the host."""

import subprocess
import sys

import pytest


def test_plugin_module_imports_without_torch():
    code = ("import sys, cryopick_mae, cryopick_mae.plugin, cryopick_mae.commands; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_components_registered():
    from cryopick.host import build_host

    host = build_host()
    assert "mae" in host.pickers
    assert "vit-mae" in host.backbones
    assert {"scs", "scs-pu"} <= set(host.registries["loss"].names())
    entry = host.pickers.get("mae")
    assert entry.requires_torch
    cls = host.pickers.load("mae")
    assert cls.default_threshold == "density" and cls.demo_labels == 15
    assert set(cls.presets) == {"paper", "cpu", "tiny"}
    assert cls.default_preset("cpu") == "cpu" and cls.default_preset("cuda") == "paper"


def test_backbone_and_losses_build_through_registry():
    import torch

    from cryopick.host import build_host

    host = build_host()
    net = host.backbones.load("vit-mae")(image_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2,
                                         decoder_dim=16, decoder_depth=1, decoder_heads=2)
    assert net.features(torch.zeros(1, 1, 16, 16)).shape == (1, 32)
    loss = host.losses.load("scs-pu")(pi=0.018)
    # eq. 3-5 by hand: S_ll = 2, S_lu = 6/sqrt(2), S_uu = 9, m = 2, n = 3 -> 1 + 0.7 S^_cross - 0.3 S^_self,
    # well above the clamp tau = 0.02 (so a broken formula cannot hide behind it)
    pi, s_ll, s_lu, s_uu = 0.018, 2.0, 6 / 2 ** 0.5, 9.0
    pos = 2 + pi * 3
    s_self = (s_ll + 2 * pi * s_lu + pi ** 2 * s_uu) / pos ** 2
    s_cross = ((1 - pi) * s_lu + pi * (1 - pi) * s_uu) / (pos * (1 - pi) * 3)
    assert float(loss(torch.eye(2), torch.ones(3, 2))) == pytest.approx(1 + 0.7 * s_cross - 0.3 * s_self, rel=1e-5)
    # identical exemplars, unlabelled regions opposite to them: 1 + 0.7 (-1) - 0.3 (1) = 0, clamped at tau
    assert float(host.losses.load("scs")()(torch.ones(2, 2), -torch.ones(3, 2))) == pytest.approx(0.02)


def test_paper_preset_is_the_paper_architecture():
    from cryopick.config import build_config
    from cryopick_mae.picker import MAEConfig, MAEPicker

    cfg = build_config(MAEConfig, {"preset": "paper"}, MAEPicker.presets)
    assert (cfg.image_size, cfg.patch_size, cfg.embed_dim, cfg.depth, cfg.num_heads) == (224, 16, 768, 12, 12)
    assert (cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads) == (512, 8, 16)
    assert (cfg.alpha, cfg.tau, cfg.beta, cfg.pi_hat, cfg.mask_ratio, cfg.exemplars) == (0.7, 0.02, 5.0, 0.018, 0.75, 15)
    cfg = build_config(MAEConfig, {"scs": "false", "pu": "false", "match": "mean", "stride": "0.34"}, MAEPicker.presets)
    assert (cfg.scs, cfg.pu, cfg.match, cfg.stride) == (False, False, "mean", 0.34)
