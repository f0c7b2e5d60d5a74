"""Matching micrograph names written in coordinate files to the micrographs of a project.

Coordinate files name micrographs in many ways: a path relative to a RELION project
(``MotionCorr/job003/Movies/mic_001.mrc``), a bare base name with or without the extension, a
per-micrograph file name with RELION's ``_autopick`` suffix, or a cryoSPARC name with a numeric UID
prefix (``012345678901234567_mic_001.mrc``). All of these match the micrograph ID ``mic_001``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from cryopick.errors import InputError

# RELION writes per-micrograph coordinate files as <micrograph>_autopick.star or _manualpick.star.
_RELION_SUFFIXES = ("_autopick", "_manualpick")
# cryoSPARC prefixes imported file names with a long numeric UID and an underscore; short digit
# prefixes (dates, counters) are part of real names and are kept.
_UID_PREFIX = re.compile(r"^\d{12,}_(?=.)")


def strip_uid_prefix(name: str) -> str:
    """Remove cryoSPARC's ``<uid>_`` prefix (12 or more digits) from a base name."""
    return _UID_PREFIX.sub("", name)


def strip_relion_suffix(name: str) -> str:
    """Remove RELION's ``_autopick`` / ``_manualpick`` suffix from a base name."""
    for suffix in _RELION_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def _basename(name: str) -> str:
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _without_extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return stem if dot and stem and ext and "/" not in ext else name


def name_candidates(name: str) -> list[str]:
    """Micrograph IDs that ``name`` may stand for, most literal first."""
    base = _basename(name.strip())
    out: list[str] = []
    for candidate in (name.strip(), base, _without_extension(base)):
        for variant in (candidate, strip_relion_suffix(candidate)):
            for v in (variant, strip_uid_prefix(variant)):
                if v and v not in out:
                    out.append(v)
    return out


def match_names(names_in_file: Iterable[str], known: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Map the micrograph names found in a coordinate file to known micrograph IDs.

    A name matches by its base name, with or without directory and extension, without RELION's
    ``_autopick``/``_manualpick`` suffix and without cryoSPARC's numeric UID prefix; the most literal
    form that is a known ID wins.

    Parameters
    ----------
    names_in_file : iterable of str
        Names as written in the coordinate file(s).
    known : iterable of str
        Micrograph IDs (file names without extension, see :func:`cryopick.io.micrographs.micrograph_name`).

    Returns
    -------
    mapping : dict of str to str
        Name in the file -> known micrograph ID, for every name that matched.
    unmatched : list of str
        Names that matched no known micrograph, in input order.

    Raises
    ------
    InputError
        Two different names in the file match the same micrograph (for example ``a/mic_001.mrc`` and
        ``b/mic_001.mrc``), so their particles cannot be told apart.

    Examples
    --------
    >>> match_names(["MotionCorr/job003/Movies/mic_001.mrc", "mic_002_autopick", "x"], ["mic_001", "mic_002"])
    ({'MotionCorr/job003/Movies/mic_001.mrc': 'mic_001', 'mic_002_autopick': 'mic_002'}, ['x'])
    """
    known_set = set(known)
    mapping: dict[str, str] = {}
    unmatched: list[str] = []
    claimed: dict[str, str] = {}
    for name in dict.fromkeys(names_in_file):  # unique, in order
        target = next((c for c in name_candidates(name) if c in known_set), None)
        if target is None:
            unmatched.append(name)
            continue
        if target in claimed:
            raise InputError(
                f"micrograph names {claimed[target]!r} and {name!r} both match micrograph {target!r}; "
                "rename the micrographs or split the coordinate file"
            )
        claimed[target] = name
        mapping[name] = target
    return mapping, unmatched
