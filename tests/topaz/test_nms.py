"""Extraction: per-pixel logits -> candidates by vectorised NMS with a radius from the diameter."""

import numpy as np

from cryopick_topaz.picker import TopazConfig, TopazPicker


def _picker_with_map(score_map):
    picker = TopazPicker(TopazConfig())
    picker.score_map = lambda image, tta=None: score_map
    return picker


def test_nms_radius_from_diameter():
    yy, xx = np.mgrid[:64, :64]
    m = np.full((64, 64), -8.0, dtype=np.float32)
    for x, y, h in [(20, 20, 5.0), (28, 20, 3.5), (45, 40, 4.0)]:  # second peak within the radius of the first
        m = np.maximum(m, h - ((xx - x) ** 2 + (yy - y) ** 2) / 8.0)
    # local maxima of disks of radius diameter / 2 (the greedy cover's extra candidates: tests/core)
    picks = _picker_with_map(m).score(np.zeros((64, 64), np.float32), diameter_px=16, nms="local-max").above(-7)
    assert len(picks) == 2
    assert list(zip(picks.x, picks.y, strict=True)) == [(20, 20), (45, 40)]
    np.testing.assert_allclose(picks.score, [5.0, 4.0])  # the logit is the score, best first
    # With a smaller diameter (radius 4) the neighbour survives.
    assert len(_picker_with_map(m).score(np.zeros((64, 64), np.float32), diameter_px=8, nms="local-max").above(-7)) == 3
    # The default, tiered: the greedy cover over every pixel, the same two local maxima first with their logits,
    # then the rest of the map, every shoulder below them (its logit - SHOULDER_OFFSET).
    from cryopick.nms import SHOULDER_OFFSET

    tiered = _picker_with_map(m).score(np.zeros((64, 64), np.float32), diameter_px=16)
    assert list(zip(tiered.x[:2], tiered.y[:2], strict=True)) == [(20, 20), (45, 40)] and len(tiered) > 3
    np.testing.assert_allclose(tiered.score[:2], [5.0, 4.0])
    rest = tiered.score[2:]  # the flat background (-8: a plateau, every pixel its disk's maximum) or shoulders
    assert np.all((rest == -8.0) | (rest < -SHOULDER_OFFSET + 5)) and np.any(rest < -SHOULDER_OFFSET + 5)
    greedy = _picker_with_map(m).score(np.zeros((64, 64), np.float32), diameter_px=16, nms="greedy")
    assert sorted(zip(greedy.x, greedy.y)) == sorted(zip(tiered.x, tiered.y))


def test_plateau_gives_one_pick():
    m = np.zeros((30, 30), dtype=np.float32)
    m[10:13, 10:13] = 2.0
    picks = _picker_with_map(m).score(np.zeros((30, 30), np.float32), diameter_px=10)
    assert (picks.score == 2.0).sum() == 1
