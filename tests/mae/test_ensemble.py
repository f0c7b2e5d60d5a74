"""``ensemble``: several fine-tuned copies of the MAE whose window scores are averaged."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from .test_centre import _grid, _trained  # noqa: E402
from .test_picker import TINY_SETTINGS  # noqa: E402


def _member(picker, state, index):
    """A one-network picker holding member ``index`` of a stored ensemble (its arrays as a one-network model)."""
    from cryopick.host import build_host
    from cryopick.picker import ModelState
    from cryopick.pickers import make_picker
    from cryopick_mae.picker import MEMBER_PREFIX

    prefix = f"{MEMBER_PREFIX}{index}."
    arrays = {k: v for k, v in state.arrays.items() if not k.startswith(MEMBER_PREFIX)}
    if index:
        arrays.update({k[len(prefix):]: v for k, v in state.arrays.items() if k.startswith(prefix)})
    one = make_picker(build_host(), "mae", TINY_SETTINGS, "cpu", 0)
    one.load(ModelState(arrays, {**state.config, "members": 1}))
    return one


def test_an_ensemble_scores_the_mean_of_its_members(simulated_micrograph):
    from cryopick.host import build_host
    from cryopick.pickers import make_picker

    image = simulated_micrograph.image
    single, single_state = _trained(simulated_micrograph)
    picker, state = _trained(simulated_micrograph, ensemble="3")
    assert state.config["members"] == 3 and single_state.config["members"] == 1
    assert {k for k in state.arrays if k.startswith("member")} == {
        f"member{i}.{k}" for i in (1, 2) for k in single_state.arrays
        if k not in ("centre_template", "correlation_clip")}

    # the first member is the one network that ensemble=1 trains with the same seed; the others differ from it
    np.testing.assert_array_equal(state.arrays["exemplar_features"], single_state.arrays["exemplar_features"])
    grids = [_grid(_member(picker, state, i), image) for i in range(3)]
    np.testing.assert_allclose(grids[0], _grid(single, image), atol=1e-5)
    assert not np.allclose(grids[1], grids[0], atol=1e-3) and not np.allclose(grids[2], grids[1], atol=1e-3)

    # scores: the members' mean, as trained and after a save and load
    ensemble = _grid(picker, image)
    np.testing.assert_allclose(ensemble, np.mean(grids, axis=0), atol=1e-5)
    loaded = make_picker(build_host(), "mae", TINY_SETTINGS, "cpu", 0)
    loaded.load(state)
    np.testing.assert_allclose(_grid(loaded, image), ensemble, atol=1e-5)
    # the cut is calibrated on that mean score: it differs from the single network's
    assert state.config["calibration"]["threshold"] != single_state.config["calibration"]["threshold"]


def test_ensemble_must_be_positive():
    from cryopick.host import build_host
    from cryopick.pickers import make_picker

    with pytest.raises(Exception, match="ensemble"):
        make_picker(build_host(), "mae", {**TINY_SETTINGS, "ensemble": "0"}, "cpu", 0)
