"""Feature providers: shapes, determinism, exactness of topaz's fill mode, and the errors users see."""

import numpy as np
import pytest

from cryopick.errors import ConfigError
from cryopick.picker import ModelState
from cryopick_active.features import make_provider, restore_provider


def _image(seed=0, shape=(64, 80)):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def test_filter_features_need_no_file_and_are_deterministic():
    f = make_provider("filters")
    a, b = f(_image()), f(_image())
    assert a.shape == (12, 64, 80) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert np.all(np.isfinite(a)) and np.all(a.reshape(12, -1).std(axis=1) > 0)


@pytest.fixture
def hydra_file(tmp_path):
    """A tiny HydraPicker model file as 'cryopick hydra train' writes it (untrained: tests must not need the
    shipped one)."""
    torch = pytest.importorskip("torch")
    from cryopick.weights import save_weights
    from cryopick_hydra.model import hydra_net, net_arrays
    from cryopick_hydra.picker import MODEL_KIND

    torch.manual_seed(0)
    net = hydra_net(trunk_channels=8, trunk_groups=4, blocks=1, head_widths=(8, 8, 16, 16), head_groups=4)
    return save_weights(tmp_path / "hydra-tiny.h5", ModelState(net_arrays(net), {
        "kind": MODEL_KIND, "architecture": dict(net.architecture)}))


def test_hydra_trunk_features_per_pixel_and_stored_with_the_model(hydra_file):
    provider = make_provider(f"hydra:{hydra_file}", tile=32)
    image = _image(1)
    feats = provider(image)
    assert feats.shape == (8, 64, 80)
    assert provider.diameter_px == 22.0
    arrays, config = provider.state()
    again = restore_provider(arrays, config, tile=32)
    np.testing.assert_allclose(again(image), feats, atol=1e-6)
    assert again.identity() == provider.identity()
    assert provider.prior(image, 10.0) is not None  # the generic head ranks candidates for the first round


def test_hydra_without_the_shipped_model_says_what_to_do(monkeypatch):
    import cryopick_hydra.picker as hp

    def missing():
        raise ConfigError("missing")

    monkeypatch.setattr(hp, "builtin_model", missing)
    with pytest.raises(ConfigError, match="features=mae"):
        make_provider("hydra")


def test_topaz_fill_mode_features_equal_the_strided_network_on_crops(tmp_path):
    """features=topaz:ID: an imported model's latent vector at pixel p is what the strided network gives for the
    crop centred on p (strides turned into dilations, as the issue asks)."""
    torch = pytest.importorskip("torch")
    from cryopick.torchutil import state_dict_to_arrays
    from cryopick_topaz.models import from_spec

    spec = {"layers": [{"kind": "conv", "nin": 1, "nout": 4, "kernel": 7, "stride": 2},
                       {"kind": "conv", "nin": 4, "nout": 8, "kernel": 5, "stride": 2},
                       {"kind": "conv", "nin": 8, "nout": 6, "kernel": 5}], "latent_dim": 6, "name": "conv31"}
    torch.manual_seed(0)
    net = from_spec(spec).eval()
    state = ModelState(state_dict_to_arrays(net), {"architecture": spec})
    provider = make_provider("topaz:my-topaz", resolve_model=lambda key: state if key == "my-topaz" else None,
                             tile=24)
    image = _image(2, (50, 50))
    feats = provider(image)
    assert feats.shape == (6, 50, 50)
    r = net.receptive_field // 2
    padded = np.pad(image, r)
    with torch.no_grad():
        for y, x in [(r, r), (25, 30), (40, 17)]:
            crop = torch.from_numpy(padded[y: y + 2 * r + 1, x: x + 2 * r + 1].copy())[None, None]
            expected = net.extract(crop)[0, :, 0, 0].numpy()
            np.testing.assert_allclose(feats[:, y, x], expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError, match="import-model"):
        make_provider("topaz:nothing", resolve_model=lambda key: None)


def test_mae_features_from_the_shipped_encoder():
    provider = make_provider("mae")
    feats = provider(_image(3, (40, 48)))
    assert feats.shape[1:] == (40, 48) and feats.shape[0] == 96
    assert np.all(np.isfinite(feats))


@pytest.mark.parametrize("spec, message", [("resnet99", "unknown feature provider"), ("topaz", "needs a model"),
                                          ("filters:x", "takes no argument")])
def test_bad_feature_names_are_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        make_provider(spec)


def test_topaz_em_names_the_papers_resnet16_of_an_installed_topaz_em(tmp_path, monkeypatch):
    """features=topaz:topaz-em reads the user's topaz-em copy of the paper's network (resnet16, 64 units)."""
    pytest.importorskip("torch")
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "make_topaz_sav", Path(__file__).resolve().parents[1] / "fixtures" / "make_topaz_sav.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match=r"features=topaz:topaz-em: no topaz-em installation found"):
        make_provider("topaz:topaz-em")
    env = tmp_path / "env"
    detectors = env / "lib" / "python3.11" / "site-packages" / "topaz" / "pretrained" / "detector"
    detectors.mkdir(parents=True)
    (env / "bin").mkdir()
    (env / "bin" / "topaz").write_text(f"#!{env / 'bin' / 'python'}\n")
    (env / "bin" / "topaz").chmod(0o755)
    make.save(make.build("resnet16-nobn", seed=1), detectors / "resnet16_u64.sav", state_dict=True, legacy=True)
    monkeypatch.setenv("PATH", str(env / "bin"))
    feats = make_provider("topaz:topaz-em", tile=32)(_image(4, (40, 40)))
    assert feats.shape == (16, 40, 40) and np.all(np.isfinite(feats))  # the stand-in's 4 units: latent 4 x 4
