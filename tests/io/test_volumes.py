"""Volumes: NIfTI (affine kept) and OME-TIFF round trips, TIFF stacks with their spacing, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

import segscope
from segscope.io.limits import ImageReadError
from segscope.io.volumes import read_volume, write_volume


@pytest.mark.parametrize("name", ["v.nii", "v.nii.gz", "v.ome.tif"])
@pytest.mark.parametrize("channels", [0, 2])
def test_volumes_round_trip_with_their_spacing(tmp_path, name, channels):
    rng = np.random.default_rng(0)
    shape = (5, 6, 7) + ((channels,) if channels else ())
    data = rng.integers(0, 60000, shape).astype(np.uint16)
    write_volume(tmp_path / name, data, spacing=(2.5, 1.0, 0.5))
    volume = read_volume(tmp_path / name)
    assert volume.data.dtype == np.uint16 and np.array_equal(volume.data, data)
    assert volume.spacing == (2.5, 1.0, 0.5)
    assert volume.channels == max(channels, 1)


def test_a_nifti_affine_is_kept_and_the_axes_are_reversed(tmp_path):
    import nibabel as nib

    affine = np.array([[0.0, 0, -1.2, 10], [0, 0.9, 0, -3], [2.0, 0, 0, 7], [0, 0, 0, 1]])
    xyz = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)  # NIfTI's (i, j, k) = (x, y, z)
    image = nib.Nifti1Image(xyz, affine)
    image.header.set_zooms((2.0, 0.9, 1.2))
    nib.save(image, tmp_path / "a.nii.gz")
    volume = read_volume(tmp_path / "a.nii.gz")
    assert volume.data.shape == (6, 5, 4) and volume.data[3, 2, 1] == xyz[1, 2, 3]
    assert volume.spacing == pytest.approx((1.2, 0.9, 2.0))
    assert np.allclose(volume.affine, affine)
    write_volume(tmp_path / "b.nii.gz", volume.data, spacing=volume.spacing, affine=volume.affine)
    again = nib.load(tmp_path / "b.nii.gz")
    assert np.allclose(again.affine, affine) and np.array_equal(np.asarray(again.dataobj), xyz)


def test_tiff_stacks_give_their_slices_and_imagej_spacing(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.uint8).reshape(4, 5, 6)
    tifffile.imwrite(tmp_path / "pages.tif", data, photometric="minisblack")
    plain = read_volume(tmp_path / "pages.tif")
    assert np.array_equal(plain.data, data) and plain.spacing == (1.0, 1.0, 1.0)
    tifffile.imwrite(tmp_path / "ij.tif", data, imagej=True, metadata={"spacing": 3.0, "axes": "ZYX"},
                     resolution=(2.0, 4.0))
    hyperstack = read_volume(tmp_path / "ij.tif")
    assert np.array_equal(hyperstack.data, data) and hyperstack.spacing == (3.0, 0.25, 0.5)


def test_images_and_volumes_are_told_apart_with_clear_messages(tmp_path):
    data = np.zeros((4, 5, 6), np.uint8)
    tifffile.imwrite(tmp_path / "stack.tif", data, photometric="minisblack")
    with pytest.raises(ImageReadError, match=r"read volumes with segscope\.io\.read_volume"):
        segscope.imread(tmp_path / "stack.tif")
    tifffile.imwrite(tmp_path / "plane.tif", data[0])
    with pytest.raises(ImageReadError, match="no Z axis"):
        read_volume(tmp_path / "plane.tif")
    tifffile.imwrite(tmp_path / "series.tif", np.zeros((2, 3, 4, 5), np.uint8), metadata={"axes": "TZYX"})
    with pytest.raises(ImageReadError, match="more than one volume"):
        read_volume(tmp_path / "series.tif")
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti file at all")
    with pytest.raises(ImageReadError, match=r"bad\.nii\.gz"):
        read_volume(tmp_path / "bad.nii.gz")
    with pytest.raises(ValueError, match="three positive numbers"):
        write_volume(tmp_path / "x.nii", data, spacing=(1.0, 0.0, 1.0))


def test_a_volume_over_the_size_limit_is_refused_before_reading(tmp_path):
    write_volume(tmp_path / "v.nii.gz", np.zeros((8, 8, 8), np.float32))
    with pytest.raises(ImageReadError, match=r"v\.nii\.gz"):
        read_volume(tmp_path / "v.nii.gz", max_bytes=1000)


def test_the_hippocampus_volumes_read_with_their_spacing(data_dir):
    folder = data_dir / "msd_hippocampus"
    image = read_volume(folder / "imagesTr" / "hippocampus_001.nii.gz")
    labels = read_volume(folder / "labelsTr" / "hippocampus_001.nii.gz")
    assert image.data.ndim == 3 and image.data.shape == labels.data.shape
    assert image.spacing == (1.0, 1.0, 1.0) and image.affine.shape == (4, 4)
    assert set(np.unique(labels.data).tolist()) <= {0, 1, 2}


def test_info_tells_volumes_channels_and_spacing_apart(tmp_path):
    write_volume(tmp_path / "v.nii.gz", np.zeros((4, 5, 6), np.int16), spacing=(3.0, 1.0, 0.5))
    write_volume(tmp_path / "c.ome.tif", np.zeros((4, 5, 6, 2), np.uint8), spacing=(2.0, 1.0, 1.0))
    segscope.imwrite(tmp_path / "rgb.png", np.zeros((5, 6, 3), np.uint8))
    volume = segscope.image_info(tmp_path / "v.nii.gz")
    assert volume.spacing == (3.0, 1.0, 0.5) and volume.channels == 1 and volume.shape == (4, 5, 6)
    assert "volume (Z, Y, X) (4, 5, 6), voxel spacing (z, y, x) (3, 1, 0.5)" in str(volume)
    channels = segscope.image_info(tmp_path / "c.ome.tif")
    assert channels.channels == 2 and channels.spacing == (2.0, 1.0, 1.0)
    assert "(Z, Y, X, C)" in str(channels)
    image = segscope.image_info(tmp_path / "rgb.png")
    assert image.spacing is None and image.channels == 3 and "image (H, W, C)" in str(image)


def test_the_command_line_segments_volumes_into_nifti_with_the_source_affine(tmp_path):
    from segscope.cli.main import main
    from segscope.io.datasets import read_annotations

    affine = np.array([[0, 0, -1.5, 10], [0, 2, 0, -3], [0.5, 0, 0, 7], [0, 0, 0, 1.0]])
    volume = np.zeros((6, 8, 10), np.uint8)
    volume[2:4, 3:6, 4:8] = 200
    (tmp_path / "in").mkdir()
    write_volume(tmp_path / "in" / "scan_1.nii.gz", volume, spacing=(0.5, 2.0, 1.5), affine=affine)
    folder = str(tmp_path / "in")
    assert main(["segment", folder, "-m", "otsu", "-o", str(tmp_path / "out"), "--overlay"]) == 0
    written = read_volume(tmp_path / "out" / "scan_1.nii.gz")
    assert np.array_equal(written.data, (volume > 0).astype(np.uint8))
    assert np.allclose(written.affine, affine) and written.spacing == (0.5, 2.0, 1.5)
    assert (tmp_path / "out" / "scan_1_overlay.png").is_file()
    task, entries = read_annotations(tmp_path / "out")
    assert task == "semantic" and list(entries) == ["scan_1"]
    # A method of 2-D images, or a 2-D format, is refused by name for that file.
    assert main(["segment", folder, "-m", "felzenszwalb", "-o", str(tmp_path / "f")]) == 1
    assert main(["segment", folder, "-m", "otsu", "--format", "png", "-o", str(tmp_path / "p")]) == 1


def test_zarr_volumes_round_trip_as_ome_zarr_and_plain_arrays_read_as_zyx(tmp_path):
    zarr = pytest.importorskip("zarr")
    data = np.arange(2 * 3 * 4 * 2, dtype=np.uint16).reshape(2, 3, 4, 2)
    write_volume(tmp_path / "a.zarr", data, spacing=(3.0, 1.0, 0.5))
    volume = read_volume(tmp_path / "a.zarr")
    assert np.array_equal(volume.data, data) and volume.spacing == (3.0, 1.0, 0.5)
    meta = dict(zarr.open_group(str(tmp_path / "a.zarr"), mode="r").attrs)["multiscales"][0]
    assert [a["name"] for a in meta["axes"]] == ["c", "z", "y", "x"]
    write_volume(tmp_path / "a.zarr", data[..., 0], spacing=(2.0, 1.0, 1.0))  # replaced whole
    assert read_volume(tmp_path / "a.zarr").data.shape == (2, 3, 4)
    zarr.save_array(str(tmp_path / "plain.zarr"), data[..., 1])
    plain = read_volume(tmp_path / "plain.zarr")
    assert np.array_equal(plain.data, data[..., 1]) and plain.spacing == (1.0, 1.0, 1.0)
    zarr.open_group(str(tmp_path / "bare.zarr"), mode="w").create_array("x", data=data[..., 0])
    with pytest.raises(ImageReadError, match="without OME-Zarr 'multiscales' metadata"):
        read_volume(tmp_path / "bare.zarr")
    with pytest.raises(ImageReadError, match=r"over the limit|exceeds|larger"):
        read_volume(tmp_path / "a.zarr", max_bytes=10)
