from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

import segscope
from segscope.io import ImageReadError, image_info, imread, imwrite


@pytest.mark.parametrize(
    ("suffix", "dtype", "shape"),
    [
        (".png", np.uint8, (5, 7)),
        (".png", np.uint8, (5, 7, 3)),
        (".png", np.uint8, (5, 7, 4)),
        (".png", np.uint8, (5, 7, 2)),
        (".png", np.uint16, (5, 7)),
        (".tif", np.uint8, (5, 7, 3)),
        (".tif", np.uint16, (5, 7)),
        (".tif", np.uint16, (5, 7, 6)),
        (".tif", np.float32, (5, 7)),
        (".tif", np.float64, (5, 7, 2)),
        (".tiff", np.int16, (5, 7)),
    ],
)
def test_round_trip_is_exact(tmp_path, suffix, dtype, shape):
    rng = np.random.default_rng(1)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        image = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    else:
        image = (rng.standard_normal(shape) * 1000).astype(dtype)
    path = tmp_path / f"a{suffix}"
    imwrite(path, image)
    back = imread(path)
    assert back.dtype == image.dtype
    assert np.array_equal(back, image)


@settings(max_examples=30, deadline=None)
@given(image=hnp.arrays(np.uint16, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_16bit_png_property(tmp_path_factory, image):
    path = tmp_path_factory.mktemp("png") / "a.png"
    imwrite(path, image)
    assert np.array_equal(imread(path), image)


def test_jpeg_reads_uint8_and_honours_exif_orientation(tmp_path):
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :10] = 255
    img = Image.fromarray(image)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "rot.jpg"
    img.save(path, exif=exif, quality=100)
    out = imread(path)
    assert out.shape == (20, 10, 3) and out.dtype == np.uint8
    assert out[:5].mean() > 200 and out[-5:].mean() < 50  # left half ends up on top


def test_palette_png_expands_to_rgb(tmp_path):
    img = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8))
    img.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    img.save(tmp_path / "p.png")
    out = imread(tmp_path / "p.png")
    assert out.shape == (2, 2, 3)
    assert out[0, 1].tolist() == [255, 0, 0]


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.png"):
        imread(tmp_path / "nope.png")


def test_non_image_file(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(ImageReadError, match=r"notes\.png.*not a recognised image"):
        imread(path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    imwrite(path, np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match=r"cut\.png"):
        imread(path)


def test_empty_tiff(tmp_path):
    import tifffile

    path = tmp_path / "empty.tif"
    tifffile.imwrite(path, np.zeros((0, 5), np.uint8))
    with pytest.raises(ImageReadError, match=r"empty\.tif"):
        imread(path)


def test_decompression_bomb_guard(tmp_path):
    path = tmp_path / "big.png"
    imwrite(path, np.zeros((100, 100), np.uint8))
    with pytest.raises(ImageReadError, match="over the limit of 5000 bytes"):
        imread(path, max_bytes=5000)
    assert imread(path, max_bytes=10_000).shape == (100, 100)


def test_unsupported_dtype_to_png_is_refused_not_converted(tmp_path):
    with pytest.raises(TypeError, match="PNG holds"):
        imwrite(tmp_path / "f.png", np.zeros((3, 3), np.float32))
    with pytest.raises(TypeError, match="complex"):
        imwrite(tmp_path / "c.tif", np.zeros((3, 3), np.complex64))
    assert list(tmp_path.iterdir()) == []


def test_unwritable_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        imwrite(tmp_path / "missing" / "a.png", np.zeros((2, 2), np.uint8))


def test_failed_write_leaves_no_partial_file(tmp_path, monkeypatch):
    import segscope.atomic as atomic

    path = tmp_path / "a.png"

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        imwrite(path, np.zeros((4, 4), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_image_info_reports_nan(tmp_path):
    image = np.array([[1.0, np.nan], [3.0, -2.0]], np.float32)
    imwrite(tmp_path / "f.tif", image)
    info = image_info(tmp_path / "f.tif")
    assert info.shape == (2, 2) and info.dtype == "float32" and info.channels == 1
    assert (info.minimum, info.maximum, info.has_nan) == (-2.0, 3.0, True)
    assert "NaN" in str(info)


def test_reads_real_fixtures(data_dir):
    jpg = imread(data_dir / "bsds500" / "images" / "val" / sorted(
        p.name for p in (data_dir / "bsds500" / "images" / "val").glob("*.jpg"))[0])
    assert jpg.ndim == 3 and jpg.dtype == np.uint8 and jpg.shape[2] == 3
    tif = imread(data_dir / "nuclei_dsb2018_sample" / "mask2d.tif")
    assert tif.dtype == np.uint16 and tif.shape == (512, 512)
    assert segscope.imread is imread


@pytest.mark.parametrize("compression", ["lzw", "deflate", "packbits", "jpeg"])
def test_compressed_tiffs_read_back(tmp_path, compression):
    # DRIVE and many microscopes write LZW; JPEG-in-TIFF is lossy, the others exact.
    import tifffile

    image = (np.arange(64 * 80).reshape(64, 80) % 251).astype(np.uint8)
    path = tmp_path / f"{compression}.tif"
    tifffile.imwrite(path, image, compression=compression)
    back = imread(path)
    assert back.shape == image.shape and back.dtype == np.uint8
    tolerance = 8 if compression == "jpeg" else 0
    assert np.abs(back.astype(int) - image).max() <= tolerance
