"""EMAN2 ``info/<micrograph>_info.json``: files shaped as e2boxer writes them, the y axis (mirrored only for
TIFF micrographs), round trips, bad files, and the import stage giving the reader the micrographs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cryopick.errors import InputError
from cryopick.io import read_coordinates, write_coordinates
from cryopick.io.eman2 import read_eman2, write_eman2
from cryopick.particles import Particles

# e2boxer keeps a micrograph's boxes in info/<micrograph>_info.json as "boxes": [[x, y, mode], ...] with
# (x, y) the box centre (cryoem/eman2 programs/e2boxer.py: write_boxfiles writes the EMAN1 corner
# b[0] - boxsize/2; the autopicker's mode, e.g. "auto_local", is b[2]); the same file holds the
# micrograph's other metadata. info/project.json holds project settings, no boxes.
E2BOXER_INFO = {
    "boxes": [[1024, 2048, "manual"], [300, 40, "manual"], [2000.5, 1500, "auto_local"]],
    "ctf_frame": [512, 2.5],
}
PROJECT_JSON = {"global.apix": 1.34, "global.boxsize": 256}


def _info_dir(tmp_path, boxes=E2BOXER_INFO):
    info = tmp_path / "info"
    info.mkdir()
    (info / "mic_001_info.json").write_text(json.dumps(boxes, indent=0))
    (info / "mic_002_info.json").write_text(json.dumps({"ctf_frame": [512, 2.0]}))  # not boxed yet
    (info / "project.json").write_text(json.dumps(PROJECT_JSON))
    return info


def test_reads_e2boxer_centres_from_mrc_micrographs_as_written(tmp_path):
    info = _info_dir(tmp_path)
    picks = read_coordinates(info, micrograph_files={"mic_001": "mic_001.mrc"}, shapes={"mic_001": (4096, 4096)})
    assert list(picks) == ["mic_001"]  # mic_002 has no boxes; project.json is not a micrograph
    np.testing.assert_array_equal(picks["mic_001"].x, [1024, 300, 2000.5])
    np.testing.assert_array_equal(picks["mic_001"].y, [2048, 40, 1500])  # MRC: y as written
    assert not picks["mic_001"].has_scores


def test_tiff_micrographs_are_mirrored_in_y(tmp_path):
    info = _info_dir(tmp_path)
    picks = read_eman2(info / "mic_001_info.json", micrograph_files={"mic_001": "mic_001.tiff"},
                       shapes={"mic_001": (3000, 4000)})
    # topaz-em utils/conversions.py, coordinates_to_eman2_json with invert_y: y' = H - 1 - y
    np.testing.assert_array_equal(picks["mic_001"].y, [3000 - 1 - 2048, 3000 - 1 - 40, 3000 - 1 - 1500])
    np.testing.assert_array_equal(picks["mic_001"].x, [1024, 300, 2000.5])


def test_tiff_without_height_is_a_clear_error(tmp_path):
    info = _info_dir(tmp_path)
    with pytest.raises(InputError, match=r"mic_001 is a TIFF image.*height is unknown.*cryopick import"):
        read_eman2(info, micrograph_files={"mic_001": "mic_001.tif"})
    with pytest.raises(InputError, match="needs the height of TIFF micrograph mic_001"):
        write_eman2({"mic_001": Particles([1.0], [2.0])}, tmp_path / "out",
                    micrograph_files={"mic_001": "mic_001.tif"})


@pytest.mark.parametrize("suffix", [".mrc", ".tif"])
def test_round_trip(tmp_path, suffix):
    rng = np.random.default_rng(5)
    picks = {"m1": Particles(rng.uniform(0, 1000, 20), rng.uniform(0, 900, 20)),
             "m2": Particles([10.0, 20.0], [899.0, 0.0])}
    files = {n: n + suffix for n in picks}
    shapes = {n: (900, 1000) for n in picks}
    written = write_coordinates(picks, tmp_path / "info", "eman2", shapes=shapes, micrograph_files=files,
                                box_size=64)
    assert sorted(f.name for f in written) == ["m1_info.json", "m2_info.json"]
    stored = json.loads((tmp_path / "info" / "m2_info.json").read_text())
    want_y = [0, 899] if suffix == ".tif" else [899, 0]
    assert stored["boxes"] == [[10, want_y[0], "manual"], [20, want_y[1], "manual"]]
    back = read_coordinates(tmp_path / "info", shapes=shapes, micrograph_files=files)
    for n in picks:
        np.testing.assert_allclose(back[n].x, picks[n].x, rtol=0, atol=1e-9)
        np.testing.assert_allclose(back[n].y, picks[n].y, rtol=0, atol=1e-9)


def test_writer_keeps_the_rest_of_an_info_file(tmp_path):
    info = _info_dir(tmp_path)
    write_eman2({"mic_001": Particles([5.0], [6.0])}, info)
    stored = json.loads((info / "mic_001_info.json").read_text())
    assert stored["boxes"] == [[5, 6, "manual"]] and stored["ctf_frame"] == [512, 2.5]
    (info / "bad_info.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="bad_info.json: exists and is not an EMAN2 info file"):
        write_eman2({"bad": Particles([5.0], [6.0])}, info)


def test_bad_files_name_the_problem(tmp_path):
    f = tmp_path / "a_info.json"
    f.write_text("{not json")
    with pytest.raises(InputError, match=r"a_info.json: is not an EMAN2 info file \(not JSON"):
        read_eman2(f)
    f.write_text(json.dumps({"boxes": [[1, "y", "manual"]]}))
    with pytest.raises(InputError, match=r"a_info.json: \"boxes\"\[0\] is \[1, 'y', 'manual'\]"):
        read_eman2(f)
    f.write_text(json.dumps({"ctf_frame": []}))
    with pytest.raises(InputError, match="has no \"boxes\" entry"):
        read_eman2(f)
    empty = tmp_path / "info"
    empty.mkdir()
    (empty / "project.json").write_text("{}")
    with pytest.raises(InputError, match="no EMAN2 \\*_info.json files"):
        read_eman2(empty)


def test_import_stage_passes_the_project_micrographs(tmp_path):
    """cryopick import --labels info/ on TIFF micrographs: the stage gives the reader heights and files."""
    import attrs

    from cryopick.host import build_host
    from cryopick.stages.import_ import read_labels_file

    @attrs.define
    class Mic:  # the fields of cryopick.project.MicrographRecord the stage reads
        path: str
        shape: tuple

    info = _info_dir(tmp_path)
    host = build_host(load_entry_points=False)
    picks = read_labels_file(info, host, {"mic_001": Mic("/data/mic_001.tif", (3000, 4000))})
    np.testing.assert_array_equal(picks["mic_001"].y, [951, 2959, 1499])
    picks = read_labels_file(info, host, {"mic_001": Mic("/data/mic_001.mrc", (3000, 4000))})
    np.testing.assert_array_equal(picks["mic_001"].y, [2048, 40, 1500])
