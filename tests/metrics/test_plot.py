"""Plots write PNGs (skipped without matplotlib)."""

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from cryopick.metrics import evaluate  # noqa: E402
from cryopick.particles import Particles  # noqa: E402
from cryopick.plot import overlay_png, pr_curve_png  # noqa: E402


def test_overlay_and_pr_curve(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(128, 160)).astype(np.float32)
    truth = Particles([30, 80, 120], [30, 60, 100])
    picks = Particles([31, 80, 10], [30, 90, 10], [0.9, 0.5, 0.2])
    path = overlay_png(image, picks, truth, path=tmp_path / "o.png", diameter_px=20)
    assert path.read_bytes()[:4] == b"\x89PNG"
    ev = evaluate({"m": picks}, {"m": truth}, diameter_px=20)
    assert pr_curve_png(ev, tmp_path / "pr.png").stat().st_size > 0


def test_show_command(tmp_path):
    from click.testing import CliRunner

    from cryopick.cli.show import show
    from cryopick.simulate import SimulationConfig, simulate_dataset

    ds = simulate_dataset(SimulationConfig(shape=(200, 200), n_micrographs=1, particles_per_micrograph=5,
                                           diameter_px=24), tmp_path / "sim")
    result = CliRunner().invoke(show, ["--micrograph", str(ds.micrographs[0]), "--picks", str(ds.truth),
                                       "--truth", str(ds.truth), "--diameter", "24", "--out", str(tmp_path / "f")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "f" / "sim_0000_overlay.png").exists() and (tmp_path / "f" / "pr_curve.png").exists()
