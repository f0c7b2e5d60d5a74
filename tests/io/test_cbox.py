"""crYOLO ``.cbox``: a file shaped as crYOLO writes it, round trips, corners vs centres, bad files, and
dispatch by suffix and through the import stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryopick.errors import InputError
from cryopick.io import read_coordinates, write_coordinates
from cryopick.io.cbox import read_cbox, write_cbox
from cryopick.particles import Particles

# The layout crYOLO writes (MPI-Dortmund/napari-boxmanager src/box_manager/io/cbox.py, write_cbox and
# _make_df_data): a data_global block with _cbox_format_version 1.0, a data_cryolo loop of the 11 columns
# below, with X/Y the box corner ("_CoordinateX": x - boxsize / 2), missing values as pandas' <NA>, and
# a data_cryolo_include loop of _slice_index (empty for 2-D micrographs).
CRYOLO_CBOX = """
data_global

_cbox_format_version 1.0


data_cryolo

loop_
_CoordinateX #1
_CoordinateY #2
_CoordinateZ #3
_Width #4
_Height #5
_Depth #6
_EstWidth #7
_EstHeight #8
_Confidence #9
_NumBoxes #10
_Angle #11
1043 2390 <NA> 220 220 <NA> 184 190 0.8734 <NA> <NA>
120.5 3001 <NA> 220 220 <NA> 177 181 0.312 <NA> <NA>
3300 12 <NA> 200 180 <NA> <NA> <NA> <NA> <NA> <NA>


data_cryolo_include

loop_
_slice_index #1
"""


def test_reads_crYOLO_layout_as_centres(tmp_path):
    path = tmp_path / "mic_007.cbox"
    path.write_text(CRYOLO_CBOX)
    picks = read_cbox(path)
    assert list(picks) == ["mic_007"]
    p = picks["mic_007"]
    # centre = corner + box / 2 (napari-boxmanager: _CoordinateX + _Width / 2)
    np.testing.assert_array_equal(p.x, [1043 + 110, 120.5 + 110, 3300 + 100])
    np.testing.assert_array_equal(p.y, [2390 + 110, 3001 + 110, 12 + 90])
    np.testing.assert_array_equal(p.score[:2], [0.8734, 0.312])
    assert np.isnan(p.score[2])  # <NA>: no confidence


def test_writes_crYOLO_layout(tmp_path):
    picks = {"mic_1": Particles([110.0, 50.25], [200.0, 60.0], [0.9, np.nan])}
    (path,) = write_cbox(picks, tmp_path, box_size=64)
    assert path.name == "mic_1.cbox"
    lines = path.read_text().splitlines()
    assert lines[1:4] == ["data_global", "", "_cbox_format_version 1.0"]
    start = lines.index("data_cryolo")
    header = lines[start + 3: start + 14]
    assert [h.split()[0] for h in header] == ["_CoordinateX", "_CoordinateY", "_CoordinateZ", "_Width", "_Height",
                                              "_Depth", "_EstWidth", "_EstHeight", "_Confidence", "_NumBoxes",
                                              "_Angle"]
    rows = [line.split() for line in lines[start + 14: start + 16]]
    assert rows[0] == ["78", "168", "<NA>", "64", "64", "<NA>", "<NA>", "<NA>", "0.9", "<NA>", "<NA>"]
    assert rows[1][:2] == ["18.25", "28"] and rows[1][8] == "<NA>"
    assert "data_cryolo_include" in lines and lines[-1] == "_slice_index #1"


@pytest.mark.parametrize("box_size", [64, 41])
def test_round_trip_is_exact(tmp_path, box_size):
    rng = np.random.default_rng(3)
    picks = {"a": Particles(rng.uniform(0, 4000, 30), rng.uniform(0, 4000, 30), rng.normal(size=30)),
             "b": Particles.empty()}
    files = write_coordinates(picks, tmp_path, "cbox", box_size=box_size, shapes={}, per_micrograph=True)
    back = read_coordinates(tmp_path)  # a folder of .cbox files
    assert sorted(Path(f).name for f in files) == ["a.cbox", "b.cbox"]
    np.testing.assert_array_equal(back["a"].x, picks["a"].x)
    np.testing.assert_array_equal(back["a"].y, picks["a"].y)
    np.testing.assert_array_equal(back["a"].score, picks["a"].score)
    assert len(back["b"]) == 0


def test_writer_needs_box_size_and_per_micrograph(tmp_path):
    picks = {"a": Particles([1.0], [2.0])}
    with pytest.raises(InputError, match="box size"):
        write_cbox(picks, tmp_path)
    with pytest.raises(InputError, match="per_micrograph"):
        write_cbox(picks, tmp_path, box_size=10, per_micrograph=False)


def test_bad_files_name_the_problem(tmp_path):
    no_block = tmp_path / "a.cbox"
    no_block.write_text("data_particles\n\nloop_\n_rlnCoordinateX #1\n_rlnCoordinateY #2\n1 2\n")
    with pytest.raises(InputError, match=r"a\.cbox: has no data_cryolo block"):
        read_cbox(no_block)
    missing = tmp_path / "b.cbox"
    missing.write_text(CRYOLO_CBOX.replace("_Width #4", "_W #4"))
    with pytest.raises(InputError, match=r"b\.cbox: block data_cryolo lacks column\(s\) _Width"):
        read_cbox(missing)
    nan = tmp_path / "c.cbox"
    nan.write_text(CRYOLO_CBOX.replace("1043 2390", "<NA> 2390"))
    with pytest.raises(InputError, match=r"c\.cbox:1: _CoordinateX 'nan' is not a number"):
        read_cbox(nan)


def test_import_stage_reads_cbox_by_suffix(tmp_path):
    from cryopick.host import build_host
    from cryopick.stages.import_ import read_labels_file

    path = tmp_path / "mic_007.cbox"
    path.write_text(CRYOLO_CBOX)
    picks = read_labels_file(path, build_host(load_entry_points=False))
    assert len(picks["mic_007"]) == 3
