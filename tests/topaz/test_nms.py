"""Extraction: per-pixel logits -> candidates by vectorised NMS with a radius from the diameter."""

import numpy as np

from cryopick_topaz.picker import TopazConfig, TopazPicker


def _picker_with_map(score_map):
    picker = TopazPicker(TopazConfig())
    picker.score_map = lambda image: score_map
    return picker


def test_nms_radius_from_diameter():
    yy, xx = np.mgrid[:64, :64]
    m = np.full((64, 64), -8.0, dtype=np.float32)
    for x, y, h in [(20, 20, 5.0), (28, 20, 3.5), (45, 40, 4.0)]:  # second peak within the radius of the first
        m = np.maximum(m, h - ((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    picks = _picker_with_map(m).score(np.zeros((64, 64), np.float32), diameter_px=16).above(-7)  # radius 8
    assert len(picks) == 2
    assert list(zip(picks.x, picks.y, strict=True)) == [(20, 20), (45, 40)]
    np.testing.assert_allclose(picks.score, [5.0, 4.0])  # the logit is the score, best first
    # With a smaller diameter (radius 4) the neighbour survives.
    assert len(_picker_with_map(m).score(np.zeros((64, 64), np.float32), diameter_px=8).above(-7)) == 3


def test_plateau_gives_one_pick():
    m = np.zeros((30, 30), dtype=np.float32)
    m[10:13, 10:13] = 2.0
    picks = _picker_with_map(m).score(np.zeros((30, 30), np.float32), diameter_px=10)
    assert (picks.score == 2.0).sum() == 1
