"""Who answers the queries: one interface, so the labelling loop does not know whether a person or the ground
truth answers.

An oracle has ``ask(queries, session) -> list[Answer]``: for each :class:`~cryopick_active.acquisition.Query`
an :class:`Answer` saying particle (``True``), background (``False``) or skip (``None``), possibly at a
corrected position (a person clicks the particle's centre). An empty list from a person means "stop".

* :class:`SimulatedOracle` answers from known particle positions (tests, benchmarks, the demo);
* :class:`TerminalOracle` saves each queried region as a PNG, draws it in the terminal where it can (24-bit
  colour half blocks; plain text over dumb terminals and pipes) and reads ``y``/``n``/``s``/``q``: works over ssh;
* the napari dock widget (:mod:`cryopick_active.napari_widget`) lets a person click on the micrograph.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Protocol

import attrs
import numpy as np

from cryopick.particles import Particles
from cryopick_active.acquisition import Query


@attrs.frozen
class Answer:
    """The label of one region: ``positive`` True (particle), False (background), None (skipped); ``(x, y)``
    in preprocessed pixels of micrograph ``name``."""

    name: str
    x: float
    y: float
    positive: bool | None


class Oracle(Protocol):
    def ask(self, queries: list[Query], session) -> list[Answer]:
        """Labels for ``queries`` (one per query, in order; ``positive=None`` skips one). An empty list ends
        the labelling."""


@attrs.define
class SimulatedOracle:
    """Answers from the truth (``{name: Particles}`` in the session's preprocessed pixels): a query within
    ``radius_fraction`` of a particle diameter of a true centre is a particle, labelled at that centre (as a
    person clicks the particle); anything else is background, labelled where it was asked."""

    truth: dict[str, Particles]
    diameter_px: float
    radius_fraction: float = 0.5

    def ask(self, queries: list[Query], session=None) -> list[Answer]:
        from scipy.spatial import cKDTree

        trees = {n: cKDTree(t.xy) for n, t in self.truth.items() if len(t)}
        out = []
        for q in queries:
            tree = trees.get(q.name)
            if tree is not None:
                dist, i = tree.query([q.x, q.y], k=1)
                if dist <= self.radius_fraction * self.diameter_px:
                    t = self.truth[q.name]
                    out.append(Answer(q.name, float(t.x[i]), float(t.y[i]), True))
                    continue
            out.append(Answer(q.name, q.x, q.y, False))
        return out


# -- terminal -----------------------------------------------------------------------------------------------

def crop_region(image: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """A ``size`` x ``size`` crop centred on ``(x, y)``, zeros outside the image."""
    half = size // 2
    padded = np.pad(np.asarray(image, dtype=np.float32), size)
    x0, y0 = int(round(x)) - half + size, int(round(y)) - half + size
    return padded[y0: y0 + size, x0: x0 + size]


def to_grey(crop: np.ndarray) -> np.ndarray:
    """uint8 grey levels, contrast from the 1st-99th percentile."""
    lo, hi = np.percentile(crop, [1, 99]) if crop.size else (0.0, 1.0)
    scaled = (crop - lo) / (hi - lo if hi > lo else 1.0)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def write_png(path: Path, grey: np.ndarray, upscale: int = 4) -> Path:
    """Write a grey image as PNG (nearest-neighbour upscaled) with a circle of the query's centre."""
    import struct
    import zlib

    img = np.kron(grey, np.ones((upscale, upscale), dtype=np.uint8))
    h, w = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return path


def render_blocks(grey: np.ndarray, width: int = 32) -> str:
    """The crop as rows of upper-half blocks with 24-bit foreground/background colours (two pixels per
    character), resampled to ``width`` columns; a cross marks the centre."""
    h, w = grey.shape
    cols = min(width, w)
    rows = max(2, int(round(h * cols / w)) // 2 * 2)
    yi = (np.arange(rows) * h / rows).astype(int)
    xi = (np.arange(cols) * w / cols).astype(int)
    small = grey[np.ix_(yi, xi)].astype(int)
    cy, cx = rows // 2, cols // 2
    lines = []
    for r in range(0, rows, 2):
        cells = []
        for c in range(cols):
            top, bottom = small[r, c], small[r + 1, c]
            mark = (c == cx and abs(r - cy) <= 1) or (abs(c - cx) == 1 and r in (cy - 1, cy))
            if mark:
                cells.append("\033[38;2;255;200;0m\033[48;2;255;200;0m▀")
            else:
                cells.append(f"\033[38;2;{top};{top};{top}m\033[48;2;{bottom};{bottom};{bottom}m▀")
        lines.append("".join(cells) + "\033[0m")
    return "\n".join(lines)


def can_draw(stream) -> bool:
    """Draw inline only on a terminal that is not dumb, unless NO_COLOR is set."""
    return bool(getattr(stream, "isatty", lambda: False)()) and os.environ.get("TERM", "") not in ("", "dumb") \
        and "NO_COLOR" not in os.environ


@attrs.define
class TerminalOracle:
    """Asks a person at a terminal. Each queried region (``crop_factor`` particle diameters) is written to
    ``crops_dir/round<R>_<i>_<micrograph>.png`` and, on a capable terminal, drawn inline; the person answers
    ``y`` (particle), ``n`` (not a particle), ``s`` (skip) or ``q`` (stop labelling)."""

    crops_dir: Path
    crop_factor: float = 2.0
    draw: bool | None = None  # None: when the output is a capable terminal
    input_fn: object = input
    out: object = None
    round: int = 0
    stopped: bool = False  # the person answered q: the loop ends after this round

    def ask(self, queries: list[Query], session) -> list[Answer]:
        out = self.out or sys.stderr
        draw = can_draw(out) if self.draw is None else self.draw
        self.round += 1
        size = max(8, int(round(self.crop_factor * session.diameter_px)))
        answers = []
        for i, q in enumerate(queries, 1):
            image = session.image(q.name)
            grey = to_grey(crop_region(image, q.x, q.y, size))
            png = write_png(Path(self.crops_dir) / f"round{self.round:02d}_{i:02d}_{q.name}.png", grey)
            print(f"[{i}/{len(queries)}] {q.name} at x={q.x:.0f}, y={q.y:.0f} (preprocessed px); crop: {png}",
                  file=out, flush=True)
            if draw:
                print(render_blocks(grey), file=out, flush=True)
            while True:
                # the prompt goes to stderr with the crops: stdout stays clean for --json
                print("particle? [y]es / [n]o / [s]kip / [q]uit: ", end="", file=out, flush=True)
                try:
                    reply = str(self.input_fn("")).strip().lower()
                except EOFError:  # input closed: stop
                    reply = "q"
                if reply in ("y", "yes", "n", "no", "s", "skip", "", "q", "quit"):
                    break
                print("answer y, n, s or q", file=out, flush=True)
            if reply in ("q", "quit"):
                self.stopped = True
                return answers
            positive = True if reply.startswith("y") else False if reply.startswith("n") else None
            answers.append(Answer(q.name, q.x, q.y, positive))
        return answers
