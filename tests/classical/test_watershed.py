from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage import data, segmentation

import segscope


def test_touching_discs_become_two_regions():
    yy, xx = np.mgrid[:60, :90]
    mask = ((yy - 30) ** 2 + (xx - 28) ** 2 < 20**2) | ((yy - 30) ** 2 + (xx - 60) ** 2 < 18**2)
    assert ndimage.label(mask)[1] == 1  # one connected blob
    seg = segscope.segment(mask, "watershed", min_distance=10)
    assert seg.kind == "regions" and len(seg) == 2  # watershed is a regions method, whatever its input
    assert (seg.labels[30, 28] != seg.labels[30, 60]) and (seg.labels[~mask] == 0).all()


def test_given_markers_match_scikit_image():
    from skimage import filters

    image = data.coins()
    markers = np.zeros(image.shape, np.int32)
    markers[image < 30] = 1
    markers[image > 150] = 2
    seg = segscope.segment(image, "watershed", markers=markers, smoothing=0)
    expected = segmentation.watershed(filters.sobel(image.astype(float)), markers)
    assert np.array_equal(seg.labels, expected)


def test_marker_points_and_mask():
    image = data.coins()
    points = np.array([[10, 10], [150, 200]])
    mask = np.zeros(image.shape, bool)
    mask[:, :300] = True
    seg = segscope.segment(image, "watershed", markers=points, mask=mask)
    assert set(np.unique(seg.labels)) == {0, 1, 2}
    assert (seg.labels[:, 300:] == 0).all()
    assert seg.labels[10, 10] == 1 and seg.labels[150, 200] == 2
    with pytest.raises(ValueError, match="outside the image"):
        segscope.segment(image, "watershed", markers=np.array([[1000, 1]]))


def test_automatic_markers_partition_the_image():
    seg = segscope.segment(data.astronaut(), "watershed")
    assert seg.kind == "regions" and len(seg) > 5
    assert (seg.labels > 0).all()
    assert seg.provenance.details["markers"] == len(seg)


def test_watershed_instances_split_touching_objects_of_either_polarity():
    import segscope

    yy, xx = np.mgrid[:40, :80]
    blobs = ((yy - 20) ** 2 + (xx - 20) ** 2 < 150) | ((yy - 20) ** 2 + (xx - 43) ** 2 < 150)
    bright = np.where(blobs, 200, 30).astype(np.uint8)
    for image in (bright, 255 - bright):  # bright nuclei (fluorescence) or dark ones (stained)
        seg = segscope.segment(image, "watershed_instances")
        assert seg.kind == "instance" and len(seg) == 2
        assert (seg.labels > 0).sum() == blobs.sum()
    assert segscope.segment(bright, "watershed_instances", foreground="dark").provenance.details[
        "foreground"] == "dark"
    with pytest.raises(ValueError, match="foreground"):
        segscope.segment(bright, "watershed_instances", foreground="left")
