"""RELION 5 drop-in: micrographs STAR in, RELION's AutoPick layout out, RELION's coordinate lists back in.

The fixture files are shaped as RELION 5 writes them (facts read from RELION 5's sources, 3dem/relion):

- ``micrographs_ctf.star``: ``data_optics`` (``rlnOpticsGroupName``, ``rlnOpticsGroup``,
  ``rlnMicrographOriginalPixelSize``, ``rlnVoltage``, ``rlnSphericalAberration``, ``rlnAmplitudeContrast``,
  ``rlnMicrographPixelSize``) then ``data_micrographs`` (``rlnMicrographName`` relative to the project
  folder, ``rlnOpticsGroup``, CTF columns), each after a ``# version 50001`` line (src/apps/import.cpp writes
  the optics + micrographs tables; CtfFind adds the CTF columns).
- AutoPick's per-micrograph file ``<job dir>/<name after Type/jobNNN/, without extension>_autopick.star``
  (src/autopicker.cpp ``getOutputRootName`` with src/filename.cpp ``decomposePipelineFileName``): one
  block ``data_`` with ``rlnCoordinateX``, ``rlnCoordinateY``, ``rlnClassNumber``, ``rlnAutopickFigureOfMerit``,
  ``rlnAnglePsi``.
- The coordinate list ``autopick.star`` / ``manualpick.star``: ``data_coordinate_files`` with
  ``rlnMicrographName`` and ``rlnMicrographCoordinates`` (src/preprocessing.cpp reads it with
  ``--coord_list``, keyed by the exact micrograph name).
- ``coords_suffix_<suffix>.star``: its first word is the micrographs STAR; Extract reads
  ``<its folder>/<name after Type/jobNNN/ without extension><suffix>.star`` (src/pipeline_jobs.cpp passes
  ``--coord_dir`` and ``--coord_suffix`` for such a file).
"""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pandas as pd
import pytest
import starfile

from cryopick.errors import InputError
from cryopick.io.relion import (
    coordinate_file,
    pipeline_tail,
    read_coordinate_list,
    read_micrographs_star,
    write_relion_layout,
)
from cryopick.io.star import read_star, write_star
from cryopick.particles import Particles
from cryopick.project import MicrographRecord

NAMES = [f"MotionCorr/job002/Movies/mic_{i:03d}.mrc" for i in range(3)]

MICROGRAPHS_CTF = """
# version 50001

data_optics

loop_
_rlnOpticsGroupName #1
_rlnOpticsGroup #2
_rlnMicrographOriginalPixelSize #3
_rlnVoltage #4
_rlnSphericalAberration #5
_rlnAmplitudeContrast #6
_rlnMicrographPixelSize #7
opticsGroup1            1     1.000000   300.000000     2.700000     0.100000     2.000000


# version 50001

data_micrographs

loop_
_rlnMicrographName #1
_rlnOpticsGroup #2
_rlnCtfImage #3
_rlnDefocusU #4
_rlnDefocusV #5
_rlnCtfAstigmatism #6
_rlnDefocusAngle #7
_rlnCtfFigureOfMerit #8
_rlnCtfMaxResolution #9
{rows}
"""

# ManualPick's coordinate file (RELION 5 src/manualpicker.cpp writes X, Y, class, FOM -999, psi -999).
MANUALPICK_FILE = """
# version 50001

data_

loop_
_rlnCoordinateX #1
_rlnCoordinateY #2
_rlnClassNumber #3
_rlnAutopickFigureOfMerit #4
_rlnAnglePsi #5
{rows}
"""

MANUALPICK_LIST = """
# version 50001

data_coordinate_files

loop_
_rlnMicrographName #1
_rlnMicrographCoordinates #2
{rows}
"""


def _simulate(shape=(160, 192), n=3):
    from cryopick.simulate.config import SimulationConfig
    from cryopick.simulate.micrograph import simulate_micrograph

    cfg = SimulationConfig(shape=shape, particles_per_micrograph=8, diameter_px=20, nuisances=False,
                           pixel_size_a=2.0, snr=1.0)
    return [simulate_micrograph(cfg, i) for i in range(n)]


def make_relion_project(root: Path, n: int = 3) -> list:
    """A RELION project: MotionCorr micrographs (header pixel size 1.0, i.e. unset) and CtfFind's
    micrographs_ctf.star (pixel size 2.0 in its optics group)."""
    sims = _simulate(n=n)
    rows = []
    for name, sim in zip(NAMES[:n], sims):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with mrcfile.new(path, overwrite=True) as f:
            f.set_data(sim.image.astype(np.float32))
            f.voxel_size = 1.0
        ctf = name.replace("MotionCorr/job002", "CtfFind/job003").replace(".mrc", ".ctf:mrc")
        rows.append(f"{name}            1 {ctf} 10234.5 10034.2 200.3 12.5 0.12 4.5")
    star = root / "CtfFind/job003/micrographs_ctf.star"
    star.parent.mkdir(parents=True, exist_ok=True)
    star.write_text(MICROGRAPHS_CTF.format(rows="\n".join(rows)))
    return sims


@pytest.fixture
def relion_project(tmp_path):
    root = tmp_path / "relion"
    sims = make_relion_project(root)
    return root, sims


# --------------------------------------------------------------------------------- conventions


@pytest.mark.parametrize("name, tail", [
    ("MotionCorr/job002/Movies/mic_001.mrc", "Movies/mic_001.mrc"),
    ("MotionCorr/job002/mic_001.mrc", "mic_001.mrc"),
    ("Movies/mic_001.mrc", "Movies/mic_001.mrc"),
    ("job002/mic_001.mrc", "job002/mic_001.mrc"),  # RELION never checks the first component
    ("data/x/External/job123/a/b.tif", "a/b.tif"),
    ("MotionCorr/jobs/mic.mrc", "MotionCorr/jobs/mic.mrc"),
])
def test_pipeline_tail_follows_relion(name, tail):
    assert pipeline_tail(name) == tail


def test_coordinate_file_names():
    assert coordinate_file("MotionCorr/job002/Movies/mic_001.mrc") == "Movies/mic_001_autopick.star"
    assert coordinate_file("MotionCorr/job002/Movies/mic.v2.mrc") == "Movies/mic.v2_autopick.star"
    assert coordinate_file("/abs/Movies/mic.mrc") == "abs/Movies/mic_autopick.star"
    with pytest.raises(InputError, match="outside|cannot"):
        coordinate_file("../elsewhere/mic.mrc")


# --------------------------------------------------------------------------------- micrographs STAR


def test_read_micrographs_star(relion_project, monkeypatch):
    root, _ = relion_project
    monkeypatch.chdir(root)
    sources = read_micrographs_star("CtfFind/job003/micrographs_ctf.star")  # root found above the STAR
    assert [s.name for s in sources] == NAMES
    assert all(s.program == "relion" and s.pixel_size_a == 2.0 for s in sources)
    assert [s.path.resolve() for s in sources] == [(root / n).resolve() for n in NAMES]
    explicit = read_micrographs_star(root / "CtfFind/job003/micrographs_ctf.star", relion_project=root)
    assert [s.name for s in explicit] == NAMES


def test_micrographs_star_errors(relion_project, tmp_path):
    root, _ = relion_project
    star = root / "CtfFind/job003/micrographs_ctf.star"
    with pytest.raises(InputError, match="not found.*--relion-project"):
        read_micrographs_star(star, relion_project=root / "CtfFind")
    moved = tmp_path / "lonely.star"
    moved.write_text(star.read_text())
    with pytest.raises(InputError, match="--relion-project DIR"):
        read_micrographs_star(moved)
    particles = tmp_path / "particles.star"
    starfile.write({"particles": pd.DataFrame({"rlnCoordinateX": [1.0], "rlnCoordinateY": [2.0]})}, particles)
    with pytest.raises(InputError, match="no block with rlnMicrographName"):
        read_micrographs_star(particles)


# --------------------------------------------------------------------------------- writing RELION's layout


def _records(root: Path | None = None) -> dict:
    return {Path(n).stem: MicrographRecord(Path(n).stem, str((root or Path("/x")) / n), (160, 192), 2.0, "c",
                                           source="relion", source_name=n) for n in NAMES}


def _picks(scores=True) -> dict:
    rng = np.random.default_rng(3)
    out = {}
    for i, n in enumerate(NAMES):
        k = 0 if i == 2 else 4 + i  # the last micrograph has no picks: RELION still gets its (empty) file
        out[Path(n).stem] = Particles(rng.uniform(0, 191, k), rng.uniform(0, 159, k),
                                      rng.normal(size=k) if scores else None)
    return out


def test_write_relion_layout_conforms(tmp_path):
    root = tmp_path / "relion"
    out = root / "External/job010"
    picks = _picks()
    files = write_star(picks, out, per_micrograph=True, micrographs=_records(root), relion_project=root,
                       micrographs_list="CtfFind/job003/micrographs_ctf.star")
    expected = [out / f"Movies/mic_{i:03d}_autopick.star" for i in range(3)]
    assert files == [*expected, out / "autopick.star", out / "coords_suffix_autopick.star"]
    for target, p in zip(expected, picks.values()):
        blocks = starfile.read(target, always_dict=True)
        assert list(blocks) == [""]  # data_
        table = blocks[""]
        assert list(table.columns) == ["rlnCoordinateX", "rlnCoordinateY", "rlnClassNumber",
                                       "rlnAutopickFigureOfMerit", "rlnAnglePsi"] or len(p) == 0
        if len(p):
            np.testing.assert_allclose(table["rlnCoordinateX"], p.x, atol=1e-6)
            np.testing.assert_allclose(table["rlnAutopickFigureOfMerit"], p.score, atol=1e-6)
            assert (table["rlnClassNumber"] == 0).all() and (table["rlnAnglePsi"] == 0).all()
    listing = starfile.read(out / "autopick.star", always_dict=True)
    assert list(listing) == ["coordinate_files"]
    table = listing["coordinate_files"]
    assert list(table["rlnMicrographName"]) == NAMES  # the full names, not base names
    assert list(table["rlnMicrographCoordinates"]) == [f"External/job010/Movies/mic_{i:03d}_autopick.star"
                                                       for i in range(3)]
    assert (out / "coords_suffix_autopick.star").read_text().split() == ["CtfFind/job003/micrographs_ctf.star"]


def test_relion_layout_round_trips_through_each_list(tmp_path, monkeypatch):
    root = tmp_path / "relion"
    make_relion_project(root)
    out = root / "External/job010"
    picks = _picks()
    write_star(picks, out, per_micrograph=True, micrographs=_records(root), relion_project=root,
               micrographs_list="CtfFind/job003/micrographs_ctf.star")
    monkeypatch.chdir(tmp_path)  # not the project: the lists' paths are found from the list's folder up
    for source in (out / "autopick.star", out / "coords_suffix_autopick.star", out):
        back = read_star(source)
        assert list(back) == NAMES, source
        for name, mic in zip(NAMES, picks):
            np.testing.assert_allclose(back[name].x, picks[mic].x, atol=1e-6)
            np.testing.assert_allclose(back[name].y, picks[mic].y, atol=1e-6)
            np.testing.assert_allclose(back[name].score, picks[mic].score, atol=1e-6)


def test_unscored_picks_get_relions_no_fom(tmp_path):
    files = write_relion_layout(_picks(scores=False), tmp_path, {Path(n).stem: n for n in NAMES})
    table = starfile.read(files[0])
    assert (table["rlnAutopickFigureOfMerit"] == -999).all()
    # Outside a RELION project the list holds absolute paths, which Extract opens from anywhere.
    listing = starfile.read(tmp_path / "autopick.star")
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in listing["rlnMicrographCoordinates"])


def test_relion_micrographs_default_to_relions_layout(tmp_path):
    picks = _picks()
    files = write_star(picks, tmp_path / "default", micrographs=_records())  # per_micrograph not given
    assert [f.name for f in files][-1] == "autopick.star"
    (single,) = write_star(picks, tmp_path / "single", per_micrograph=False, micrographs=_records())
    assert single.name == "particles.star"
    assert set(starfile.read(single)["rlnMicrographName"]) == set(NAMES[:2])  # the third has no picks


def test_plain_micrographs_keep_the_flat_layout(tmp_path):
    picks = _picks()
    files = write_star(picks, tmp_path, per_micrograph=True, micrographs={})
    assert sorted(f.name for f in files) == [f"mic_{i:03d}_autopick.star" for i in range(3)]
    (single,) = write_star(picks, tmp_path / "one", micrographs={})
    assert set(starfile.read(single)["rlnMicrographName"]) == {"mic_000", "mic_001"}


def test_two_micrographs_on_one_coordinate_file_are_refused(tmp_path):
    names = {"a": "MotionCorr/job002/Movies/mic.mrc", "b": "MotionCorr/job003/Movies/mic.mrc"}
    picks = {"a": Particles([1.0], [2.0]), "b": Particles([3.0], [4.0])}
    with pytest.raises(InputError, match="share the coordinate file Movies/mic_autopick.star"):
        write_relion_layout(picks, tmp_path, names)


# --------------------------------------------------------------------------------- RELION's lists as labels


def make_manualpick_job(root: Path, picks: dict[str, np.ndarray]) -> Path:
    """ManualPick/job004/ as RELION 5 writes it: per-micrograph files and manualpick.star."""
    job = root / "ManualPick/job004"
    rows = []
    for name, xy in picks.items():
        rel = f"ManualPick/job004/{coordinate_file(name, '_manualpick')}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{x:12.6f} {y:12.6f}            2  -999.000000  -999.000000" for x, y in xy]
        (root / rel).write_text(MANUALPICK_FILE.format(rows="\n".join(lines)))
        rows.append(f"{name} {rel}")
    (job / "manualpick.star").write_text(MANUALPICK_LIST.format(rows="\n".join(rows)))
    return job / "manualpick.star"


def test_read_manualpick_list(tmp_path, monkeypatch):
    root = tmp_path / "relion"
    xy = {NAMES[0]: np.array([[10.5, 20.25], [100.0, 50.0]]), NAMES[1]: np.array([[30.0, 40.0]])}
    listing = make_manualpick_job(root, xy)
    monkeypatch.chdir(tmp_path)
    back = read_coordinate_list(listing)  # found from ManualPick/job004/ two folders up
    assert list(back) == NAMES[:2]
    np.testing.assert_array_equal(back[NAMES[0]].xy, xy[NAMES[0]])
    assert list(read_coordinate_list(listing, relion_project=root)) == NAMES[:2]
    # a wrong --relion-project falls back to the list's folder and its ancestors (RELION's own lists)
    assert list(read_coordinate_list(listing, relion_project=tmp_path)) == NAMES[:2]
    elsewhere = tmp_path / "copied" / "manualpick.star"
    elsewhere.parent.mkdir()
    elsewhere.write_text(listing.read_text())
    with pytest.raises(InputError, match="--relion-project DIR"):
        read_coordinate_list(elsewhere)
    # a micrograph listed without a coordinate file has no particles
    (root / "ManualPick/job004" / coordinate_file(NAMES[1], "_manualpick")).unlink()
    assert len(read_coordinate_list(listing)[NAMES[1]]) == 0


def test_list_without_columns_names_them(tmp_path):
    bad = tmp_path / "autopick.star"
    starfile.write({"coordinate_files": pd.DataFrame({"rlnMicrographName": ["a.mrc"]})}, bad)
    with pytest.raises(InputError, match="rlnMicrographCoordinates"):
        read_star(bad)


# --------------------------------------------------------------------------------- the command line


@pytest.fixture(autouse=True)
def _pristine_cli(pristine_cli):
    """In-process ``main()`` changes the global CLI (cryopick.testing.pristine_cli undoes it)."""


def _cli(args, cwd, monkeypatch):
    from cryopick.cli.main import main

    monkeypatch.chdir(cwd)
    return main([*args, "-q"])


def test_cli_run_dog_on_a_relion_micrographs_star(relion_project, monkeypatch, tmp_path):
    root, _ = relion_project
    rc = _cli(["run", "--picker", "dog", "--micrographs", "CtfFind/job003/micrographs_ctf.star",
               "--relion-project", str(root), "--diameter", "20", "--per-micrograph",
               "--out", "External/job010", "--json"], root, monkeypatch)
    assert rc == 0
    (run_dir,) = [p for p in (root / "External/job010").iterdir() if p.is_dir() and p.name.startswith("dog-")]
    for i in range(3):
        assert (run_dir / f"Movies/mic_{i:03d}_autopick.star").is_file()
    table = starfile.read(run_dir / "autopick.star")
    assert list(table["rlnMicrographName"]) == NAMES
    for coords in table["rlnMicrographCoordinates"]:
        assert not Path(coords).is_absolute() and (root / coords).is_file()  # as Extract opens them
    assert (run_dir / "coords_suffix_autopick.star").read_text().split() == ["CtfFind/job003/micrographs_ctf.star"]
    from cryopick.pipeline import open_project

    project = open_project(root / "External/job010/project.h5", "r")
    try:
        mics = project.micrographs()
        assert {m.source_name for m in mics.values()} == set(NAMES)
        assert {m.pixel_size_a for m in mics.values()} == {2.0}  # the optics group's, not the header's
        assert project.settings()["relion_project"] == str(root.resolve())
    finally:
        project.store.close()
    # export writes the same layout again, from the stored names
    rc = _cli(["export", "-P", "External/job010/project.h5", "--format", "star", "--per-micrograph",
               "--out", "External/job011"], root, monkeypatch)
    assert rc == 0
    again = starfile.read(root / "External/job011/autopick.star")
    assert list(again["rlnMicrographName"]) == NAMES
    assert list(again["rlnMicrographCoordinates"])[0] == "External/job011/Movies/mic_000_autopick.star"
    # and RELION's AutoPick list imports back as labels with that one argument
    assert _cli(["import", "-P", "labels.h5", "--micrographs", "CtfFind/job003/micrographs_ctf.star",
                 "--labels", str(run_dir / "autopick.star")], root, monkeypatch) == 0
    proj = open_project(root / "labels.h5", "r")
    try:
        labels = proj.labels("train")
        picks = {n: starfile.read(run_dir / f"Movies/{n}_autopick.star") for n in labels}
    finally:
        proj.store.close()
    assert set(labels) == {"mic_000", "mic_001", "mic_002"}
    for name, table in picks.items():
        np.testing.assert_allclose(labels[name].x, np.asarray(table["rlnCoordinateX"], float).reshape(-1), atol=1e-6)


def test_cli_import_labels_from_manualpick_star(relion_project, monkeypatch):
    root, sims = relion_project
    truth = {n: sims[i].truth.xy for i, n in enumerate(NAMES[:2])}
    make_manualpick_job(root, truth)
    project = root / "cryopick.h5"
    assert _cli(["import", "-P", str(project), "--micrographs", "CtfFind/job003/micrographs_ctf.star"],
                root, monkeypatch) == 0
    # one argument, from inside the job folder: the list's paths are found from the project folder above
    assert _cli(["import", "-P", str(project), "--labels", "manualpick.star"],
                root / "ManualPick/job004", monkeypatch) == 0
    from cryopick.pipeline import open_project

    proj = open_project(project, "r")
    try:
        labels = proj.labels("train")
    finally:
        proj.store.close()
    assert set(labels) == {"mic_000", "mic_001"}
    np.testing.assert_allclose(labels["mic_000"].xy, truth[NAMES[0]], atol=1e-6)


def test_cli_plain_micrographs_with_relion_labels(relion_project, monkeypatch, capsys):
    root, sims = relion_project
    make_manualpick_job(root, {NAMES[0]: sims[0].truth.xy})
    # micrographs as a folder, labels as RELION's list resolved with --relion-project from elsewhere
    rc = _cli(["import", "-P", "p.h5", "--micrographs", str(root / "MotionCorr/job002/Movies"),
               "--labels", str(root / "ManualPick/job004/manualpick.star"), "--relion-project", str(root)],
              root.parent, monkeypatch)
    assert rc == 0
    rc = _cli(["import", "-P", "p.h5", "--micrographs", str(root / "MotionCorr/job002/Movies"),
               "--cryosparc-project", str(root)], root.parent, monkeypatch)
    assert rc == 2
    assert "--cryosparc-project goes with a cryoSPARC exposures .cs" in capsys.readouterr().err


def test_import_jobs_coords_suffix_is_read(tmp_path):
    """RELION's Import of coordinates (src/apps/import.cpp, --do_coordinates): the files are copied below
    Import/jobNNN/ and coords_suffix_autopick.star holds the input pattern up to its '*' plus '*.mrc'."""
    job = tmp_path / "Import/job007"
    files = write_relion_layout(_picks(), job, {Path(n).stem: n for n in NAMES})
    assert files[-1] == job / "autopick.star"  # no micrographs STAR given: no coords_suffix node
    files[-1].unlink()  # Import writes no list
    suffix = job / "coords_suffix_autopick.star"
    suffix.write_text("External/job013/Movies/*.mrc\n")
    back = read_star(suffix)
    assert sorted(back) == [f"Movies/mic_{i:03d}" for i in range(3)]
    np.testing.assert_allclose(back["Movies/mic_000"].x, _picks()["mic_000"].x, atol=1e-6)
