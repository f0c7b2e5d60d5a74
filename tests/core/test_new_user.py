"""What a new user hit (issue 9): filesystem errors, Ctrl-C, -q/-v after the command, --micrographs as a
folder or several files, bad micrographs in a batch. Each test runs the `cryopick` command as a user would."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryopick import progress

INTERRUPTED = "interrupted: rerun the same command to resume"


def _one_line_error(out, code=2):
    assert out.returncode == code, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr
    return lines[0]


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    """Four small simulated micrographs (256 px) with their truth."""
    from cryopick.simulate import SimulationConfig, simulate_dataset

    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(SimulationConfig(shape=(256, 256), n_micrographs=4, particles_per_micrograph=8,
                                      diameter_px=24.0, nuisances=False, seed=1), out)
    return out


def _write_mrc(path, data):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mrcfile warns about NaN: that is the point here
        with mrcfile.new(path, overwrite=True) as m:
            m.set_data(np.asarray(data, np.float32))
    return path


def _unwritable_dir():
    """An existing folder this process cannot write to (as root too: /sys is read-only to everyone)."""
    for candidate in (Path("/sys"), Path("/proc")):
        try:
            probe = candidate / ".cryopick-probe"
            probe.mkdir()
        except OSError:
            return candidate
        probe.rmdir()
    pytest.skip("no unwritable folder on this machine")


# -- filesystem errors: checked before the work, one line, exit 2 ---------------------------------------

def test_out_that_is_a_file_fails_before_any_work(tmp_path, cli, sim):
    (tmp_path / "taken").write_text("x")
    out = cli(["run", "--picker", "dog", "--micrographs", str(sim), "--diameter", "24", "--out", "taken"],
              cwd=tmp_path)
    line = _one_line_error(out)
    assert "--out taken" in line and "is a file" in line
    assert "score" not in out.stderr and not list(tmp_path.glob("**/*.h5"))


def test_unwritable_out_and_project_fail_before_any_work(tmp_path, cli, sim):
    ro = _unwritable_dir()
    out = cli(["run", "--picker", "dog", "--micrographs", str(sim), "--diameter", "24", "--out", str(ro)],
              cwd=tmp_path)
    line = _one_line_error(out)
    assert f"--out {ro}" in line and "cannot write" in line
    assert "import" not in out.stderr and "score" not in out.stderr
    out = cli(["run", "--picker", "dog", "--micrographs", str(sim), "--diameter", "24", "--out", "o",
               "--project", str(ro / "p.h5")], cwd=tmp_path)
    line = _one_line_error(out)
    assert f"{ro / 'p.h5'}" in line and "write" in line and "score" not in out.stderr
    line = _one_line_error(cli(["init", str(ro / "sub" / "p.h5")], cwd=tmp_path))
    assert "p.h5" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_out_folder_fails_before_the_pick(tmp_path, cli, sim):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        out = cli(["run", "--picker", "dog", "--micrographs", str(sim), "--diameter", "24", "--out", "ro"],
                  cwd=tmp_path)
        assert "permission denied" in _one_line_error(out) and "score" not in out.stderr
    finally:
        ro.chmod(0o755)


def test_export_to_a_file_fails_in_one_line(tmp_path, cli, sim):
    assert cli(["run", "--picker", "dog", "--micrographs", str(sim), "--diameter", "24", "--out", "o"],
               cwd=tmp_path).returncode == 0
    (tmp_path / "f").write_text("x")
    line = _one_line_error(cli(["export", "-P", "o/project.h5", "--out", "f"], cwd=tmp_path))
    assert "--out f" in line and "is a file" in line


def test_disk_full_and_unexpected_errors_print_one_line(tmp_path, monkeypatch, capsys):
    import cryopick.simulate
    from cryopick.cli.main import cli, main

    monkeypatch.setattr(cli, "commands", dict(cli.commands))  # main() adds the plugins' commands: undo after
    monkeypatch.setitem(progress._state, "quiet", False)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "sim_0000.mrc"))

    monkeypatch.setattr(cryopick.simulate, "simulate_dataset", disk_full)
    assert main(["simulate", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'sim_0000.mrc'}: disk full;" in err and "Traceback" not in err
    assert main(["simulate", "--out", str(tmp_path), "-v"]) == 2  # -v after the command: the traceback
    assert "Traceback" in capsys.readouterr().err

    def bug(*args, **kwargs):
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(cryopick.simulate, "simulate_dataset", bug)
    assert main(["simulate", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "ZeroDivisionError: oops" in err and "-v" in err and "Traceback" not in err


# -- Ctrl-C ----------------------------------------------------------------------------------------------

def test_ctrl_c_lost_in_a_weakref_callback_still_stops_the_loop():
    """Python drops a KeyboardInterrupt raised while a weakref callback runs (h5py and memmaps run them
    constantly): the flag set by the handler stops the next progress step anyway."""
    # As in an interactive shell, also when pytest runs as a background job (where SIGINT is ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _weakref_interrupt()
    finally:
        signal.signal(signal.SIGINT, previous)


def _weakref_interrupt():

    class Thing:
        pass

    def callback(_ref):
        signal.raise_signal(signal.SIGINT)
        for _ in range(100):  # the handler runs (and its exception is dropped) in here
            pass

    seen = []
    with progress.interrupt_handler():
        with pytest.raises(KeyboardInterrupt):
            for i in progress.progress(range(5), "loop"):
                seen.append(i)
                if i == 1:
                    thing = Thing()
                    ref = weakref.ref(thing, callback)  # noqa: F841
                    del thing  # the callback runs now; its KeyboardInterrupt is swallowed
    assert seen == [0, 1]
    assert not progress.interrupted()  # reset when the command ends


def test_ctrl_c_stops_a_run_and_the_same_command_resumes(tmp_path):
    from cryopick.simulate import SimulationConfig, simulate_dataset

    simulate_dataset(SimulationConfig(shape=(1024, 1024), n_micrographs=24, particles_per_micrograph=20,
                                      diameter_px=40.0, nuisances=False, seed=2), tmp_path / "sim")
    cmd = [sys.executable, "-m", "cryopick.cli.main", "run", "--picker", "dog", "--micrographs", "sim",
           "--diameter", "40", "--out", "out"]
    env = {**os.environ, "CRYOPICK_QUIET": ""}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (tmp_path / "out" / "project.h5").exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # inside import / preprocess
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    stopped_after = time.monotonic() - sent
    if proc.returncode == 0:
        pytest.skip("the run finished before the signal (machine too fast for this data size)")
    assert proc.returncode == 130, (stdout, stderr)
    assert INTERRUPTED in stderr and "Traceback" not in stderr and "aborted" not in stderr
    assert "cryopick run" not in stdout  # no summary: it stopped
    assert stopped_after < 5
    again = subprocess.run([*cmd, "--json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["micrographs"] == 24 and summary["picks"] > 0


# -- -q / -v after the command -----------------------------------------------------------------------------

def test_quiet_and_verbose_are_accepted_after_the_command(tmp_path, cli):
    quiet = cli(["simulate", "--out", "s", "--n", "1", "--size", "128", "-q"], cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr
    loud = cli(["simulate", "--out", "s", "--n", "1", "--size", "128"], cwd=tmp_path)
    assert "micrographs" in loud.stderr
    both = cli(["-q", "simulate", "--out", "s", "--n", "1", "--size", "128", "--quiet"], cwd=tmp_path)
    assert both.returncode == 0 and both.stderr == ""
    bad = cli(["run", "--picker", "dgo", "--verbose"], cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" in bad.stderr and "error:" in bad.stderr
    assert "Traceback" not in cli(["run", "--picker", "dgo"], cwd=tmp_path).stderr


# -- --micrographs: folder, glob, several files --------------------------------------------------------------

def test_micrographs_as_folder_glob_or_several_files(tmp_path, cli, sim):
    files = sorted(str(p) for p in sim.glob("*.mrc"))
    for i, spec in enumerate(([str(sim)], [str(sim / "*.mrc")], files, [files[0], "-m", files[1]])):
        out = cli(["import", "-P", f"p{i}.h5", "--micrographs", *spec, "--json"], cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        expected = 2 if "-m" in spec else len(files)
        assert json.loads(out.stdout)["micrographs"] == expected, spec
    out = cli(["run", "--picker", "dog", "--micrographs", *files[:3], "--diameter", "24", "--out", "o", "--json"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["micrographs"] == 3
    assert "no such file" in _one_line_error(cli(["import", "-P", "q.h5", "-m", files[0], "missing.mrc"],
                                                  cwd=tmp_path))


# -- bad micrographs are skipped and reported --------------------------------------------------------------

def test_bad_micrographs_are_skipped_and_reported(tmp_path, cli, sim):
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    for p in sorted(sim.glob("*.mrc"))[:2]:
        shutil.copy(p, data / p.name)
    nan = np.ones((256, 256), np.float32)
    nan[3, 4] = np.nan
    _write_mrc(data / "b_nan.mrc", nan)
    good = (data / sorted(p.name for p in data.glob("sim_*.mrc"))[0]).read_bytes()
    (data / "a_truncated.mrc").write_bytes(good[: len(good) // 2])
    out = cli(["run", "--picker", "dog", "--micrographs", "data", "--diameter", "24", "--out", "o", "--json"],
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["micrographs"] == 2
    skipped = {Path(s["path"]).name: s["reason"] for s in summary["skipped"]}
    assert set(skipped) == {"a_truncated.mrc", "b_nan.mrc"}
    assert "truncated" in skipped["a_truncated.mrc"] and "NaN" in skipped["b_nan.mrc"]
    assert "skipped 2 of 4 micrographs: a_truncated.mrc (" in out.stderr
    from cryopick.pipeline import open_project

    project = open_project(tmp_path / "o" / "project.h5", "r")
    assert sorted(project.micrographs()) == sorted(p.stem for p in data.glob("sim_*.mrc"))  # nothing of the bad
    text = cli(["import", "-P", "i.h5", "--micrographs", "data"], cwd=tmp_path)
    assert text.returncode == 0 and "skipped 2 of 4 micrographs" in text.stdout
    line = _one_line_error(cli(["import", "-P", "j.h5", "-m", "data/a_truncated.mrc", "data/b_nan.mrc"],
                               cwd=tmp_path))
    assert "none of the 2 micrograph(s) is usable" in line and "b_nan.mrc" in line


# -- install hint --------------------------------------------------------------------------------------------

def test_missing_picker_says_how_to_install_it_from_the_repository(tmp_path, cli):
    line = _one_line_error(cli(["run", "--picker", "mae", "-o", "o"], cwd=tmp_path,
                               env_extra={"CRYOPICK_DISABLE_PLUGINS": "mae"}))
    assert "pip install ./packages/cryopick-mae" in line and "pip install cryopick-mae" not in line
    repo = Path(__file__).resolve().parents[2]
    assert (repo / "packages" / "cryopick-mae" / "pyproject.toml").exists()  # the hint names a real folder
