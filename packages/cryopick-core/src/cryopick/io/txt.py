"""Topaz ``.txt`` coordinate tables: tab separated, header ``image_name x_coord y_coord [score]``, one
file for all micrographs (``particles.txt``) or one ``<micrograph>.txt`` per micrograph."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryopick.errors import InputError
from cryopick.io.coords import (
    Picks,
    any_scores,
    check_columns,
    file_stem,
    fmt,
    output_dir,
    parse_float,
    read_path,
    text_rows,
)
from cryopick.particles import Particles

NAME, X, Y, SCORE = "image_name", "x_coord", "y_coord", "score"
SINGLE_FILE = "particles.txt"


def read_txt(path: str | Path) -> Picks:
    """Read a Topaz coordinate table (or merge a directory of them).

    Parameters
    ----------
    path : str or Path
        A ``.txt`` file or a directory of them. The header names the columns (``image_name``,
        ``x_coord``, ``y_coord``, optional ``score``); without a header the columns are taken to be
        ``image_name x y [score]``. A table without ``image_name`` holds one micrograph named after the
        file.

    Returns
    -------
    dict of str to Particles
        ``image_name`` as written -> particles.

    Raises
    ------
    InputError
        A line with a wrong column count or a non-number, naming ``path:line``; a header without
        ``x_coord``/``y_coord``.
    """
    return read_path(path, (".txt",), _read_one)


def _columns(path: Path, header: list[str]) -> dict[str, int]:
    index = {name.lower(): i for i, name in enumerate(header)}
    missing = [c for c in (X, Y) if c not in index]
    if missing:
        raise InputError(
            f"{path}:1: header lacks column(s) {', '.join(missing)}; columns found: {', '.join(header)}"
        )
    return index


def _read_one(path: Path) -> Picks:
    rows = list(text_rows(path, sep="\t" if "\t" in path.read_text()[:4096] else None))
    if not rows:
        return {path.stem: Particles.empty()}
    _, first = rows[0]
    if any(f.lower() in (X, Y, NAME) for f in first):
        index, width = _columns(path, first), len(first)
        rows = rows[1:]
    else:  # no header: image_name x y [score]
        index = {NAME: 0, X: 1, Y: 2, SCORE: 3} if len(first) >= 4 else {NAME: 0, X: 1, Y: 2}
        width = len(index)
    described = " ".join(sorted(index, key=index.get))
    names, xs, ys, scores = [], [], [], []
    for line, fields in rows:
        check_columns(fields, described, path, line, (width,))
        names.append(fields[index[NAME]] if NAME in index else path.stem)
        xs.append(parse_float(fields[index[X]], path, line, X))
        ys.append(parse_float(fields[index[Y]], path, line, Y))
        scores.append(parse_float(fields[index[SCORE]], path, line, SCORE) if SCORE in index else np.nan)
    names_arr = np.array(names, dtype=object)
    x, y, score = np.array(xs), np.array(ys), np.array(scores)
    out: Picks = {}
    for name in dict.fromkeys(names):
        keep = names_arr == name
        out[name] = Particles(x[keep], y[keep], score[keep])
    if not out:
        out[path.stem] = Particles.empty()
    return out


def _lines(name: str, particles: Particles, scores: bool) -> list[str]:
    if scores:
        return [
            f"{name}\t{fmt(x)}\t{fmt(y)}\t{fmt(s)}\n"
            for x, y, s in zip(particles.x.tolist(), particles.y.tolist(), particles.score.tolist())
        ]
    return [f"{name}\t{fmt(x)}\t{fmt(y)}\n" for x, y in zip(particles.x.tolist(), particles.y.tolist())]


def write_txt(
    picks: Picks,
    out: str | Path,
    *,
    per_micrograph: bool = False,
    box_size: int | None = None,
    shapes: dict[str, tuple[int, int]] | None = None,
    **_,
) -> list[Path]:
    """Write picks as Topaz coordinate tables.

    Parameters
    ----------
    picks : dict of str to Particles
        Micrograph ID -> particles (original pixels).
    out : str or Path
        Output directory, created if needed.
    per_micrograph : bool
        Write ``<micrograph>.txt`` per micrograph instead of one ``particles.txt``.
    box_size, shapes
        Not used by this format.

    Returns
    -------
    list of Path
        The files written.
    """
    out = output_dir(out)
    scores = any_scores(picks)
    header = "\t".join([NAME, X, Y] + ([SCORE] if scores else [])) + "\n"
    if per_micrograph:
        written = []
        for name, particles in picks.items():
            target = out / f"{file_stem(name)}.txt"
            target.write_text(header + "".join(_lines(name, particles, scores)))
            written.append(target)
        return written
    target = out / SINGLE_FILE
    target.write_text(header + "".join(line for name, p in picks.items() for line in _lines(name, p, scores)))
    return [target]
