"""Classical methods on volumes: each equal to scikit-image's (or SciPy's) n-dimensional result."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.filters as skf
from scipy import ndimage
from skimage import measure, segmentation

import segscope
from segscope.io.volumes import Volume
from segscope.registry import get_method, list_methods

SPACING = (2.0, 1.0, 1.0)


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    """A (12, 20, 22) uint8 volume: two bright ellipsoids (flattened in z: voxels 2x deeper) that
    touch at a neck, on a noisy background."""
    rng = np.random.default_rng(0)
    z, y, x = np.indices((12, 20, 22))
    first = ((z - 6) * 2) ** 2 + (y - 9) ** 2 + (x - 6) ** 2 < 30
    second = ((z - 6) * 2) ** 2 + (y - 10) ** 2 + (x - 14) ** 2 < 30
    return np.clip((first | second) * 140 + rng.normal(50, 12, z.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["otsu", "li", "yen", "triangle", "isodata", "mean", "minimum"])
def test_histogram_thresholds_of_a_volume_equal_scikit_image(blobs, name):
    result = segscope.segment(Volume(blobs, SPACING), name)
    if name == "triangle":  # 8-bit images follow OpenCV's triangle (its ties and its final -1)
        import cv2

        plane = blobs.reshape(-1, blobs.shape[-1])
        expected = cv2.threshold(plane, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_TRIANGLE)[1].reshape(blobs.shape)
    else:
        expected = blobs > getattr(skf, f"threshold_{name}")(blobs)
    assert result.ndim == 3 and result.spacing == SPACING
    assert np.array_equal(result.class_map(), expected)


def test_multi_otsu_of_a_volume_equals_scikit_image(blobs):
    result = segscope.segment(Volume(blobs, SPACING), "multi_otsu", classes=3)
    thresholds = skf.threshold_multiotsu(blobs, classes=3)
    assert np.array_equal(result.class_map(), np.digitize(blobs, thresholds, right=True))


@pytest.mark.parametrize("method", ["mean", "gaussian"])
def test_adaptive_thresholds_use_3d_windows_as_scikit_image(blobs, method):
    result = segscope.segment(Volume(blobs, SPACING), f"adaptive_{method}", block_size=5, offset=-2.0)
    local = skf.threshold_local(blobs.astype(np.float64), 5, method=method, offset=-2.0, mode="reflect")
    # Integer volumes count their box sums exactly: voxels whose value ties with scikit-image's
    # float local mean (within its rounding) may fall either side.
    clear = np.abs(blobs - local) > 1e-9
    assert np.array_equal(result.class_map()[clear], (blobs > local)[clear])
    assert clear.mean() > 0.9


def test_niblack_and_sauvola_use_3d_windows_as_scikit_image(blobs):
    volume = Volume(blobs, SPACING)
    niblack = segscope.segment(volume, "niblack", window_size=5, k=0.1)
    assert np.array_equal(niblack.class_map(), blobs > skf.threshold_niblack(blobs, window_size=5, k=0.1))
    sauvola = segscope.segment(volume, "sauvola", window_size=5)
    assert np.array_equal(sauvola.class_map(), blobs > skf.threshold_sauvola(blobs, window_size=5, r=127.5))


@pytest.mark.parametrize(("connectivity", "neighbours"), [(1, 6), (2, 18), (3, 26)])
def test_connected_components_in_3d_follow_the_connectivity(connectivity, neighbours):
    mask = np.zeros((3, 3, 3), bool)
    mask[1, 1, 1] = True
    mask[0, 1, 1] = True  # a face neighbour
    mask[2, 2, 1] = True  # an edge neighbour of the centre
    mask[2, 0, 0] = True  # a corner neighbour of the centre, and of nothing else
    result = segscope.segment(Volume(mask, SPACING), "connected_components", connectivity=connectivity)
    expected = measure.label(mask, connectivity=connectivity)
    assert len(result) == expected.max() == {6: 3, 18: 2, 26: 1}[neighbours]
    assert np.array_equal(result.labels > 0, mask)
    with pytest.raises(ValueError, match="connectivity must be 1 to 3"):
        segscope.segment(Volume(mask, SPACING), "connected_components", connectivity=4)


def test_connected_components_of_a_grey_volume_threshold_it_with_otsu(blobs):
    result = segscope.segment(Volume(blobs, SPACING), "connected_components", connectivity=1, min_size=5)
    labels = measure.label(blobs > skf.threshold_otsu(blobs), connectivity=1)
    sizes = np.bincount(labels.ravel())
    assert len(result) == int((sizes[1:] >= 5).sum())


def test_watershed_with_markers_floods_the_3d_gradient_as_scikit_image(blobs):
    markers = np.zeros(blobs.shape, np.int32)
    markers[6, 9, 6], markers[6, 10, 14], markers[0, 0, 0] = 1, 2, 3
    result = segscope.segment(Volume(blobs, SPACING), "watershed", markers=markers, smoothing=0.0)
    expected = segmentation.watershed(skf.sobel(blobs.astype(np.float64)), markers)
    assert np.array_equal(result.labels, expected)


def test_watershed_of_a_mask_measures_distance_with_the_spacing(blobs):
    mask = blobs > skf.threshold_otsu(blobs)
    result = segscope.segment(Volume(mask, SPACING), "watershed", min_distance=3)
    distance = ndimage.distance_transform_edt(mask, sampling=SPACING)
    from skimage.feature import peak_local_max

    peaks = peak_local_max(distance, min_distance=3, labels=mask, exclude_border=False)
    seeds = np.zeros(mask.shape, np.int32)
    seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    expected = segmentation.watershed(-distance, seeds, mask=mask)
    assert np.array_equal(result.labels > 0, expected > 0)
    assert len(result) == len(np.unique(expected[expected > 0]))


def test_watershed_instances_split_touching_ellipsoids_in_physical_units(blobs):
    result = segscope.segment(Volume(blobs, SPACING), "watershed_instances", h=0.5, min_size=10)
    assert result.kind == "instance" and result.spacing == SPACING
    assert len(result) == 2
    # Each instance holds one ellipsoid's centre.
    centres = {int(result.labels[6, 9, 6]), int(result.labels[6, 10, 14])}
    assert len(centres) == 2 and 0 not in centres


def test_region_growing_grows_face_connected_regions_in_a_volume():
    volume = np.zeros((4, 6, 8), np.uint8)
    volume[:, :, 4:] = 200
    result = segscope.segment(
        Volume(volume, SPACING), "region_growing", seeds=np.array([[0, 0, 0], [3, 5, 7]])
    )
    assert np.array_equal(result.labels, np.where(volume > 0, 2, 1))
    with pytest.raises(ValueError, match="outside the volume"):
        segscope.segment(Volume(volume, SPACING), "region_growing", seeds=np.array([[4, 0, 0]]))


def test_slic_supervoxels_equal_scikit_image_with_spacing(blobs):
    result = segscope.segment(Volume(blobs, SPACING), "slic", n_segments=20, compactness=10.0, sigma=0.5)
    expected = segmentation.slic(
        blobs,
        n_segments=20,
        compactness=0.1,
        sigma=0.5,
        start_label=1,
        spacing=np.asarray(SPACING),
        channel_axis=None,
    )
    assert np.array_equal(result.labels, expected)


def test_kmeans_clusters_voxel_values():
    volume = np.repeat(np.array([0, 100, 250], np.uint8), 20).reshape(3, 4, 5)
    result = segscope.segment(Volume(volume, SPACING), "kmeans", k=3)
    assert np.array_equal(result.class_map(), np.repeat([0, 1, 2], 20).reshape(3, 4, 5))


def test_random_walker_equals_scikit_image_in_2d_and_3d(blobs):
    markers = np.zeros(blobs.shape, np.int32)
    markers[6, 9, 6], markers[0, 0, 0] = 2, 1
    markers[:, :, 21] = -1
    result = segscope.segment(Volume(blobs, SPACING), "random_walker", markers=markers)
    expected = segmentation.random_walker(
        blobs.astype(np.float64), markers, beta=130, mode="cg_j", tol=1e-3, spacing=np.asarray(SPACING)
    )
    assert np.array_equal(result.class_map(void=-1), np.where(expected > 0, expected - 1, -1))
    plane = blobs[6]
    seeds = markers[6].copy()
    seeds[0, 0] = 1
    flat = segscope.segment(plane, "random_walker", markers=seeds)
    reference = segmentation.random_walker(plane.astype(np.float64), seeds, beta=130, mode="cg_j", tol=1e-3)
    assert np.array_equal(flat.class_map(void=-1), np.where(reference > 0, reference - 1, -1))
    assert flat.probabilities.shape == (2, *plane.shape)


def test_random_walker_seeds_itself_at_the_extremes(blobs):
    result = segscope.segment(Volume(blobs, SPACING), "random_walker")
    assert result.class_names == ("background", "foreground")
    assert (result.class_map() == (blobs > skf.threshold_otsu(blobs))).mean() > 0.97


def test_methods_that_do_not_take_volumes_refuse_them_by_their_declaration(blobs):
    able = {m.name for m in list_methods() if m.takes_volumes}
    assert {
        "otsu",
        "watershed",
        "watershed_instances",
        "region_growing",
        "connected_components",
        "slic",
        "kmeans",
        "random_walker",
        "adaptive_mean",
        "niblack",
        "sauvola",
    } <= able
    assert not get_method("felzenszwalb").takes_volumes
    with pytest.raises(ValueError, match="segments 2-D images, not volumes; methods that take volumes: "):
        segscope.segment(Volume(blobs, SPACING), "felzenszwalb")


def test_a_spacing_must_be_three_positive_numbers(blobs):
    with pytest.raises(ValueError, match="three positive numbers"):
        segscope.segment(blobs, "otsu", spacing=(1.0, 0.0, 1.0))
    with pytest.raises(ValueError, match=r"\(Z, Y, X\)"):
        segscope.segment(blobs[0], "otsu", spacing=(1.0, 1.0, 1.0))


def test_a_tiled_volume_equals_the_untiled_result(tmp_path, blobs):
    pytest.importorskip("zarr")
    from segscope.io import read_volume, write_volume
    from segscope.tiled import segment_volume_tiled

    write_volume(tmp_path / "v.zarr", blobs.astype(np.float32) / 7, spacing=SPACING)
    volume = read_volume(tmp_path / "v.zarr")
    for method, params in (
        ("otsu", {}),
        ("multi_otsu", {"classes": 3}),
        ("adaptive_gaussian", {"block_size": 5}),
        ("niblack", {"window_size": 5}),
    ):
        tiled = segment_volume_tiled(
            tmp_path / "v.zarr", method, tmp_path / f"{method}.zarr", params=params, block=5
        )
        assert tiled.blocks == 3 * 4 * 5 and tiled.shape == blobs.shape
        assert np.array_equal(tiled.read(), segscope.segment(volume, method, **params).class_map()), method
    write_volume(tmp_path / "u.nii.gz", blobs, spacing=SPACING)
    tiled = segment_volume_tiled(
        tmp_path / "u.nii.gz",
        "adaptive_mean",
        tmp_path / "m.zarr",
        params={"block_size": 5, "offset": 0.37},
        block=6,
    )
    whole = segscope.segment(Volume(blobs, SPACING), "adaptive_mean", block_size=5, offset=0.37)
    assert np.array_equal(tiled.read(), whole.class_map())
    with pytest.raises(ValueError, match="smaller than the 2 voxels adaptive_mean's block_size reaches"):
        segment_volume_tiled(
            tmp_path / "u.nii.gz", "adaptive_mean", tmp_path / "x.zarr", params={"block_size": 5}, overlap=1
        )
    with pytest.raises(ValueError, match="tiled for thresholds and local windows"):
        segment_volume_tiled(tmp_path / "u.nii.gz", "watershed", tmp_path / "w.zarr")
    with pytest.raises(ValueError, match="from every voxel"):
        segment_volume_tiled(tmp_path / "v.zarr", "li", tmp_path / "l.zarr")


def test_the_command_line_tiles_an_ome_zarr_volume_in_blocks(tmp_path, blobs, capsys):
    pytest.importorskip("zarr")
    from segscope.cli.main import main
    from segscope.io import write_volume

    write_volume(tmp_path / "v.zarr", blobs, spacing=SPACING)
    assert main(["segment", str(tmp_path / "v.zarr"), "-m", "otsu", "--tile", "8", "-o",
                 str(tmp_path / "out.zarr"), "--workers", "1"]) == 0
    assert "12x20x22 voxels in 18 blocks" in capsys.readouterr().out
    import zarr

    labels = np.asarray(zarr.open_group(str(tmp_path / "out.zarr"), mode="r")["labels"][...])
    assert np.array_equal(labels, blobs > skf.threshold_otsu(blobs))
