"""Coordinate formats: round trips, RELION STAR versions, box corners, bad lines, cs safety, dispatch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import starfile

from cryopick.errors import InputError
from cryopick.io import check_inside, read_coordinates, write_coordinates
from cryopick.io.box import read_box, write_box
from cryopick.io.cs import read_cs, write_cs
from cryopick.io.csv import read_csv
from cryopick.io.registry import EXPORTERS, IMPORTERS
from cryopick.io.star import read_star, write_star
from cryopick.io.txt import read_txt
from cryopick.particles import Particles

FORMATS = ["star", "box", "txt", "csv", "cs"]
SHAPES = {"mic_001": (1200, 1240), "mic_002": (1200, 1240), "mic.003": (900, 1000)}
# Tolerance per format: STAR writes 6 decimals, cs stores float32 fractions; the others are exact.
ATOL = {"star": 1e-6, "box": 0.0, "txt": 0.0, "csv": 0.0, "cs": 1e-3}
HAS_SCORES = {"star": True, "box": False, "txt": True, "csv": True, "cs": True}


def _picks(scores: bool = True) -> dict[str, Particles]:
    rng = np.random.default_rng(7)
    out = {}
    for i, (name, (rows, cols)) in enumerate(SHAPES.items()):
        n = 5 + i
        x = rng.uniform(0, cols - 1, n)
        y = rng.uniform(0, rows - 1, n)
        x[0], y[0] = 10.0, 20.0  # integer centres too
        out[name] = Particles(x, y, rng.normal(size=n) if scores else None)
    return out


def _assert_same(got, want, fmt, scores=True):
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name].x, want[name].x, rtol=0, atol=ATOL[fmt])
        np.testing.assert_allclose(got[name].y, want[name].y, rtol=0, atol=ATOL[fmt])
        if scores and HAS_SCORES[fmt]:
            np.testing.assert_allclose(got[name].score, want[name].score, rtol=1e-6, atol=1e-6)
        elif fmt == "cs":  # cryoSPARC's Inspect Picks needs numbers: no score is written as ncc_score 0
            assert np.all(got[name].score == 0)
        else:
            assert not got[name].has_scores


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("per_micrograph", [True, False])
@pytest.mark.parametrize("scores", [True, False])
def test_round_trip(tmp_path, fmt, per_micrograph, scores):
    picks = _picks(scores)
    if fmt in ("box", "csv") and not per_micrograph:
        with pytest.raises(InputError, match="per_micrograph"):
            write_coordinates(picks, tmp_path, fmt, per_micrograph=False, box_size=64, shapes=SHAPES)
        return
    files = write_coordinates(picks, tmp_path / "out", fmt, per_micrograph=per_micrograph, box_size=64,
                              shapes=SHAPES, unused_option=1)
    assert all(f.exists() for f in files)
    assert len(files) == (len(picks) if per_micrograph else 1)
    # Read back through the dispatch: a directory when there are several files, else the file.
    got = read_coordinates(tmp_path / "out" if per_micrograph else files[0])
    _assert_same(got, picks, fmt, scores)


@pytest.mark.parametrize("fmt", FORMATS)
def test_default_layout(tmp_path, fmt):
    files = write_coordinates(_picks(), tmp_path, fmt, box_size=50, shapes=SHAPES)
    names = sorted(f.name for f in files)
    expected = {
        "star": ["particles.star"],
        "box": ["mic.003.box", "mic_001.box", "mic_002.box"],
        "txt": ["particles.txt"],
        "csv": ["mic.003.csv", "mic_001.csv", "mic_002.csv"],
        "cs": ["particles.cs"],
    }
    assert names == expected[fmt]


def test_star_has_relion_columns(tmp_path):
    (single,) = write_star(_picks(), tmp_path)
    df = starfile.read(single)
    assert list(df.columns) == ["rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnAutopickFigureOfMerit"]
    per = write_star(_picks(scores=False), tmp_path / "per", per_micrograph=True)
    assert sorted(p.name for p in per) == ["mic.003_autopick.star", "mic_001_autopick.star", "mic_002_autopick.star"]
    assert list(starfile.read(per[0]).columns) == ["rlnCoordinateX", "rlnCoordinateY"]


def test_star_30_and_31(tmp_path):
    particles = pd.DataFrame({
        "rlnCoordinateX": [1.5, 2.5, 3.0],
        "rlnCoordinateY": [4.0, 5.0, 6.25],
        "rlnMicrographName": ["MotionCorr/job003/Movies/mic_001.mrc"] * 2 + ["MotionCorr/job003/Movies/mic_002.mrc"],
        "rlnOpticsGroup": [1, 1, 1],
    })
    starfile.write({"": particles.drop(columns="rlnOpticsGroup")}, tmp_path / "v30.star")
    optics = pd.DataFrame({"rlnOpticsGroupName": ["opticsGroup1"], "rlnOpticsGroup": [1], "rlnImagePixelSize": [1.0]})
    starfile.write({"optics": optics, "particles": particles}, tmp_path / "v31.star")
    for name in ("v30.star", "v31.star"):
        got = read_star(tmp_path / name)
        assert list(got) == ["MotionCorr/job003/Movies/mic_001.mrc", "MotionCorr/job003/Movies/mic_002.mrc"]
        np.testing.assert_array_equal(got["MotionCorr/job003/Movies/mic_001.mrc"].x, [1.5, 2.5])
        np.testing.assert_array_equal(got["MotionCorr/job003/Movies/mic_002.mrc"].y, [6.25])
        assert not got["MotionCorr/job003/Movies/mic_002.mrc"].has_scores


def test_star_numeric_names_stay_strings(tmp_path):
    df = pd.DataFrame({"rlnMicrographName": ["001"], "rlnCoordinateX": [1.0], "rlnCoordinateY": [2.0]})
    starfile.write(df, tmp_path / "n.star")
    assert list(read_star(tmp_path / "n.star")) == ["001"]


def test_star_per_micrograph_name_from_file(tmp_path):
    starfile.write(pd.DataFrame({"rlnCoordinateX": [1.0], "rlnCoordinateY": [2.0]}), tmp_path / "mic_9_autopick.star")
    assert list(read_star(tmp_path / "mic_9_autopick.star")) == ["mic_9"]


def test_star_missing_columns(tmp_path):
    starfile.write(pd.DataFrame({"rlnMicrographName": ["a"], "rlnCoordX": [1.0]}), tmp_path / "bad.star")
    with pytest.raises(InputError, match=r"bad\.star.*rlnCoordinateX, rlnCoordinateY.*rlnMicrographName, rlnCoordX"):
        read_star(tmp_path / "bad.star")


def test_star_directory_merges(tmp_path):
    write_star({"mic_001": Particles([1.0], [2.0])}, tmp_path / "a")
    write_star({"mic_001": Particles([3.0], [4.0]), "mic_002": Particles([5.0], [6.0])}, tmp_path / "b",
               per_micrograph=True)
    (tmp_path / "b" / "particles.star").write_bytes((tmp_path / "a" / "particles.star").read_bytes())
    got = read_coordinates(tmp_path / "b")
    assert sorted(got) == ["mic_001", "mic_002"]
    np.testing.assert_array_equal(np.sort(got["mic_001"].x), [1.0, 3.0])


@pytest.mark.parametrize("box_size", [64, 63, 100.5])
def test_box_corner_centre_exact(tmp_path, box_size):
    centres = np.array([0.1, 10.0, 31.5, 1e-7, 1234.567890123, 4095.999999999, np.nextafter(32.0, 0)])
    picks = {"m": Particles(centres, centres[::-1])}
    (path,) = write_box(picks, tmp_path, box_size=box_size)
    first = path.read_text().splitlines()[1].split("\t")
    assert float(first[0]) == 10.0 - box_size / 2 and float(first[2]) == box_size
    got = read_box(path)["m"]
    assert np.array_equal(got.x, centres) and np.array_equal(got.y, centres[::-1])


def test_box_reads_other_tools_files(tmp_path):
    (tmp_path / "mic_7.box").write_text("100 200 64 64\n\n10.5\t20\t61\t61\t-3\n")
    got = read_box(tmp_path / "mic_7.box")["mic_7"]
    np.testing.assert_array_equal(got.x, [132.0, 41.0])
    np.testing.assert_array_equal(got.y, [232.0, 50.5])


def test_box_needs_box_size(tmp_path):
    with pytest.raises(InputError, match="box_size"):
        write_box(_picks(), tmp_path)


@pytest.mark.parametrize(
    ("name", "text", "reader"),
    [
        ("m.box", "1 2 64 64\n1 2 64\n", read_box),
        ("m.box", "1 2 64 64\n1 two 64 64\n", read_box),
        ("m.txt", "image_name\tx_coord\ty_coord\na\t1\t2\na\t1\n", read_txt),
        ("m.txt", "image_name\tx_coord\ty_coord\na\t1\t2\na\tx\t2\n", read_txt),
        ("m.csv", "X-Coordinate,Y-Coordinate,Diameter\n1,2,3\n1,2\n", read_csv),
        ("m.csv", "X-Coordinate,Y-Coordinate,Diameter\n1,2,3\nNone,2,3\n", read_csv),
    ],
)
def test_bad_lines_name_path_and_line(tmp_path, name, text, reader):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=rf"{name.replace('.', '[.]')}:\d") as err:
        reader(tmp_path / name)
    assert f"{name}:{text.count(chr(10))}" in str(err.value)


def test_txt_and_csv_headers(tmp_path):
    (tmp_path / "h.txt").write_text("name\tx\ty\n")
    with pytest.raises(InputError, match=r"h\.txt.*x_coord"):
        read_txt(tmp_path / "h.txt")
    (tmp_path / "h.csv").write_text("X,Y\n1,2\n")
    with pytest.raises(InputError, match=r"h\.csv.*X-Coordinate"):
        read_csv(tmp_path / "h.csv")
    (tmp_path / "topaz.txt").write_text("mic_1 1.5 2.5 -3.0\nmic_2 4 5 1\n")  # no header, spaces
    got = read_txt(tmp_path / "topaz.txt")
    assert list(got) == ["mic_1", "mic_2"] and got["mic_1"].score[0] == -3.0


def test_csv_confidence_and_diameter(tmp_path):
    (path,) = write_coordinates({"m": Particles([1.25], [2.0], [0.5])}, tmp_path, "csv", box_size=180)
    assert path.read_text().splitlines() == ["X-Coordinate,Y-Coordinate,Diameter,Confidence", "1.25,2,180,0.5"]
    (path,) = write_coordinates({"m": Particles([1.25], [2.0])}, tmp_path / "b", "csv")
    assert path.read_text().splitlines() == ["X-Coordinate,Y-Coordinate,Diameter", "1.25,2,0"]


def test_empty_micrograph_kept_in_per_micrograph_files(tmp_path):
    picks = {"full": Particles([1.0], [2.0], [0.1]), "none": Particles.empty()}
    for fmt in ("star", "box", "txt", "csv"):
        write_coordinates(picks, tmp_path / fmt, fmt, per_micrograph=True, box_size=10)
        got = read_coordinates(tmp_path / fmt)
        assert sorted(got) == ["full", "none"] and len(got["none"]) == 0, fmt


def test_cs_uid_prefix_and_fields(tmp_path):
    dtype = [("uid", "<u8"), ("location/micrograph_path", "S64"), ("location/micrograph_shape", "<u4", (2,)),
             ("location/center_x_frac", "<f4"), ("location/center_y_frac", "<f4")]
    data = np.zeros(2, dtype=dtype)
    data["location/micrograph_path"] = b"J12/imported/012345678901234567_mic_001.mrc"
    data["location/micrograph_shape"] = (1000, 2000)
    data["location/center_x_frac"] = [0.5, 0.25]
    data["location/center_y_frac"] = [0.1, 0.75]
    with open(tmp_path / "P.cs", "wb") as f:
        np.save(f, data)
    got = read_cs(tmp_path / "P.cs")
    name = "012345678901234567_mic_001"
    assert list(got) == [name]  # uid prefix kept; matched to mic_001 (or the uid-prefixed ID) by match_names
    from cryopick.io.names import match_names

    assert match_names(got, ["mic_001"])[0] == {name: "mic_001"}
    assert match_names(got, ["012345678901234567_mic_001"])[0] == {name: "012345678901234567_mic_001"}
    np.testing.assert_allclose(got[name].x, [1000, 500])
    np.testing.assert_allclose(got[name].y, [100, 750], rtol=1e-6)


def test_cs_never_unpickles(tmp_path):
    with open(tmp_path / "evil.cs", "wb") as f:
        np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputError, match=r"evil\.cs.*pickle"):
        read_cs(tmp_path / "evil.cs")
    with open(tmp_path / "obj.cs", "wb") as f:
        np.save(f, np.array([(b"x", object())], dtype=[("location/micrograph_path", "S4"), ("o", "O")]),
                allow_pickle=True)
    with pytest.raises(InputError, match=r"obj\.cs"):
        read_cs(tmp_path / "obj.cs")
    (tmp_path / "raw.cs").write_bytes(b"\x80\x04not numpy at all")
    with pytest.raises(InputError, match=r"raw\.cs"):
        read_cs(tmp_path / "raw.cs")


def test_cs_needs_shapes(tmp_path):
    with pytest.raises(InputError, match="shapes"):
        write_cs(_picks(), tmp_path)
    with pytest.raises(InputError, match="mic.003"):
        write_cs(_picks(), tmp_path, shapes={"mic_001": (10, 10), "mic_002": (10, 10)})


def test_dispatch_errors(tmp_path):
    with pytest.raises(InputError, match="star, box, txt, csv, cs"):
        write_coordinates(_picks(), tmp_path, "json")
    with pytest.raises(InputError, match="star, box, txt, csv, cs"):
        read_coordinates(tmp_path, format="json")
    (tmp_path / "a.xyz").write_text("{}")
    with pytest.raises(InputError, match=r"a\.xyz.*\.star"):
        read_coordinates(tmp_path / "a.xyz")
    with pytest.raises(InputError, match="no coordinate files"):
        read_coordinates(tmp_path)
    with pytest.raises(InputError, match="not found"):
        read_coordinates(tmp_path / "missing.star")
    write_box(_picks(), tmp_path, box_size=10)
    write_star(_picks(), tmp_path)
    with pytest.raises(InputError, match="several coordinate formats"):
        read_coordinates(tmp_path)
    assert sorted(read_coordinates(tmp_path, format="box")) == sorted(SHAPES)


def test_check_inside(tmp_path):
    picks = {"mic_001": Particles([10.0, 1300.0], [5.0, 7.0]), "other": Particles([1e9], [1e9])}
    with pytest.raises(InputError) as err:
        check_inside(picks, {"mic_001": (1200, 1240)}, source="labels.star")
    message = str(err.value)
    assert message.startswith("labels.star: micrograph mic_001: x=1300 is outside the 1240 x 1200 image")
    assert message.endswith("are x and y swapped, or the coordinates binned?")
    check_inside({"mic_001": Particles([1239.5], [1199.5])}, {"mic_001": (1200, 1240)}, source="ok")


def test_registry_entries():
    names = FORMATS + ["cbox", "eman2"]  # crYOLO and EMAN2: tests/io/test_cbox.py, test_eman2.py
    assert [e.name for e in IMPORTERS] == names and [e.name for e in EXPORTERS] == names
    for entry in IMPORTERS + EXPORTERS:
        assert entry.target.startswith("cryopick.io.") and callable(entry.load())
    assert {e.name: e.suffix for e in EXPORTERS} == {**{f: f".{f}" for f in FORMATS}, "cbox": ".cbox", "eman2": ".json"}
