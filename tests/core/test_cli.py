"""The `cryopick` command as a user runs it: demo, third-party picker, plugin listing, bad input."""

import json
import re

import mrcfile
import numpy as np
import starfile


def test_demo_run_with_dog_prints_precision_recall(tmp_path, cli):
    out = cli(["run", "--picker", "dog", "--out", "out"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "precision" in out.stdout and "recall" in out.stdout and "F1" in out.stdout
    assert "per micrograph" in out.stdout
    runs = sorted((tmp_path / "out").glob("dog-*/particles.star"))
    assert len(runs) == 1 and str(runs[0].parent.relative_to(tmp_path)) in out.stdout  # OUT/<run>/, path printed
    star = starfile.read(runs[0])
    assert {"rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAutopickFigureOfMerit"} <= set(star.columns)
    # progress went to stderr, the summary to stdout
    assert "score" in out.stderr
    again = cli(["run", "--picker", "dog", "--out", "out", "--json"], cwd=tmp_path)
    summary = json.loads(again.stdout)
    assert summary["resumed"]["score"] == summary["micrographs"]
    ev = summary["evaluation"]  # the demo is hard (SNR 0.02, nuisances): DoG ranks particles well above chance
    assert ev["f1"] > 0.5 and ev["recall"] > 0.5 and ev["precision"] > 0.45 and ev["n_truth"] > 100


def test_third_party_picker_runs_from_the_shell(tmp_path, cli, third_party):
    listed = cli(["plugins", "--json"], cwd=tmp_path, extra_path=third_party)
    data = json.loads(listed.stdout)
    example = next(p for p in data["plugins"] if p["name"] == "example")
    assert example["distribution"] == "cryopick-example"
    assert [c["name"] for c in example["components"]["picker"]] == ["example"]
    assert any(e["name"] == "broken" for e in data["load_errors"])
    out = cli(["run", "--picker", "example", "--threshold", "half", "--out", "o", "--json"], cwd=tmp_path,
              extra_path=third_party)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["picker"] == "example" and summary["picks"] > 0
    assert "failed to load: broken" in out.stderr  # reported, not fatal


def test_plugins_lists_every_kind(tmp_path, cli):
    out = cli(["plugins", "--verbose"], cwd=tmp_path)
    assert out.returncode == 0
    # a component line per registered name, under its plugin ("(no pickers installed)" would not do)
    for kind, name in (("preprocessor", "downsample"), ("thresholder", "otsu"), ("exporter", "star"),
                       ("importer", "box"), ("picker", "dog")):
        assert re.search(rf"^\s+{kind}\s+{name}\s+- ", out.stdout, re.M), (kind, out.stdout)
    assert "(no " not in out.stdout
    bare = cli(["plugins"], cwd=tmp_path, env_extra={"CRYOPICK_DISABLE_PLUGINS": "mae,topaz,hydra,active"})
    assert re.search(r"^\s+picker\s+dog$", bare.stdout, re.M) and "(no backbones installed)" in bare.stdout


def _one_line_error(out):
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


def test_bad_input_gives_one_clear_line(tmp_path, cli):
    assert "Did you mean 'dog'" in _one_line_error(cli(["run", "--picker", "dgo"], cwd=tmp_path))
    assert "not a setting" in _one_line_error(cli(["run", "--set", "sigma=2", "-o", "o"], cwd=tmp_path))
    assert "key=value" in _one_line_error(cli(["run", "--set", "oops", "-o", "o"], cwd=tmp_path))
    assert "matches no files" in _one_line_error(
        cli(["run", "--micrographs", "nothing/*.mrc", "--diameter", "40"], cwd=tmp_path))
    (tmp_path / "notmrc.mrc").write_bytes(b"\x00" * 2000)
    assert "notmrc.mrc" in _one_line_error(
        cli(["run", "--micrographs", "notmrc.mrc", "--diameter", "40", "-o", "o1"], cwd=tmp_path))
    image = np.zeros((64, 64), np.float32)
    image[3, 3] = np.nan
    with mrcfile.new(tmp_path / "nan.mrc") as m:
        m.set_data(image)
    assert "nan.mrc" in _one_line_error(
        cli(["run", "--micrographs", "nan.mrc", "--diameter", "10", "-o", "o2"], cwd=tmp_path))
    with mrcfile.new(tmp_path / "ok.mrc") as m:
        m.set_data(np.random.default_rng(0).normal(size=(64, 64)).astype(np.float32))
    (tmp_path / "labels.star").write_text("data_\nloop_\n_rlnMicrographName\n_rlnFoo\nok.mrc 1\n")
    msg = _one_line_error(cli(["run", "--picker", "dog", "--micrographs", "ok.mrc", "--labels", "labels.star",
                               "--diameter", "10", "-o", "o3"], cwd=tmp_path))
    assert "labels.star" in msg and "rlnCoordinateX" in msg
    (tmp_path / "outside.star").write_text(
        "data_\nloop_\n_rlnMicrographName\n_rlnCoordinateX\n_rlnCoordinateY\nok.mrc 500 10\n")
    msg = _one_line_error(cli(["run", "--micrographs", "ok.mrc", "--truth", "outside.star", "--diameter", "10",
                               "-o", "o4"], cwd=tmp_path))
    assert "outside" in msg
    assert "Ångström" in _one_line_error(cli(["run", "--micrographs", "ok.mrc", "-o", "o5"], cwd=tmp_path))


def test_stage_commands_chain(tmp_path, cli):
    from cryopick.simulate import make_demo

    data = make_demo(tmp_path / "d")
    p = str(tmp_path / "p.h5")
    assert cli(["init", p], cwd=tmp_path).returncode == 0
    out = cli(["import", "-P", p, "--micrographs", str(tmp_path / "d" / "*.mrc"), "--labels", str(data.truth),
               "--label-set", "truth", "--diameter", str(data.config.diameter_px)], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "label set 'truth'" in out.stdout
    out = cli(["pick", "-P", p, "--picker", "dog", "--threshold", "topk:20"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "20.0 each" in out.stdout
    out = cli(["export", "-P", p, "--format", "box", "--out", "boxes"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "boxes").glob("*.box"))) == len(data.micrographs)
    out = cli(["eval", "-P", p, "--truth", str(data.truth), "--json"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["n_picks"] == 20 * len(data.micrographs)
