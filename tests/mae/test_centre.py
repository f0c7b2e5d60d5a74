"""Centred features (``centre``): the reference micrograph's mean window feature is subtracted before the
cosine similarity, so a feature component that every window shares cannot decide the ranking."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from .test_picker import TINY_SETTINGS  # noqa: E402


def _trained(simulated_micrograph, **extra):
    from cryopick.host import build_host
    from cryopick.picker import TrainingData, TrainingItem
    from cryopick.pickers import make_picker

    picker = make_picker(build_host(), "mae", {**TINY_SETTINGS, "centre_windows": "512", **extra}, "cpu", 0)
    item = TrainingItem("m0", simulated_micrograph.image, simulated_micrograph.truth.subset(slice(0, 5)))
    state = picker.train(TrainingData([item], 24.0))
    return picker, state


def _grid(picker, image):
    return picker.score_grid(image, 24.0)[0]


def test_mean_feature_is_stored_and_centres_the_reference_windows(simulated_micrograph):
    from cryopick_mae.train import encode
    from cryopick_mae.windows import crop_random, to_input

    picker, state = _trained(simulated_micrograph, centre_windows="2048")
    mean = state.arrays["feature_mean"]
    assert mean.shape == (state.arrays["exemplar_features"].shape[1],)
    # fresh random windows of the reference micrograph: their raw mean is far from 0, the centred one is
    # near it (up to the sampling noise of two means of 2048 windows)
    window = picker.window_px(24.0)
    x = to_input(crop_random(simulated_micrograph.image, 2048, window, np.random.default_rng(5)),
                 picker._model.image_size, True)
    raw = encode(picker._model, x, 256, picker.config.pooling).numpy().mean(axis=0)
    assert np.linalg.norm(raw - mean) < 0.15 * np.linalg.norm(raw)


def test_scores_ignore_a_component_every_window_shares(simulated_micrograph):
    """Adding one vector to every feature (exemplars, windows and the mean alike) leaves centred scores
    unchanged; the paper's raw cosine (``centre=false``) moves."""
    image = simulated_micrograph.image
    for centre, unchanged in (("true", True), ("false", False)):
        picker, _ = _trained(simulated_micrograph, centre=centre)
        before = _grid(picker, image)
        shared = 3.0 * torch.randn(picker._exemplar_features.shape[1], generator=torch.Generator().manual_seed(0))
        features = picker._model.features
        picker._model.features = lambda x, pooling="mean": features(x, pooling) + shared
        picker._exemplar_features = picker._exemplar_features + shared
        if picker._feature_mean is not None:
            picker._feature_mean = picker._feature_mean + shared
        after = _grid(picker, image)
        assert np.allclose(before, after, atol=1e-4) == unchanged, centre


def test_saved_model_scores_as_trained_and_old_models_load_raw(simulated_micrograph):
    from cryopick.host import build_host
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker

    picker, state = _trained(simulated_micrograph)
    expected = _grid(picker, simulated_micrograph.image)
    loaded = make_picker(build_host(), "mae", TINY_SETTINGS, "cpu", 0)
    loaded.load(state)
    assert np.allclose(_grid(loaded, simulated_micrograph.image), expected, atol=1e-5)
    # a model saved before centring existed has no mean: it scores with raw features, as it did then
    old = ModelState({k: v for k, v in state.arrays.items() if k != "feature_mean"}, state.config)
    raw = make_picker(build_host(), "mae", {**TINY_SETTINGS, "centre": "false"}, "cpu", 0)
    raw.load(state)
    legacy = make_picker(build_host(), "mae", TINY_SETTINGS, "cpu", 0)
    legacy.load(old)
    assert np.allclose(_grid(legacy, simulated_micrograph.image), _grid(raw, simulated_micrograph.image), atol=1e-6)
    assert not np.allclose(_grid(raw, simulated_micrograph.image), expected, atol=1e-3)


def test_no_centring_windows_is_a_clear_error(simulated_micrograph):
    from cryopick.errors import ConfigError

    with pytest.raises(ConfigError, match="centre_windows=0"):
        _trained(simulated_micrograph, centre_windows="0")
