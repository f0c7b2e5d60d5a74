"""Project store, second layout: array files beside the main file, folding only when the journal has
grown, prune, checksum-keyed caches, and the writer lock on network file systems."""

import json
import os
import socket

import h5py
import mrcfile
import numpy as np
import pytest

from cryopick.cli.main import main
from cryopick.errors import StoreError, StoreLockedError
from cryopick.lock import WriterLock, filesystem_type, is_network_fs
from cryopick.project import Project
from cryopick.store import ProjectStore, Record


def _write_mics(folder, n=3, size=160, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        image = rng.normal(size=(size, size)).astype(np.float32)
        yy, xx = np.mgrid[:size, :size]
        for cy, cx in rng.uniform(20, size - 20, size=(8, 2)):
            image += 4 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 4.0 ** 2))
        path = folder / f"mic_{i:03d}.mrc"
        with mrcfile.new(path, overwrite=True) as m:
            m.set_data(image)
            m.voxel_size = 2.0
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def _pristine_cli(pristine_cli):
    """In-process ``main()`` changes the global CLI (cryopick.testing.pristine_cli undoes it)."""


def _cli(capsys, *args):
    rc = main(list(args))
    out, err = capsys.readouterr()
    assert rc == 0, err
    return out


# -- array files --------------------------------------------------------------------------------------

def test_large_arrays_go_to_shared_array_files(tmp_path):
    path = tmp_path / "p.h5"
    big = np.arange(512 * 512, dtype=np.float32).reshape(512, 512)
    with ProjectStore(path, "a") as s:
        s.put("/models/m1", {"w": big, "b": np.ones(3)}, picker="x")
        s.put("/models/m2", {"w": big.copy()}, picker="x")  # same content: same file
        s.write({"/preprocessed/k/a": Record({"image": np.ones((4, 4), np.float32)}, {}, external=True)})
    files = sorted((tmp_path / "p.h5.d" / "arrays").glob("*.npy"))
    assert len(files) == 2  # big (shared by m1 and m2) and the small image forced out
    with h5py.File(path, "r") as f:
        assert "external" in f["models/m1/w"].attrs and "external" not in f["models/m1/b"].attrs
    r = ProjectStore(path)
    np.testing.assert_array_equal(r.get("/models/m2").arrays["w"], big)
    np.testing.assert_array_equal(r.get("/models/m1").arrays["b"], np.ones(3))
    assert r.attributes("/models/m1") == {"picker": "x"}
    assert r.array_refs()[f"arrays/{files[0].name}"] + r.array_refs()[f"arrays/{files[1].name}"] == 3


def test_crash_while_writing_an_array_file_leaves_nothing_referenced(tmp_path, monkeypatch):
    """A kill in the middle of an array file's write leaves a temporary file only: no record refers to
    it, the store opens, the write can be redone, and prune removes the leftover."""
    path = tmp_path / "p.h5"
    image = np.random.default_rng(0).normal(size=(600, 600)).astype(np.float32)
    real_write = np.lib.format.write_array

    def dying_write(fh, array, **kw):
        fh.write(b"\x93NUMPY partial")  # some bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt

    s = ProjectStore(path, "a")
    s.put("/micrographs/a", path="a.mrc")
    monkeypatch.setattr(np.lib.format, "write_array", dying_write)
    with pytest.raises(KeyboardInterrupt):
        s.put("/preprocessed/k/a", {"image": image})
    s._release_lock()  # the process is gone: no close, no fold
    monkeypatch.setattr(np.lib.format, "write_array", real_write)

    arrays = tmp_path / "p.h5.d" / "arrays"
    assert not list(arrays.glob("*.npy")) and len(list(arrays.glob(".*.tmp"))) == 1
    r = ProjectStore(path)
    assert r.get("/preprocessed/k/a") is None and r.children("/micrographs") == ["a"]
    with ProjectStore(path, "a") as s2:
        assert [p.name for p in s2.unreferenced()] == [next(arrays.glob(".*.tmp")).name]
        assert s2.sweep() == (1, len(b"\x93NUMPY partial"))
        s2.put("/preprocessed/k/a", {"image": image})  # the rerun writes it whole
    np.testing.assert_array_equal(ProjectStore(path).get("/preprocessed/k/a").arrays["image"], image)
    assert not list(arrays.glob(".*.tmp"))


def test_missing_array_file_is_a_clear_error(tmp_path):
    path = tmp_path / "p.h5"
    with ProjectStore(path, "a") as s:
        s.put("/models/m", {"w": np.zeros((300, 300))})
    for f in (tmp_path / "p.h5.d" / "arrays").glob("*.npy"):
        f.unlink()
    with pytest.raises(StoreError, match="array file .* is missing"):
        ProjectStore(path).get("/models/m")


# -- journal: cost proportional to what is written ----------------------------------------------------

def test_small_writes_to_a_large_project_do_not_rewrite_the_main_file(tmp_path):
    path = tmp_path / "p.h5"
    with ProjectStore(path, "a") as s:  # a main file of ~4 MB of small records
        s.write({f"/runs/r/candidates/m{i:04d}": Record({"x": np.zeros(1000), "y": np.zeros(1000)})
                 for i in range(250)})
    assert not list((tmp_path / "p.h5.journal").glob("*.h5"))  # first session: folded (journal >= main/4)
    inode = path.stat().st_ino
    with ProjectStore(path, "a") as s:
        for i in range(3):  # three transactions, as three scored micrographs would be
            s.put(f"/runs/r/candidates/new{i}", {"x": np.ones(5)}, seconds=0.1)
        assert not s.compact()  # what a stage calls at its end: below the threshold, nothing happens
    assert path.stat().st_ino == inode  # the main file was not copied
    entries = list((tmp_path / "p.h5.journal").glob("*.h5"))
    assert len(entries) == 1  # the session's entries were merged into one
    r = ProjectStore(path)
    assert len(r.children("/runs/r/candidates")) == 253
    np.testing.assert_array_equal(r.get("/runs/r/candidates/new2").arrays["x"], np.ones(5))
    with ProjectStore(path, "a") as s:
        assert s.compact(force=True)
    assert path.stat().st_ino != inode and not list((tmp_path / "p.h5.journal").glob("*.h5"))
    assert len(ProjectStore(path).children("/runs/r/candidates")) == 253


def test_older_schema_is_read_but_not_written(tmp_path):
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as f:  # what cryopick wrote before array files (schema 1)
        f.attrs["schema_version"] = 1
        for g in ("micrographs", "preprocessed", "labels", "models", "runs"):
            f.create_group(g)
        f.create_group("preprocessed/k/a").create_dataset("image", data=np.ones((70, 70), np.float32))
    np.testing.assert_array_equal(ProjectStore(path).get("/preprocessed/k/a").arrays["image"], 1)
    with pytest.raises(StoreError, match=r"older cryopick \(store schema 1\).*cryopick init"):
        ProjectStore(path, "a")


# -- micrograph checksums key the caches --------------------------------------------------------------

def test_checksum_change_invalidates_cached_preprocessing_and_a_touch_does_not(tmp_path, monkeypatch):
    import cryopick.project as project_mod

    paths = _write_mics(tmp_path / "mics", n=2)
    hashed = []
    real = project_mod.file_checksum
    monkeypatch.setattr(project_mod, "file_checksum", lambda p: hashed.append(p.name) or real(p))
    with ProjectStore(tmp_path / "p.h5", "a") as s:
        proj = Project(s)
        for p in paths:
            proj.add_micrograph(p)
        assert len(proj.micrograph("mic_000").checksum) == 64  # sha256
        for n in ("mic_000", "mic_001"):
            proj.put_preprocessed("k", n, np.zeros((8, 8)), (2.0, 2.0), [["downsample", {}]])
            proj.put_candidates("run", n, project_mod.Particles([1.0], [2.0], [0.5]), 0.1)
        hashed.clear()
        assert proj.add_micrograph(paths[0])[1] is False and hashed == []  # same size and mtime: no hashing
        os.utime(paths[0], ns=(1, 1))  # touched only
        assert proj.add_micrograph(paths[0])[1] is False and hashed == ["mic_000.mrc"]
        assert proj.has_preprocessed("k", "mic_000") and proj.has_candidates("run", "mic_000")
        with mrcfile.open(paths[1], "r+") as m:  # the pixels change, the name stays
            m.data[0, 0] += 1
        assert proj.add_micrograph(paths[1])[1] is True
        assert not proj.has_preprocessed("k", "mic_001") and not proj.has_candidates("run", "mic_001")
        assert proj.has_preprocessed("k", "mic_000")


def test_unchanged_picks_are_not_written_again(tmp_path):
    from cryopick.particles import Particles

    with ProjectStore(tmp_path / "p.h5", "a") as s:
        proj = Project(s)
        picks = {f"m{i}": Particles([1.0, 2.0], [3.0, 4.0], [0.5, 0.7]) for i in range(3)}
        proj.put_picks("r", picks, {n: 0.1 for n in picks}, "fixed:0.1")
        entries = len(s._entries)
        proj.put_picks("r", picks, {n: 0.1 for n in picks}, "fixed:0.1")
        assert len(s._entries) == entries  # nothing changed: nothing written
        picks["m1"] = Particles([1.0], [3.0], [0.5])
        proj.put_picks("r", picks, {n: 0.1 for n in picks}, "fixed:0.1")
        assert len(s._entries) == entries + 1 and json.loads(h5py.File(s._entries[-1]).attrs["records"]) == [
            "/runs/r/picks/m1"]
        proj.put_picks("r", picks, {n: 0.2 for n in picks}, "fixed:0.2")  # another cut-off: all rewritten
        assert len(json.loads(h5py.File(s._entries[-1]).attrs["records"])) == 3
        assert len(proj.picks("r")["m1"]) == 1


def test_run_reuses_preprocessing_after_touch_and_redoes_a_changed_micrograph(tmp_path, capsys):
    paths = _write_mics(tmp_path / "mics", n=3)
    args = ["-q", "run", "--picker", "dog", "--micrographs", str(tmp_path / "mics" / "*.mrc"), "--diameter", "10",
            "--out", str(tmp_path / "out"), "--json"]
    first = json.loads(_cli(capsys, *args))
    assert first["resumed"] == {"preprocess": 0, "score": 0}
    for p in paths:
        os.utime(p)  # e.g. copied again with new times
    assert json.loads(_cli(capsys, *args))["resumed"] == {"preprocess": 3, "score": 3}
    with mrcfile.open(paths[2], "r+") as m:
        m.data[5:9, 5:9] = 0
    again = json.loads(_cli(capsys, *args))
    assert again["resumed"] == {"preprocess": 2, "score": 2}
    assert again["run"] == first["run"]


# -- prune --------------------------------------------------------------------------------------------

def test_prune_drops_exactly_what_no_kept_run_uses_and_the_project_still_picks(tmp_path, capsys):
    _write_mics(tmp_path / "mics", n=3)
    project = str(tmp_path / "p.h5")
    _cli(capsys, "-q", "import", "-P", project, "--micrographs", str(tmp_path / "mics" / "*.mrc"))
    _cli(capsys, "-q", "pick", "-P", project, "--picker", "dog", "--diameter", "10",  # older run, other chain
         "--set", "target_diameter_px=5")
    _cli(capsys, "-q", "pick", "-P", project, "--picker", "dog", "--diameter", "10")
    with ProjectStore(project, "a") as s:
        proj = Project(s)
        runs = sorted(proj.runs(), key=lambda r: proj.run_info(r)["updated"])
        old, new = runs
        old_key, new_key = proj.run_info(old)["preprocessing"], proj.run_info(new)["preprocessing"]
        assert old_key != new_key
        s.put("/models/unused-000000000000", {"w": np.random.default_rng(1).normal(size=(300, 300))}, picker="x")
        s.put("/labels/train/mic_000", {"x": np.ones(2), "y": np.ones(2), "score": np.ones(2)}, source="t")
        kept_images = {n: proj.preprocessed(new_key, n)[0] for n in proj.micrographs()}
    arrays = tmp_path / "p.h5.d" / "arrays"
    assert len(list(arrays.glob("*.npy"))) == 3 + 3 + 1
    (arrays / ".deadbeef.npy.1.tmp").write_bytes(b"x" * 10)  # left by a killed writer

    dry = json.loads(_cli(capsys, "prune", "-P", project, "--keep-runs", "1", "--dry-run", "--json"))
    assert len(list(arrays.iterdir())) == 8  # nothing changed
    report = json.loads(_cli(capsys, "prune", "-P", project, "--keep-runs", "1", "--json"))
    assert report["runs"] == [old] and report["models"] == ["unused-000000000000"]
    assert report["preprocessed_sets"] == [old_key] and report["preprocessed_images"] == 3
    assert report["files"] == dry["files"] == 3 + 1 + 1
    assert report["returned"] >= dry["returned"] > 0  # the dry run counts the files only
    assert len(list(arrays.iterdir())) == 3

    with ProjectStore(project) as r:
        proj = Project(r)
        assert proj.runs() == [new] and r.children("/preprocessed") == [new_key] and r.children("/models") == []
        assert sorted(proj.micrographs()) == ["mic_000", "mic_001", "mic_002"] and "mic_000" in proj.labels("train")
        for n, image in kept_images.items():
            np.testing.assert_array_equal(proj.preprocessed(new_key, n)[0], image)
        assert sum(len(p) for p in proj.picks(new).values()) > 0
    again = json.loads(_cli(capsys, "prune", "-P", project, "--json"))
    assert again["runs"] == [] and again["files"] == 0 and again["preprocessed_images"] == 0
    out = _cli(capsys, "pick", "-P", project, "--picker", "dog", "--diameter", "10")
    assert new in out
    out = _cli(capsys, "prune", "-P", project, "--keep-runs", "0")
    assert "dropped 1 run(s)" in out and "returned" in out


# -- the writer lock on network file systems ----------------------------------------------------------

def _mounts(tmp_path, fs_type):
    table = tmp_path / "mounts"
    table.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        "tmpfs /tmp tmpfs rw 0 0\n"
        f"server:/export {tmp_path}/proj nfs4 rw,vers=4.2 0 0\n"  # the project folder
        f"server:/other {tmp_path}/proj2 {fs_type} rw 0 0\n"      # a longer name, not a parent
        f"lustre@tcp:/fs {tmp_path}/with\\040space lustre rw,flock 0 0\n")
    return table


def test_filesystem_type_from_the_longest_mount_point(tmp_path):
    table = _mounts(tmp_path, "cifs")
    (tmp_path / "proj" / "deep").mkdir(parents=True)
    assert filesystem_type(tmp_path / "proj" / "deep", table) == "nfs4"
    assert filesystem_type(tmp_path / "proj2", table) == "cifs"
    assert filesystem_type(tmp_path / "with space" / "p", table) == "lustre"
    assert filesystem_type("/usr", table) == "ext4"
    assert filesystem_type(tmp_path, tmp_path / "no-such-table") is None
    assert is_network_fs("nfs4") and is_network_fs("fuse.sshfs") and is_network_fs("lustre")
    assert not is_network_fs("ext4") and not is_network_fs(None) and not is_network_fs("tmpfs")


def test_network_project_uses_a_lock_file_with_clear_messages(tmp_path, monkeypatch):
    monkeypatch.delenv("CRYOPICK_LOCK", raising=False)
    table = _mounts(tmp_path, "cifs")
    path = tmp_path / "proj" / "p.h5"
    lock_file = tmp_path / "proj" / "p.h5.writer"
    s = ProjectStore(path, "a", mounts=table)
    assert s._lock.fs_type == "nfs4" and s._lock.use_file
    assert f"host={socket.gethostname()} pid={os.getpid()}" in lock_file.read_text()
    s.close()
    assert not lock_file.exists()

    # left by a writer killed on another machine: refused, saying what to remove
    lock_file.write_text("host=node17 pid=4242 since=2026-01-01T10:00:00+00:00\n")
    with pytest.raises(StoreLockedError) as info:
        ProjectStore(path, "a", mounts=table)
    msg = str(info.value)
    assert "node17" in msg and "4242" in msg and "nfs4" in msg and f"rm '{lock_file}'" in msg

    # left by a writer killed on this machine (its pid is gone): taken over
    dead = 2 ** 22 + 12345
    lock_file.write_text(f"host={socket.gethostname()} pid={dead} since=2026-01-01T10:00:00+00:00\n")
    with ProjectStore(path, "a", mounts=table) as s:
        assert str(dead) in s.lock_note and "took over" in s.lock_note
        assert str(os.getpid()) in lock_file.read_text()
    # a live writer on this machine: refused
    lock_file.write_text(f"host={socket.gethostname()} pid={os.getppid()} since=now\n")
    with pytest.raises(StoreLockedError, match="being written by cryopick pid"):
        ProjectStore(path, "a", mounts=table)
    lock_file.unlink()


def test_local_project_uses_flock_only(tmp_path, monkeypatch):
    monkeypatch.delenv("CRYOPICK_LOCK", raising=False)
    lock = WriterLock(tmp_path / "proj" / "p.h5", _mounts(tmp_path, "cifs"))
    assert lock.fs_type == "nfs4"
    local = WriterLock(tmp_path / "elsewhere" / "p.h5", tmp_path / "mounts")
    assert local.fs_type == "tmpfs" and not local.use_file
    monkeypatch.setenv("CRYOPICK_LOCK", "file")
    assert WriterLock(tmp_path / "elsewhere" / "p.h5", tmp_path / "mounts").use_file

