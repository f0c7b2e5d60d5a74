"""`cryopick eval` on a project run: which micrographs are scored, and that it says so."""

import json

import pytest


@pytest.mark.slow
def test_eval_leaves_out_training_micrographs_and_takes_micrographs(tmp_path, cli):
    pytest.importorskip("torch")
    run = cli(["-q", "run", "--picker", "mae", "--set", "preset=tiny", "--out", "out", "--json"], cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    held_out = summary["evaluation"]["micrographs"]  # the demo gives mae 15 exemplars on the first micrograph
    assert summary["evaluation"]["excluded_labelled"] == 1 and len(held_out) == 5
    assert summary["output_dir"].endswith(summary["run"]) and (tmp_path / summary["output_dir"]).is_dir()
    args = ["eval", "-P", "out/project.h5", "--truth", "out/demo/truth.star"]

    out = cli(args, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert f"scored 5 micrograph(s) ({', '.join(held_out)}), excluding 1 labelled micrograph(s)" in out.stdout
    data = json.loads(cli([*args, "--json"], cwd=tmp_path).stdout)
    assert data["micrographs"] == held_out and len(data["excluded_labelled"]) == 1
    # the same numbers as the run's own evaluation: one evaluation path
    assert data["f1"] == pytest.approx(summary["evaluation"]["f1"], abs=1e-4)

    one = json.loads(cli([*args, "--micrographs", held_out[-1], "--json"], cwd=tmp_path).stdout)
    assert one["micrographs"] == [held_out[-1]] and one["n_truth"] < data["n_truth"]
    glob = json.loads(cli([*args, "-m", "out/demo/*.mrc", "--include-labelled", "--json"], cwd=tmp_path).stdout)
    assert len(glob["micrographs"]) == 6 and glob["excluded_labelled"] == []
    bad = cli([*args, "--micrographs", "nothing_*"], cwd=tmp_path)
    assert bad.returncode == 2 and "matches none" in bad.stderr
