"""Imaging modality from the pixels: fluorescence, stained histology, bright-field."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segscope import imread
from segscope.checkpoint import percentile_rescale
from segscope.microscopy import MODALITIES, imaging_modality

DSB = Path(__file__).resolve().parents[2] / "shared" / "data" / "dsb2018" / "train" / "images"


def _nuclei(rng: np.random.Generator) -> np.ndarray:
    yy, xx = np.mgrid[:96, :96]
    mask = np.zeros((96, 96), bool)
    for cy, cx in rng.integers(10, 86, (6, 2)):
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < 64
    return mask


def test_each_kind_of_picture_is_told_apart():
    rng = np.random.default_rng(0)
    nuclei = _nuclei(rng)
    noise = rng.normal(0, 4, nuclei.shape)
    fluorescence = np.clip(20 + 180 * nuclei + noise, 0, 255).astype(np.uint8)
    brightfield = np.clip(230 - 120 * nuclei + noise, 0, 255).astype(np.uint8)
    stained = np.stack([np.clip(235 - 90 * nuclei + noise, 0, 255),  # H&E: purple nuclei, pink tissue
                        np.clip(190 - 140 * nuclei + noise, 0, 255),
                        np.clip(215 - 40 * nuclei + noise, 0, 255)], axis=2).astype(np.uint8)
    assert imaging_modality(fluorescence) == "fluorescence"
    assert imaging_modality(np.repeat(fluorescence[..., None], 4, axis=2)) == "fluorescence"  # RGBA grey
    assert imaging_modality(fluorescence.astype(np.uint16) * 257) == "fluorescence"
    assert imaging_modality(brightfield) == "brightfield"
    assert imaging_modality(brightfield / 255.0) == "brightfield"
    assert imaging_modality(stained) == "histology"
    with pytest.raises(ValueError, match=r"expected \(H, W\) or \(H, W, C\)"):
        imaging_modality(np.zeros((2, 2, 2, 2)))


@pytest.mark.skipif(not DSB.is_dir(), reason="needs ../shared/data/dsb2018 (the shared datasets)")
def test_dsb2018_splits_into_its_three_kinds():
    kinds = Counter(imaging_modality(imread(path)) for path in sorted(DSB.glob("*.png")))
    assert set(kinds) == set(MODALITIES)
    # Most DSB2018 training images are fluorescence; stained tissue is the next largest group.
    assert kinds["fluorescence"] > kinds["histology"] > kinds["brightfield"] > 5


@settings(max_examples=40, deadline=None)
@given(st.sampled_from([np.uint8, np.uint16, np.float32]), st.integers(1, 400), st.integers(1, 3),
       st.tuples(st.floats(0, 50), st.floats(50, 100)), st.integers(0, 2**16))
def test_percentile_mapping_matches_numpy_for_every_dtype(dtype, pixels, channels, percentiles, seed):
    # 8- and 16-bit images take their percentiles from a histogram, others from numpy: the same
    # values either way (linear interpolation between order statistics), flat channels included.
    rng = np.random.default_rng(seed)
    top = 255 if dtype == np.uint8 else 65535 if dtype == np.uint16 else 1.0
    image = (rng.random((pixels, 1, channels)) ** 3 * top).astype(dtype)
    if channels > 1:
        image[..., 1] = image[0, 0, 1]  # a flat channel becomes 0
    low, high = np.percentile(image.reshape(-1, channels).astype(np.float64), percentiles, axis=0)
    expected = (image - low) / np.where(high > low, high - low, 1.0)
    np.testing.assert_allclose(percentile_rescale(image, percentiles), expected, rtol=1e-5, atol=1e-5)
