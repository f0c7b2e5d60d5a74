"""Matching names in coordinate files to micrograph IDs."""

from __future__ import annotations

import pytest

from cryopick.errors import InputError
from cryopick.io.names import match_names, name_candidates, strip_uid_prefix

KNOWN = ["mic_001", "mic_002", "mic.003", "20230512_0001"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("mic_001", "mic_001"),
        ("mic_001.mrc", "mic_001"),
        ("MotionCorr/job003/Movies/mic_001.mrc", "mic_001"),
        ("C:\\data\\mic_001.tiff", "mic_001"),
        ("mic_001_autopick", "mic_001"),
        ("mic_001_autopick.star", "mic_001"),
        ("mic_001_manualpick.star", "mic_001"),
        ("012345678901234567_mic_001.mrc", "mic_001"),
        ("J5/imported/012345678901234567_mic_001.mrc", "mic_001"),
        ("mic.003", "mic.003"),
        ("mic.003.mrc", "mic.003"),
        ("20230512_0001.mrc", "20230512_0001"),  # a short digit prefix is part of the name
    ],
)
def test_match_one(written, expected):
    mapping, unmatched = match_names([written], KNOWN)
    assert mapping == {written: expected} and unmatched == []


def test_unmatched_in_order_and_duplicates_once():
    mapping, unmatched = match_names(["zz", "mic_002.mrc", "aa", "zz", "mic_002.mrc"], KNOWN)
    assert mapping == {"mic_002.mrc": "mic_002"}
    assert unmatched == ["zz", "aa"]


def test_most_literal_match_wins():
    mapping, _ = match_names(["mic_001_autopick"], ["mic_001", "mic_001_autopick"])
    assert mapping == {"mic_001_autopick": "mic_001_autopick"}


def test_ambiguous_raises():
    with pytest.raises(InputError, match="a/mic_001.mrc.*b/mic_001.mrc.*mic_001"):
        match_names(["a/mic_001.mrc", "b/mic_001.mrc"], KNOWN)


def test_helpers():
    assert strip_uid_prefix("012345678901234567_mic_001") == "mic_001"
    assert strip_uid_prefix("0001_mic") == "0001_mic"
    assert name_candidates("a/b/mic_001.mrc")[0] == "a/b/mic_001.mrc"
