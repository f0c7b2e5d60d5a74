"""Reading micrographs: MRC modes, stacks, TIFF, PNG/JPEG, and the errors for bad files."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
import tifffile
from PIL import Image

from cryopick.errors import InputError
from cryopick.io.micrographs import (
    MICROGRAPH_SUFFIXES,
    MicrographInfo,
    micrograph_name,
    read_micrograph,
    read_micrograph_info,
)

ROWS, COLS = 40, 56


def _image(dtype) -> np.ndarray:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 100, size=(ROWS, COLS))
    return values.astype(dtype)


def _write_mrc(path, data, voxel_size=1.5):
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        if voxel_size is not None:
            mrc.voxel_size = voxel_size
    return path


def test_micrograph_name():
    assert micrograph_name("/a/b/mic_001.mrc") == "mic_001"
    assert micrograph_name("mic.001.tiff") == "mic.001"
    assert micrograph_name("C:\\data\\mic_002.mrc") == "mic_002"


@pytest.mark.parametrize(
    ("dtype", "mode", "name"),
    [(np.int8, 0, "int8"), (np.int16, 1, "int16"), (np.float32, 2, "float32"), (np.uint16, 6, "uint16"),
     (np.float16, 12, "float16")],
)
@pytest.mark.parametrize("mmap", [True, False])
def test_mrc_modes(tmp_path, dtype, mode, name, mmap):
    data = _image(dtype)
    path = _write_mrc(tmp_path / "mic_001.mrc", data, voxel_size=1.34)
    with mrcfile.open(path, header_only=True) as mrc:
        assert int(mrc.header.mode) == mode
    image, info = read_micrograph(path, mmap=mmap)
    assert image.dtype == np.float32 and image.shape == (ROWS, COLS)
    np.testing.assert_array_equal(image, data.astype(np.float32))
    assert info == MicrographInfo(path, "mic_001", (ROWS, COLS), pytest.approx(1.34), name)
    header = read_micrograph_info(path)
    assert header.shape == (ROWS, COLS) and header.pixel_size_a == pytest.approx(1.34) and header.dtype == name


def test_mrc_pixel_size_unknown_and_override(tmp_path):
    zero = _write_mrc(tmp_path / "zero.mrc", _image(np.float32), voxel_size=None)
    one = _write_mrc(tmp_path / "one.mrc", _image(np.float32), voxel_size=1.0)
    assert read_micrograph_info(zero).pixel_size_a is None
    assert read_micrograph_info(one).pixel_size_a is None
    assert read_micrograph_info(one, pixel_size_a=2.5).pixel_size_a == 2.5
    assert read_micrograph(_write_mrc(tmp_path / "a.mrc", _image(np.float32)), pixel_size_a=3.0)[1].pixel_size_a == 3.0
    with pytest.raises(InputError, match="one.mrc"):
        read_micrograph_info(one, pixel_size_a=-1)


def test_mmap_image_is_copy_on_write(tmp_path):
    data = _image(np.float32)
    path = _write_mrc(tmp_path / "m.mrc", data)
    image, _ = read_micrograph(path, mmap=True)
    image[:] = 0
    np.testing.assert_array_equal(read_micrograph(path)[0], data)


def test_mrcs_single_frame(tmp_path):
    data = _image(np.float32)
    path = _write_mrc(tmp_path / "stack_1.mrcs", data[None])
    image, info = read_micrograph(path)
    np.testing.assert_array_equal(image, data)
    assert info.name == "stack_1" and info.shape == (ROWS, COLS)


def test_mrcs_many_frames(tmp_path):
    path = _write_mrc(tmp_path / "movie.mrcs", np.zeros((3, ROWS, COLS), np.float32))
    with pytest.raises(InputError, match=r"movie\.mrcs.*3 frames"):
        read_micrograph(path)


def test_mrc_volume(tmp_path):
    with mrcfile.new(tmp_path / "vol.mrc") as mrc:
        mrc.set_data(np.zeros((4, 8, 8), np.float32))
        mrc.set_volume()
    with pytest.raises(InputError, match=r"vol\.mrc.*4 sections"):
        read_micrograph_info(tmp_path / "vol.mrc")


def test_mrc_1d(tmp_path):
    path = _write_mrc(tmp_path / "line.mrc", np.zeros((1, 50), np.float32))
    with pytest.raises(InputError, match=r"line\.mrc.*1-D"):
        read_micrograph(path)


def test_mrc_truncated(tmp_path):
    path = _write_mrc(tmp_path / "cut.mrc", _image(np.float32))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 100])
    for read in (read_micrograph, read_micrograph_info):
        with pytest.raises(InputError, match=r"cut\.mrc.*truncated"):
            read(path)


def test_not_an_mrc(tmp_path):
    path = tmp_path / "noise.mrc"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match=r"noise\.mrc: is not an MRC file"):
        read_micrograph(path)
    small = tmp_path / "small.mrc"
    small.write_bytes(b"hello")
    with pytest.raises(InputError, match=r"small\.mrc.*not an MRC"):
        read_micrograph(small)


def test_nan_pixels(tmp_path):
    data = _image(np.float32)
    data[3, 4] = np.nan
    data[5, 6] = np.inf
    with pytest.warns(RuntimeWarning):  # mrcfile warns when writing NaN
        path = _write_mrc(tmp_path / "nan.mrc", data)
    with pytest.raises(InputError, match=r"nan\.mrc: contains 2 NaN/Inf pixels; fix or re-export it"):
        read_micrograph(path)


def test_empty_image(tmp_path):
    path = _write_mrc(tmp_path / "empty.mrc", np.zeros((0, 0), np.float32))
    with pytest.raises(InputError, match=r"empty\.mrc"):
        read_micrograph(path)


def test_missing_and_unknown(tmp_path):
    with pytest.raises(InputError, match=r"nothere\.mrc.*not found"):
        read_micrograph(tmp_path / "nothere.mrc")
    odd = tmp_path / "mic.dm4"
    odd.write_bytes(b"x")
    with pytest.raises(InputError, match=r"mic\.dm4") as err:
        read_micrograph_info(odd)
    for suffix in MICROGRAPH_SUFFIXES:
        assert suffix in str(err.value)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff(tmp_path, dtype):
    data = _image(dtype)
    path = tmp_path / "mic_t.tif"
    tifffile.imwrite(path, data)
    image, info = read_micrograph(path)
    np.testing.assert_array_equal(image, data.astype(np.float32))
    assert info.name == "mic_t" and info.shape == (ROWS, COLS) and info.pixel_size_a is None
    assert read_micrograph(path, pixel_size_a=1.1)[1].pixel_size_a == 1.1


def test_tiff_stack_rejected(tmp_path):
    path = tmp_path / "movie.tiff"
    tifffile.imwrite(path, np.zeros((5, ROWS, COLS), np.uint16))
    with pytest.raises(InputError, match=r"movie\.tiff.*5 frames"):
        read_micrograph(path)


def test_tiff_nan(tmp_path):
    data = _image(np.float32)
    data[0, 0] = np.nan
    tifffile.imwrite(tmp_path / "n.tif", data)
    with pytest.raises(InputError, match=r"n\.tif: contains 1 NaN/Inf"):
        read_micrograph(tmp_path / "n.tif")


@pytest.mark.parametrize(("dtype", "suffix"), [(np.uint8, ".png"), (np.uint16, ".png"), (np.uint8, ".jpg")])
def test_png_jpeg(tmp_path, dtype, suffix):
    data = _image(dtype) * (300 if dtype == np.uint16 else 1)
    path = tmp_path / f"mic_p{suffix}"
    Image.fromarray(data).save(path)
    image, info = read_micrograph(path)
    assert image.dtype == np.float32 and info.shape == (ROWS, COLS) and info.name == "mic_p"
    if suffix == ".png":  # lossless
        np.testing.assert_array_equal(image, data.astype(np.float32))
    assert read_micrograph_info(path).dtype == np.dtype(dtype).name


def test_corrupt_png(tmp_path):
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG garbage")
    with pytest.raises(InputError, match=r"bad\.png"):
        read_micrograph(path)


def test_tiff_colour_rejected(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((ROWS, COLS, 3), np.uint8), photometric="rgb")
    with pytest.raises(InputError, match=r"rgb\.tif.*colour"):
        read_micrograph_info(path)
