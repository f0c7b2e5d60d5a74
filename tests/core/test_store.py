"""Project store: journal, compaction, single writer, and survival of SIGKILL."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from cryopick.errors import StoreError, StoreLockedError
from cryopick.store import SCHEMA_VERSION, ProjectStore


def test_write_read_compact(tmp_path):
    path = tmp_path / "p.h5"
    with ProjectStore(path, "a") as s:
        s.put("/runs/r/candidates/m1", {"x": np.arange(3.0)}, seconds=1.5, config={"a": [1, 2]})
        assert s.children("/runs/r/candidates") == ["m1"]
        assert s.get("/runs/r/candidates/m1").attrs["config"] == {"a": [1, 2]}
        assert list(s.journal_dir.glob("*.h5"))
    assert not list((tmp_path / "p.h5.journal").glob("*.h5"))  # compacted on close
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == SCHEMA_VERSION
        np.testing.assert_array_equal(f["runs/r/candidates/m1/x"][()], np.arange(3.0))
    r = ProjectStore(path)
    assert r.get("/runs/r/candidates/m1").attrs["seconds"] == 1.5


def test_second_writer_refused_and_nothing_lost(tmp_path):
    path = tmp_path / "p.h5"
    first = ProjectStore(path, "a")
    first.put("/micrographs/a", path="a.mrc")
    with pytest.raises(StoreLockedError) as info:
        ProjectStore(path, "a")
    assert str(os.getpid()) in str(info.value)
    first.put("/micrographs/b", path="b.mrc")
    first.close()
    with ProjectStore(path, "a") as again:
        assert again.children("/micrographs") == ["a", "b"]


def test_not_a_project(tmp_path):
    bad = tmp_path / "x.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(StoreError, match="not a readable HDF5"):
        ProjectStore(bad)
    with pytest.raises(StoreError, match="cryopick init"):
        ProjectStore(tmp_path / "missing.h5")


def test_journal_left_by_a_dead_writer_is_replayed(tmp_path):
    path = tmp_path / "p.h5"
    s = ProjectStore(path, "a")
    s.put("/labels/train/m1", {"x": np.ones(2)})
    s._release_lock()  # simulate death: no compaction, lock gone with the process
    assert ProjectStore(path).children("/labels/train") == ["m1"]  # readers see the journal
    with ProjectStore(path, "a") as s2:
        assert s2.children("/labels/train") == ["m1"]
    with h5py.File(path, "r") as f:
        assert "labels/train/m1/x" in f


@pytest.mark.slow
def test_sigkill_mid_run_leaves_readable_store_and_rerun_resumes(tmp_path, third_party):
    """Kill a real `cryopick run` with SIGKILL while it scores, then rerun the same command."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(third_party), os.environ.get("PYTHONPATH", "")]),
               CRYOPICK_QUIET="1")
    cmd = [sys.executable, "-m", "cryopick.cli.main", "run", "--picker", "example", "--set", "delay_s=0.7",
           "--out", str(tmp_path / "out"), "--json"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    journal = tmp_path / "out" / "project.h5.journal"
    deadline = time.time() + 120
    scored = 0
    while time.time() < deadline and proc.poll() is None:
        # candidates are written one journal entry per micrograph
        entries = list(journal.glob("*.h5")) if journal.exists() else []
        scored = 0
        for e in entries:
            try:
                with h5py.File(e, "r") as f:
                    scored += sum("candidates" in k for k in f.attrs["records"].split(","))
            except OSError:
                pass
        if scored >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    store = tmp_path / "out" / "project.h5"
    with h5py.File(store, "r") as f:  # the killed run left a file that opens
        assert f.attrs["schema_version"] == SCHEMA_VERSION
    rerun = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    import json

    summary = json.loads(rerun.stdout)
    assert summary["resumed"]["score"] >= 2  # finished micrographs were skipped
    assert summary["resumed"]["preprocess"] == summary["micrographs"]
    assert summary["evaluation"]["n_truth"] > 0
    with ProjectStore(store) as s:
        assert len(s.children(f"/runs/{summary['run']}/candidates")) == summary["micrographs"]
