from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from skimage import data
from skimage.filters import threshold_otsu

import segscope


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
def test_otsu_equals_scikit_image(dtype):
    image = data.camera().astype(dtype)
    if dtype == np.uint16:
        image = image * 200
    seg = segscope.segment(image, "otsu")
    expected = threshold_otsu(image)
    assert seg.provenance.details["threshold"] == pytest.approx(float(expected))
    assert np.array_equal(seg.class_map(), (image > expected).astype(np.uint8))
    assert seg.class_names == ("background", "foreground")


def test_otsu_on_colour_uses_documented_luma():
    import cv2

    rgb = data.astronaut()
    seg = segscope.segment(rgb, "otsu")
    luma = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert np.array_equal(seg.class_map(), (luma > threshold_otsu(luma)).astype(np.uint8))
    chw = np.moveaxis(rgb, -1, 0)
    assert np.array_equal(segscope.segment(chw, "otsu", channel_axis=0).labels, seg.labels)


@pytest.mark.parametrize(
    ("image", "error", "message"),
    [
        (np.array([[np.nan, 1.0]]), ValueError, "NaN"),
        (np.zeros((0, 4), np.uint8), ValueError, "empty"),
        (np.zeros((3, 3), np.complex64), TypeError, "unsupported dtype"),
        (np.zeros((3, 3), np.float16), TypeError, "unsupported dtype"),
        (np.zeros((2, 3, 4, 5), np.uint8), ValueError, "expected"),
    ],
)
def test_bad_input_is_refused(image, error, message):
    with pytest.raises(error, match=message):
        segscope.segment(image, "otsu")


@settings(max_examples=40, deadline=None)
@given(image=hnp.arrays(np.uint8, st.tuples(st.integers(1, 20), st.integers(1, 20))))
def test_otsu_properties(image):
    seg = segscope.segment(image, "otsu")
    assert seg.shape == image.shape
    cm = seg.class_map()
    assert set(np.unique(cm)) <= {0, 1}
    # every foreground pixel is brighter than every background pixel
    if cm.any() and (~cm.astype(bool)).any():
        assert image[cm == 1].min() > image[cm == 0].max()
    # memory layout does not matter
    assert np.array_equal(segscope.segment(np.asfortranarray(image), "otsu").labels, seg.labels)
