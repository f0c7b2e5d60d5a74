"""Figures draw what they say: one circle per pick, a legend with the counts, a PR curve naming its
micrographs; `cryopick show` warns instead of drawing another micrograph's picks (skipped without matplotlib)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import matplotlib.pyplot as plt  # noqa: E402

from cryopick.metrics import evaluate  # noqa: E402
from cryopick.particles import Particles  # noqa: E402
from cryopick.plot import overlay_figure, overlay_png, pr_curve_figure, pr_curve_png  # noqa: E402

TRUTH = Particles([30, 80, 120], [30, 60, 100])
PICKS = Particles([31, 80, 10], [30, 90, 10], [0.9, 0.5, 0.2])


def _image():
    return np.random.default_rng(0).normal(size=(128, 160)).astype(np.float32)


def _circles(fig, gid):
    return [p for p in fig.axes[0].patches if p.get_gid() == gid]


def _legend(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_overlay_draws_one_circle_per_pick_and_a_legend_with_counts():
    fig = overlay_figure(_image(), PICKS, TRUTH, diameter_px=20)
    try:
        picks = _circles(fig, "pick")
        assert len(picks) == len(PICKS)
        assert sorted(tuple(np.round(c.center)) for c in picks) == sorted(zip(PICKS.x, PICKS.y))
        colors = [c.get_edgecolor()[:3] for c in picks]
        assert colors.count((0.0, 1.0, 0.0)) == 1 and colors.count((1.0, 0.0, 0.0)) == 2  # 1 TP, 2 FP
        assert len(_circles(fig, "truth")) == 2  # the two truth particles nobody picked
        assert _legend(fig) == ["picks matching truth (1)", "picks not in truth (2)", "truth missed (2 of 3)"]
    finally:
        plt.close(fig)
    fig = overlay_figure(_image(), PICKS, diameter_px=20)
    try:
        assert len(_circles(fig, "pick")) == 3 and not _circles(fig, "truth")
        assert _legend(fig) == ["picks (3)"]
    finally:
        plt.close(fig)


def test_pr_curve_names_its_micrographs():
    ev = evaluate({"m": PICKS}, {"m": TRUTH}, diameter_px=20)
    fig = pr_curve_figure(ev, micrographs=["mic_001"])
    try:
        ax = fig.axes[0]
        assert ax.get_title().startswith("mic_001: AP")
        assert any("mic_001" in t for t in _legend(fig)) and any(t.startswith("picks: F1") for t in _legend(fig))
    finally:
        plt.close(fig)
    fig = pr_curve_figure(ev, micrographs=[f"m{i}" for i in range(12)])
    try:
        assert fig.axes[0].get_title().startswith("12 micrographs: AP")
    finally:
        plt.close(fig)


def test_png_writers(tmp_path):
    assert overlay_png(_image(), PICKS, TRUTH, path=tmp_path / "o.png", diameter_px=20).read_bytes()[:4] == \
        b"\x89PNG"
    ev = evaluate({"m": PICKS}, {"m": TRUTH}, diameter_px=20)
    assert pr_curve_png(ev, tmp_path / "pr.png", micrographs=["m"]).read_bytes()[:4] == b"\x89PNG"


def _sim(tmp_path, n=2):
    from cryopick.simulate import SimulationConfig, simulate_dataset

    return simulate_dataset(SimulationConfig(shape=(200, 200), n_micrographs=n, particles_per_micrograph=5,
                                             diameter_px=24, seed=3), tmp_path / "sim")


def _show(args):
    from click.testing import CliRunner

    from cryopick.cli.show import show

    return CliRunner().invoke(show, args)


def test_show_draws_only_this_micrographs_picks(tmp_path, monkeypatch):
    import cryopick.plot
    from cryopick.io.coords import read_coordinates

    ds = _sim(tmp_path)
    drawn = {}
    real = cryopick.plot.overlay_png

    def spy(image, picks, truth=None, **kw):
        drawn["picks"], drawn["truth"] = picks, truth
        return real(image, picks, truth, **kw)

    monkeypatch.setattr(cryopick.plot, "overlay_png", spy)
    result = _show(["--micrograph", str(ds.micrographs[1]), "--picks", str(ds.truth), "--truth", str(ds.truth),
                    "--diameter", "24", "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    truth = {k.rsplit(".", 1)[0]: v for k, v in read_coordinates(ds.truth).items()}  # keys: sim_0001.mrc
    assert len(truth) == 2 and len(truth["sim_0001"]) != len(truth["sim_0000"]) or \
        not np.allclose(truth["sim_0001"].x[:1], truth["sim_0000"].x[:1])
    assert len(drawn["picks"]) == len(truth["sim_0001"]) and "warning" not in result.output
    assert np.allclose(drawn["picks"].x, truth["sim_0001"].x)
    assert (tmp_path / "f" / "sim_0001_overlay.png").exists() and (tmp_path / "f" / "pr_curve.png").exists()


def test_show_warns_when_no_picks_name_the_micrograph(tmp_path, monkeypatch):
    import shutil

    import cryopick.plot
    from cryopick import progress

    monkeypatch.setitem(progress._state, "quiet", False)  # warnings are status lines: -q silences them

    ds = _sim(tmp_path)
    other = tmp_path / "other.mrc"
    shutil.copy(ds.micrographs[0], other)
    drawn = {}
    monkeypatch.setattr(cryopick.plot, "overlay_png", lambda image, picks, truth=None, **kw: drawn.update(
        picks=picks) or kw["path"])
    result = _show(["--micrograph", str(other), "--picks", str(ds.truth), "--diameter", "24",
                    "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "no picks for micrograph 'other'" in result.output
    assert "sim_0000" in result.output  # says which micrographs the file does name
    assert len(drawn["picks"]) == 0
