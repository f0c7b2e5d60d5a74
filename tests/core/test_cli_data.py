"""`cryopick simulate`, `eval` of the truth against itself, and `show` as a user runs them."""

import json

import mrcfile
import numpy as np
import pytest
import starfile


def test_simulate_is_deterministic_and_eval_of_truth_is_perfect(tmp_path, cli):
    args = ["simulate", "--n", "2", "--size", "256", "--particles", "10", "--diameter", "24", "--seed", "5"]
    assert cli([*args, "--out", "a"], cwd=tmp_path).returncode == 0
    assert cli([*args, "--out", "b"], cwd=tmp_path).returncode == 0
    mics = sorted((tmp_path / "a").glob("*.mrc"))
    assert len(mics) == 2
    for m in mics:
        with mrcfile.open(m) as x, mrcfile.open(tmp_path / "b" / m.name) as y:
            np.testing.assert_array_equal(x.data, y.data)
    truth = starfile.read(tmp_path / "a" / "truth.star")
    assert len(truth) == 20
    out = cli(["eval", "--picks", "a/truth.star", "--truth", "a/truth.star", "--diameter", "24", "--json"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["precision"] == r["recall"] == r["f1"] == r["average_precision"] == 1.0


def test_show_writes_overlay_and_pr_curve(tmp_path, cli):
    pytest.importorskip("matplotlib")
    assert cli(["simulate", "--n", "1", "--size", "256", "--particles", "8", "--diameter", "24", "--out", "s"],
               cwd=tmp_path).returncode == 0
    mic = next((tmp_path / "s").glob("*.mrc"))
    out = cli(["show", "--micrograph", str(mic), "--picks", "s/truth.star", "--truth", "s/truth.star",
               "--diameter", "24", "--out", "figs"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    pngs = sorted(p.name for p in (tmp_path / "figs").glob("*.png"))
    assert f"{mic.stem}_overlay.png" in pngs and "pr_curve.png" in pngs
    assert all((tmp_path / "figs" / p).read_bytes()[:4] == b"\x89PNG" for p in pngs)
