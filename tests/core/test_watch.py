"""cryopick watch: micrographs copied into a folder one by one (by a thread, in pieces) are each picked exactly
once, also across a restart; Ctrl-C stops cleanly and the same command resumes."""

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import attrs
import numpy as np
import pytest

from cryopick.pipeline import RunOptions, open_project, run_pipeline
from cryopick.watch import FolderWatcher, WatchOptions, watch

N = 6


@pytest.fixture(scope="module")
def micrographs(tmp_path_factory):
    from cryopick.simulate import SimulationConfig, simulate_dataset

    out = tmp_path_factory.mktemp("sim")
    simulate_dataset(SimulationConfig(shape=(256, 256), n_micrographs=N, particles_per_micrograph=15,
                                      diameter_px=20.0, seed=5), out)
    return sorted(out.glob("*.mrc"))


def copy_slowly(paths, folder: Path, gap_s: float = 0.25, stop: threading.Event | None = None) -> threading.Thread:
    """A thread that writes each file into ``folder`` in two halves (the watcher must wait for the second)."""

    def run():
        for path in paths:
            data = path.read_bytes()
            with open(folder / path.name, "wb") as f:
                f.write(data[: len(data) // 2])
                f.flush()
                time.sleep(gap_s / 2)
                f.write(data[len(data) // 2:])
            time.sleep(gap_s)
            if stop is not None and stop.is_set():
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def picked_lines(lines):
    return [m.group(1) for line in lines if (m := re.match(r"watch: (\S+): \d+ picks", line))]


def test_files_copied_one_by_one_are_each_picked_exactly_once_across_a_restart(micrographs, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    copier = copy_slowly(micrographs, incoming)
    lines: list[str] = []
    opts = WatchOptions(folder=incoming, picker="dog", diameter="20", out=tmp_path / "out", settle_s=0.3,
                        poll_s=0.05, max_micrographs=2)
    first = watch(opts, report=lines.append)
    assert first["micrographs"] == 2 and first["status"] == "stopped: --max-micrographs 2 reached"
    # the restart: everything that arrived meanwhile and later, nothing of the first two again
    # (the timeout only guards against a hang: the count stops it)
    again = watch(attrs.evolve(opts, max_micrographs=N - 2, timeout_s=30), report=lines.append)
    copier.join()
    names = picked_lines(lines)
    assert sorted(names) == [p.stem for p in micrographs]  # each once
    assert again["micrographs"] == N - 2 and again["resumed"] == 2  # found done, not picked
    run_dir = tmp_path / "out" / first["run"]
    assert sorted(f.name for f in run_dir.glob("*_autopick.star")) == [f"{p.stem}_autopick.star" for p in micrographs]
    # a third start finds everything done and picks nothing
    third = watch(attrs.evolve(opts, max_micrographs=None, once=True), report=lines.append)
    assert third["micrographs"] == 0 and third["resumed"] == N
    assert len(picked_lines(lines)) == N


def test_watch_picks_what_run_picks_and_writes_relion_files(micrographs, tmp_path):
    """Per-micrograph coordinate files hold the picks ``cryopick run`` makes (same run id and scores)."""
    from cryopick.io.star import read_star

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for p in micrographs:
        shutil.copy(p, incoming)
    summary = watch(WatchOptions(folder=incoming, picker="dog", diameter="20", out=tmp_path / "w", settle_s=0.0,
                                 poll_s=0.05, once=True), report=lambda line: None)
    ran = run_pipeline(RunOptions(picker="dog", micrographs=str(incoming), diameter="20", out=tmp_path / "r"))
    assert summary["run"] == ran["run"] and summary["picks"] == ran["picks"] > 0
    picks, streamed = ({}, {})
    for store, into in ((tmp_path / "r" / "project.h5", picks), (tmp_path / "w" / "project.h5", streamed)):
        project = open_project(store, "r")
        into.update(project.picks(ran["run"]))
        project.store.close()
    for p in micrographs:
        for field in ("x", "y", "score"):
            np.testing.assert_array_equal(getattr(streamed[p.stem], field), getattr(picks[p.stem], field))
        written = read_star(tmp_path / "w" / summary["run"] / f"{p.stem}_autopick.star")[p.stem]
        np.testing.assert_allclose(written.x, picks[p.stem].x, atol=1e-5)
        np.testing.assert_allclose(written.score, picks[p.stem].score, atol=1e-6)  # written with 6 decimals


def test_watch_with_dask_workers(micrographs, tmp_path):
    pytest.importorskip("distributed")
    from cryopick.executor import ExecutorOptions

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    copier = copy_slowly(micrographs, incoming, gap_s=0.1)
    lines: list[str] = []
    summary = watch(WatchOptions(folder=incoming, picker="dog", diameter="20", out=tmp_path / "out", settle_s=0.2,
                                 poll_s=0.05, max_micrographs=N, timeout_s=30,
                                 executor=ExecutorOptions("dask", workers=2)),
                    report=lines.append)
    copier.join()
    assert sorted(picked_lines(lines)) == [p.stem for p in micrographs]
    assert summary["micrographs"] == N


def test_a_file_is_complete_once_it_settles_or_has_its_marker(tmp_path):
    f = tmp_path / "a.mrc"
    f.write_bytes(b"12")
    watcher = FolderWatcher(tmp_path, "*.mrc", settle_s=1.0)
    assert watcher.scan(now=0.0) == ([], 1)
    assert watcher.scan(now=0.5) == ([], 1)
    f.write_bytes(b"1234")  # still being written
    assert watcher.scan(now=1.2) == ([], 1)
    assert watcher.scan(now=2.3) == ([f], 0)
    watcher.take(f)
    assert watcher.scan(now=9.0) == ([], 0)
    marked = FolderWatcher(tmp_path, "*.mrc", settle_s=1.0, done_marker=".done")
    assert marked.scan() == ([], 1)
    (tmp_path / "a.done").touch()
    assert marked.scan() == ([f], 0)


def test_once_with_a_done_marker_leaves_unmarked_files(micrographs, tmp_path):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for p in micrographs[:2]:
        shutil.copy(p, incoming)
    (incoming / f"{micrographs[0].name}.done").touch()
    lines: list[str] = []
    summary = watch(WatchOptions(folder=incoming, picker="dog", diameter="20", out=tmp_path / "out",
                                 done_marker=".done", poll_s=0.05, once=True), report=lines.append)
    assert picked_lines(lines) == [micrographs[0].stem] and summary["micrographs"] == 1


def test_watch_command_and_ctrl_c(micrographs, tmp_path):
    """The command picks as files come, stops on Ctrl-C saying how to resume, and the same command resumes."""
    from cryopick.cli.main import INTERRUPTED

    incoming = tmp_path / "incoming"
    incoming.mkdir()
    for p in micrographs[:3]:
        shutil.copy(p, incoming)
    cmd = [sys.executable, "-m", "cryopick.cli.main", "watch", str(incoming), "--picker", "dog", "--diameter", "20",
           "-o", "out", "--settle", "0.2", "--poll", "0.05"]
    env = {**os.environ, "CRYOPICK_QUIET": ""}
    # SIGINT as in an interactive shell, also when pytest runs where it is ignored (a background job)
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    stdout = []
    deadline = time.monotonic() + 60
    while len(picked_lines(stdout)) < 3 and time.monotonic() < deadline:
        stdout.append(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    rest, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, (stdout, rest, stderr)
    assert INTERRUPTED in stderr and "Traceback" not in stderr
    for p in micrographs[3:]:
        shutil.copy(p, incoming)
    again = subprocess.run([*cmd, "--once"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert sorted(picked_lines(again.stdout.splitlines())) == [p.stem for p in micrographs[3:]]
    assert "3 done earlier" in again.stdout
