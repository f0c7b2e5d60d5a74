"""cryoSPARC drop-in: exposures ``.cs`` in, picked particles ``.cs`` out, as cryoSPARC writes them.

Layouts (numpy structured arrays saved with ``np.save``; text fields fixed-width bytes on disk):

- Exposures (cryosparc-tools' exposure dtype, ``tests/conftest.py`` of cryoem-uoft/cryosparc-tools, as
  written by Patch Motion Correction / Patch CTF / Curate Exposures): ``uid`` ``<u8``,
  ``micrograph_blob/path`` (relative to the project folder, ``J3/motioncorrected/<uid>_<name>.mrc``),
  ``micrograph_blob/idx`` ``<u4``, ``micrograph_blob/shape`` ``<u4`` x 2 (rows, cols),
  ``micrograph_blob/psize_A`` ``<f4``, ``mscope_params/exp_group_id`` ``<u4``, ``ctf/exp_group_id`` ``<u4``.
- Picked particles (cryoSPARC's pickers; the fields cryosparc-tools' picker examples allocate for a
  ``particle`` output with ``location`` and ``pick_stats`` slots): ``uid`` ``<u8`` (random, distinct),
  ``location/micrograph_uid`` ``<u8`` (the exposure's uid), ``location/exp_group_id`` ``<u4``,
  ``location/micrograph_path`` (the exposure's path), ``location/micrograph_shape`` ``<u4`` x 2,
  ``location/micrograph_psize_A``, ``location/center_x_frac``, ``location/center_y_frac``,
  ``location/min_dist_A``, ``pick_stats/ncc_score``, ``pick_stats/power`` ``<f4`` and
  ``pick_stats/template_idx`` ``<u4``.
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryopick.errors import InputError
from cryopick.io.cryosparc import random_uids, read_exposures
from cryopick.io.cs import read_cs, write_cs
from cryopick.particles import Particles
from cryopick.project import MicrographRecord

SHAPE = (160, 200)  # rows, cols
UIDS = [12297829382473034410, 9000000000000012345]  # above 2**63: must survive as unsigned
EXPOSURE_DTYPE = [
    ("uid", "<u8"),
    ("micrograph_blob/path", "S96"),
    ("micrograph_blob/idx", "<u4"),
    ("micrograph_blob/shape", "<u4", (2,)),
    ("micrograph_blob/psize_A", "<f4"),
    ("mscope_params/exp_group_id", "<u4"),
    ("ctf/exp_group_id", "<u4"),
]
PARTICLE_FIELDS = [
    ("uid", "<u8", ()),
    ("location/micrograph_uid", "<u8", ()),
    ("location/exp_group_id", "<u4", ()),
    ("location/micrograph_path", "|S", ()),
    ("location/micrograph_shape", "<u4", (2,)),
    ("location/micrograph_psize_A", "<f4", ()),
    ("location/center_x_frac", "<f4", ()),
    ("location/center_y_frac", "<f4", ()),
    ("location/min_dist_A", "<f4", ()),
    ("pick_stats/ncc_score", "<f4", ()),
    ("pick_stats/power", "<f4", ()),
    ("pick_stats/template_idx", "<u4", ()),
]


def exposure_path(i: int) -> str:
    return f"J3/motioncorrected/{UIDS[i]}_mic_{i:03d}_patch_aligned_doseweighted.mrc"


def make_cryosparc_project(root: Path, groups=(2, 3), fields=None) -> Path:
    """A cryoSPARC project folder: J3's motion-corrected micrographs and J5's accepted exposures."""
    from cryopick.simulate.config import SimulationConfig
    from cryopick.simulate.micrograph import simulate_micrograph

    cfg = SimulationConfig(shape=SHAPE, particles_per_micrograph=8, diameter_px=20, nuisances=False,
                           pixel_size_a=1.5, snr=1.0)
    rows = []
    for i in range(2):
        path = root / exposure_path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        with mrcfile.new(path, overwrite=True) as f:
            f.set_data(simulate_micrograph(cfg, i).image.astype(np.float32))
            f.voxel_size = 1.5
        rows.append((UIDS[i], exposure_path(i).encode(), 0, SHAPE, 1.5, groups[i], groups[i]))
    data = np.array(rows, dtype=EXPOSURE_DTYPE)
    if fields is not None:
        data = data[list(fields)]
    target = root / "J5" / "J5_exposures_accepted.cs"
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as f:
        np.save(f, data)
    return target


# --------------------------------------------------------------------------------- exposures


def test_read_exposures(tmp_path, monkeypatch):
    exposures = make_cryosparc_project(tmp_path / "P12")
    monkeypatch.chdir(tmp_path)
    sources = read_exposures("P12/J5/J5_exposures_accepted.cs")  # project folder found above J5/
    assert [s.name for s in sources] == [exposure_path(0), exposure_path(1)]
    assert [s.uid for s in sources] == UIDS
    assert [s.exp_group_id for s in sources] == [2, 3]
    assert all(s.pixel_size_a == 1.5 and s.shape == SHAPE and s.program == "cryosparc" for s in sources)
    assert sources[0].path.resolve() == (tmp_path / "P12" / exposure_path(0)).resolve()
    assert [s.name for s in read_exposures(exposures, cryosparc_project=tmp_path / "P12")] == [s.name for s in sources]


def test_exposure_group_fallbacks(tmp_path):
    only_mscope = make_cryosparc_project(tmp_path / "a", fields=[f for f, *_ in EXPOSURE_DTYPE if f != "ctf/exp_group_id"])
    assert [s.exp_group_id for s in read_exposures(only_mscope)] == [2, 3]
    neither = make_cryosparc_project(tmp_path / "b", fields=["uid", "micrograph_blob/path"])
    assert [s.exp_group_id for s in read_exposures(neither)] == [1, 1]
    assert read_exposures(neither)[0].pixel_size_a is None


def test_bad_exposures(tmp_path):
    project = tmp_path / "P1"
    exposures = make_cryosparc_project(project)
    no_uid = tmp_path / "no_uid.cs"
    with open(no_uid, "wb") as f:
        np.save(f, np.load(exposures)[["micrograph_blob/path"]])
    with pytest.raises(InputError, match="lacks exposure field.*uid.*fields found: micrograph_blob/path"):
        read_exposures(no_uid)
    objects = tmp_path / "objects.cs"
    np.save(open(objects, "wb"), np.array([(1, "x.mrc")], dtype=[("uid", "<u8"), ("micrograph_blob/path", "O")]),
            allow_pickle=True)
    with pytest.raises(InputError, match="never unpickles"):
        read_exposures(objects)
    with pytest.raises(InputError, match="--cryosparc-project"):
        read_exposures(exposures, cryosparc_project=tmp_path)  # the micrographs are not under tmp_path/J3


# --------------------------------------------------------------------------------- writing picks


def _records(root: Path) -> dict:
    return {f"{UIDS[i]}_mic_{i:03d}_patch_aligned_doseweighted": MicrographRecord(
        f"{UIDS[i]}_mic_{i:03d}_patch_aligned_doseweighted", str(root / exposure_path(i)), SHAPE, 1.5, "c",
        source="cryosparc", source_name=exposure_path(i), source_uid=UIDS[i], exp_group_id=2 + i)
        for i in range(2)}


def _picks(records) -> dict:
    rng = np.random.default_rng(0)
    return {name: Particles(rng.uniform(0, 199, 5 + i), rng.uniform(0, 159, 5 + i), rng.normal(size=5 + i))
            for i, name in enumerate(records)}


@pytest.mark.parametrize("per_micrograph", [False, True])
def test_picks_cs_conforms(tmp_path, per_micrograph):
    records = _records(tmp_path)
    picks = _picks(records)
    files = write_cs(picks, tmp_path / "out", per_micrograph=per_micrograph, box_size=20,
                     shapes={n: SHAPE for n in picks}, micrographs=records)
    assert len(files) == (2 if per_micrograph else 1)
    data = np.concatenate([np.load(f, allow_pickle=False) for f in files])
    for field, kind, shape in PARTICLE_FIELDS:
        assert field in data.dtype.names
        dtype = data.dtype[field]
        assert (dtype.base.str.startswith(kind) if kind != "|S" else dtype.kind == "S"), field
        assert dtype.shape == shape, field
    assert len(np.unique(data["uid"])) == len(data) == sum(len(p) for p in picks.values())  # across files
    start = 0
    for i, p in enumerate(picks.values()):
        block = data[start:start + len(p)]
        start += len(p)
        assert (block["location/micrograph_uid"] == np.uint64(UIDS[i])).all()
        assert (block["location/exp_group_id"] == 2 + i).all()
        assert {v.decode() for v in block["location/micrograph_path"]} == {exposure_path(i)}
        assert (block["location/micrograph_shape"] == SHAPE).all()
        np.testing.assert_allclose(block["location/center_x_frac"] * SHAPE[1], p.x, atol=1e-3)
        np.testing.assert_allclose(block["location/center_y_frac"] * SHAPE[0], p.y, atol=1e-3)
        np.testing.assert_allclose(block["location/micrograph_psize_A"], 1.5)
        np.testing.assert_allclose(block["location/min_dist_A"], 30.0)  # 20 px at 1.5 Å/px
        np.testing.assert_allclose(block["pick_stats/ncc_score"], p.score, rtol=1e-6)
        np.testing.assert_allclose(block["pick_stats/power"], p.score, rtol=1e-6)
        assert (block["pick_stats/template_idx"] == 0).all()


def test_picks_round_trip_to_micrograph_ids(tmp_path):
    from cryopick.io.names import match_names

    records = _records(tmp_path)
    picks = _picks(records)
    (target,) = write_cs(picks, tmp_path, box_size=20, shapes={n: SHAPE for n in picks}, micrographs=records)
    back = read_cs(target)
    mapping, unmatched = match_names(list(back), list(records))
    assert not unmatched and set(mapping.values()) == set(records)
    for name, mic in mapping.items():
        np.testing.assert_allclose(back[name].x, picks[mic].x, atol=1e-3)


def test_random_uids_are_distinct_64_bit():
    uids = random_uids(10_000, np.random.default_rng(1))
    assert uids.dtype == np.uint64 and len(np.unique(uids)) == 10_000 and (uids > 0).all()
    assert uids.max() > np.uint64(2**62)  # drawn from the whole range


# --------------------------------------------------------------------------------- the command line


@pytest.fixture(autouse=True)
def _pristine_cli(pristine_cli):
    """In-process ``main()`` changes the global CLI (cryopick.testing.pristine_cli undoes it)."""


def _cli(args, cwd, monkeypatch):
    from cryopick.cli.main import main

    monkeypatch.chdir(cwd)
    return main([*args, "-q"])


def test_cli_run_on_exposures_writes_linked_picks(tmp_path, monkeypatch):
    make_cryosparc_project(tmp_path / "P12")
    rc = _cli(["run", "--picker", "dog", "--micrographs", "P12/J5/J5_exposures_accepted.cs", "--cryosparc-project",
               "P12", "--diameter", "20", "--format", "cs", "--out", "picks"], tmp_path, monkeypatch)
    assert rc == 0
    (cs,) = (tmp_path / "picks").glob("dog-*/particles.cs")
    data = np.load(cs, allow_pickle=False)
    assert len(data) > 0
    uid_to_path = {UIDS[i]: exposure_path(i) for i in range(2)}
    for uid, path, group in zip(data["location/micrograph_uid"], data["location/micrograph_path"],
                                data["location/exp_group_id"]):
        assert uid_to_path[int(uid)] == path.decode()
        assert group == {UIDS[0]: 2, UIDS[1]: 3}[int(uid)]
    np.testing.assert_allclose(data["location/micrograph_psize_A"], 1.5)


def test_cli_export_with_exposures_links_plain_files(tmp_path, monkeypatch):
    make_cryosparc_project(tmp_path / "P12")
    plain = tmp_path / "plain"
    plain.mkdir()
    for i in range(2):  # the same micrographs under their plain names (as copied out of cryoSPARC)
        (plain / f"mic_{i:03d}.mrc").write_bytes((tmp_path / "P12" / exposure_path(i)).read_bytes())
    assert _cli(["run", "--picker", "dog", "--micrographs", "plain", "--diameter", "20", "--out", "out"],
                tmp_path, monkeypatch) == 0
    # The exposures of an Import Micrographs job on those files: J1/imported/<uid>_<file name> (the paths
    # need not exist here: export only takes uids, paths and groups from the file).
    imported = [f"J1/imported/{UIDS[i]}_mic_{i:03d}.mrc" for i in range(2)]
    rows = np.array([(UIDS[i], imported[i].encode(), 0, SHAPE, 1.5, 4, 4) for i in range(2)], dtype=EXPOSURE_DTYPE)
    with open(tmp_path / "J1_imported_micrographs.cs", "wb") as f:
        np.save(f, rows)
    assert _cli(["export", "-P", "out/project.h5", "--format", "cs", "--out", "linked",
                 "--exposures", "J1_imported_micrographs.cs"], tmp_path, monkeypatch) == 0
    data = np.load(tmp_path / "linked/particles.cs", allow_pickle=False)
    assert len(data) and set(int(u) for u in data["location/micrograph_uid"]) == set(UIDS)
    assert {p.decode() for p in data["location/micrograph_path"]} == set(imported)
    assert (data["location/exp_group_id"] == 4).all()
    # exposures that match nothing are an error naming an example of each side
    assert _cli(["export", "-P", "out/project.h5", "--format", "cs", "--out", "x",
                 "--exposures", "P12/J5/J5_exposures_accepted.cs"], tmp_path, monkeypatch) == 2
    # without --exposures the file names are kept and the uids are derived from them
    assert _cli(["export", "-P", "out/project.h5", "--format", "cs", "--out", "unlinked"], tmp_path, monkeypatch) == 0
    data = np.load(tmp_path / "unlinked/particles.cs", allow_pickle=False)
    assert {p.decode() for p in data["location/micrograph_path"]} <= {"mic_000.mrc", "mic_001.mrc"}


def test_shape_mismatch_with_the_exposures_is_an_error(tmp_path, monkeypatch, capsys):
    exposures = make_cryosparc_project(tmp_path / "P12")
    data = np.load(exposures)
    data["micrograph_blob/shape"] = (80, 100)  # as if the list were for binned micrographs
    with open(exposures, "wb") as f:
        np.save(f, data)
    rc = _cli(["import", "-P", "p.h5", "--micrographs", str(exposures)], tmp_path, monkeypatch)
    assert rc == 2
    assert "its micrograph list says 100 x 80" in capsys.readouterr().err
