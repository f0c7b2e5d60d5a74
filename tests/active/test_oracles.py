"""Oracles: the simulated one answers from the truth; the terminal one saves PNG crops and reads y/n/s/q."""

import io
import zlib

import numpy as np

from cryopick.particles import Particles
from cryopick_active.acquisition import Query
from cryopick_active.oracles import SimulatedOracle, TerminalOracle, render_blocks


def test_simulated_oracle_answers_from_the_truth():
    truth = {"m": Particles([10.0, 50.0], [10.0, 50.0])}
    oracle = SimulatedOracle(truth, diameter_px=10)
    answers = oracle.ask([Query("m", 12.0, 11.0), Query("m", 30.0, 30.0), Query("other", 10, 10)])
    assert [(a.x, a.y, a.positive) for a in answers] == [(10.0, 10.0, True), (30.0, 30.0, False), (10, 10, False)]


class _Session:
    diameter_px = 8.0

    def image(self, name):
        return np.random.default_rng(0).normal(size=(40, 40)).astype(np.float32)


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    idat = data.index(b"IDAT")
    n = int.from_bytes(data[idat - 4: idat], "big")
    raw = zlib.decompress(data[idat + 4: idat + 4 + n])
    assert len(raw) == h * (w + 1)
    return w, h


def test_terminal_oracle_saves_crops_and_reads_answers(tmp_path):
    replies = iter(["maybe", "y", "n", "s", "q"])
    out = io.StringIO()
    oracle = TerminalOracle(tmp_path, input_fn=lambda prompt: next(replies), out=out, draw=True)
    queries = [Query("m", 10, 10), Query("m", 20, 20), Query("m", 30, 30), Query("m", 5, 5)]
    answers = oracle.ask(queries, _Session())
    assert [a.positive for a in answers] == [True, False, None]
    assert oracle.stopped
    pngs = sorted(tmp_path.glob("round01_*.png"))
    assert len(pngs) == 4 and _png_size(pngs[0]) == (64, 64)  # 2 diameters of 8 px, upscaled 4x
    text = out.getvalue()
    assert "answer y, n, s or q" in text and "\033[38;2;" in text


def test_terminal_drawing_is_off_for_pipes(tmp_path):
    out = io.StringIO()
    oracle = TerminalOracle(tmp_path, input_fn=lambda prompt: "n", out=out)
    oracle.ask([Query("m", 10, 10)], _Session())
    assert "\033[" not in out.getvalue() and not oracle.stopped


def test_block_rendering_has_one_line_per_two_rows():
    art = render_blocks(np.arange(64, dtype=np.uint8).reshape(8, 8) * 4, width=8)
    assert len(art.splitlines()) == 4 and art.count("▀") == 32
