"""``cryopick active label`` end to end on small simulated micrographs, then ``cryopick run --picker active``."""

import io
import json

import pytest

from cryopick.cli.main import main


@pytest.fixture(autouse=True)
def _pristine(pristine_cli):
    """main() in-process adds plugin commands to the global group: undo it after each test."""


def _run(args, capsys):
    rc = main(args)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_label_with_the_simulated_oracle_then_pick_with_the_model(small_set, tmp_path, capsys):
    mics = str(small_set.micrographs[0].parent / "*.mrc")
    proj = str(tmp_path / "p.h5")
    common = ["--set", "preset=tiny", "-P", proj]
    rc, out, err = _run(["active", "label", *common, "--micrographs", mics, "--diameter", "24", "--oracle",
                         "simulated", "--truth", str(small_set.truth), "--rounds", "3", "--per-round", "5", "--json"],
                        capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert [r["round"] for r in summary["rounds"]] == [1, 2, 3]
    assert [r["labels"] for r in summary["rounds"]] == [5, 10, 15]
    assert all(0 <= r["ap"] <= 1 and "f1" in r for r in summary["rounds"])
    assert "round 3: 15 labels" in err and "AP" in err  # a summary per round on stderr
    # a second session continues from the stored labels and cached features
    rc, out, err = _run(["active", "label", *common, "--oracle", "simulated", "--truth", str(small_set.truth),
                         "--rounds", "1", "--per-round", "5", "--json"], capsys)
    again = json.loads(out)
    assert rc == 0 and [r["round"] for r in again["rounds"]] == [1, 2, 3, 4] and again["labels"] == 20
    assert "continuing from 15 labels" in err
    # cryopick run --picker active picks with that model (found by its key, not retrained)
    rc, out, err = _run(["run", "--picker", "active", *common, "--micrographs", mics, "--diameter", "24",
                         "--truth", str(small_set.truth), "--out", str(tmp_path / "out"), "--json"], capsys)
    assert rc == 0, err
    run = json.loads(out)
    assert "using the model trained earlier" in err and run["resumed"]["train"] == 1
    assert run["evaluation"]["average_precision"] == pytest.approx(again["rounds"][-1]["ap"], abs=1e-3)
    assert run["output"][0].endswith(".star")


def test_terminal_oracle_from_the_command_line(small_set, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("y\nn\ns\nn\nq\n"))
    rc, out, err = _run(["active", "label", "--set", "preset=tiny", "-P", str(tmp_path / "t.h5"), "--micrographs",
                         str(small_set.micrographs[0]), "--diameter", "24", "--oracle", "terminal", "--rounds", "3",
                         "--per-round", "5", "--crops", str(tmp_path / "crops"), "--json"], capsys)
    assert rc == 0, err
    summary = json.loads(out)
    assert len(summary["rounds"]) == 1 and summary["particles"] == 1 and summary["background"] == 2
    assert len(list((tmp_path / "crops").glob("*.png"))) == 5


@pytest.mark.parametrize("args, message", [
    (["--oracle", "simulated"], "--oracle simulated answers from the ground truth: give --truth FILE"),
    (["--oracle", "simulated", "--truth", "x.star", "--set", "features=resnet99"], "unknown feature provider"),
    (["--oracle", "simulated", "--truth", "nope.star"], "nope.star"),
])
def test_bad_input_is_one_line_without_traceback(small_set, tmp_path, capsys, args, message):
    rc, out, err = _run(["active", "label", "--set", "preset=tiny", "-P", str(tmp_path / "e.h5"), "--micrographs",
                         str(small_set.micrographs[0]), "--diameter", "24", *args], capsys)
    assert rc == 2
    assert message in err and "Traceback" not in err
