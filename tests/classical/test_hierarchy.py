"""Hierarchies of regions and their ultrametric contour maps (BSDS's ucm2 layout)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import segscope
from segscope.classical import image_hierarchy
from segscope.hierarchy import region_hierarchy
from segscope.metrics import sweep_ucm


def _stripes() -> np.ndarray:
    boundary = np.zeros((6, 12))
    boundary[:, 4] = 0.8  # a strong boundary between the first and second stripes
    boundary[:, 8] = 0.3  # a weak one between the second and third
    return boundary


def test_cuts_by_level_and_by_count_known_answer():
    hierarchy = region_hierarchy(_stripes())
    assert hierarchy.finest == 3 and hierarchy.top == pytest.approx(0.8)
    assert [int(hierarchy.cut(level=t).max()) for t in (0.0, 0.3, 0.5, 0.8)] == [3, 2, 2, 1]
    two = hierarchy.cut(regions=2)
    assert len(np.unique(two[:, :4])) == 1 and len(np.unique(two[:, 9:])) == 1
    assert two[0, 0] != two[0, 11] and two[0, 5] == two[0, 11]  # the weak boundary went first
    assert hierarchy.cut(regions=99).max() == 3  # no finer than the finest level
    ucm2 = hierarchy.ucm2()
    assert ucm2.shape == (13, 25)
    assert np.array_equal(hierarchy.boundaries(), ucm2[2::2, 2::2])
    assert set(np.round(np.unique(ucm2), 6)) == {0.0, 0.3, 0.8}
    with pytest.raises(ValueError, match="not both or neither"):
        hierarchy.cut(level=0.1, regions=2)
    with pytest.raises(ValueError, match="regions must be at least 1"):
        hierarchy.cut(regions=0)
    with pytest.raises(ValueError, match="finite values of at least 0"):
        region_hierarchy(-_stripes())
    flat = region_hierarchy(np.zeros((4, 5)))
    assert flat.finest == 1 and flat.cut(regions=3).max() == 1 and not flat.ucm2().any()


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**16), st.floats(0.05, 0.9))
def test_cuts_are_nested_and_equal_the_benchmarks_reading_of_the_map(seed, level):
    rng = np.random.default_rng(seed)
    boundary = ndimage.gaussian_filter(rng.random((30, 40)), 1.5)
    boundary /= boundary.max()
    hierarchy = region_hierarchy(boundary)
    fine, coarse = hierarchy.cut(level=level / 2), hierarchy.cut(level=level)
    # Nested: every region of the finer cut lies inside one region of the coarser.
    pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == pairs.shape[1]
    # The BSDS benchmark reads a ucm2 as the 8-connected components of ucm2 <= t at the pixels.
    reading, _ = ndimage.label(hierarchy.ucm2() <= level, structure=np.ones((3, 3), bool))
    pairs = np.unique(np.stack([coarse.ravel(), reading[1::2, 1::2].ravel()]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
    assert len(hierarchy.sweep(thresholds=5)) == 5


def test_the_ucm_method_and_its_sweep_on_a_photograph():
    from skimage import data

    image = data.astronaut()[::4, ::4]
    coarse, fine = segscope.segment(image, "ucm", level=0.3), segscope.segment(image, "ucm", level=0.05)
    assert coarse.kind == "regions" and 1 < len(coarse) < len(fine)
    assert fine.provenance.details["finest"] >= len(fine)
    steps = sweep_ucm(image_hierarchy(image).ucm2(), thresholds=9)
    counts = [int(step.labels.max()) for step in steps]
    assert counts == sorted(counts, reverse=True)  # higher levels, fewer regions


def test_ucm2_and_soft_boundary_files_round_trip(tmp_path):
    from segscope.io import read_boundary_png, read_ucm2, write_boundary_png, write_ucm2

    ucm2 = region_hierarchy(_stripes()).ucm2()
    write_ucm2(tmp_path / "a.mat", ucm2)
    assert np.array_equal(read_ucm2(tmp_path / "a.mat"), ucm2)
    soft = ucm2[2::2, 2::2]
    write_boundary_png(tmp_path / "a.png", soft)
    assert np.allclose(read_boundary_png(tmp_path / "a.png"), soft, atol=1 / 65535)
    from scipy.io import savemat

    savemat(tmp_path / "other.mat", {"ucm": ucm2})
    with pytest.raises(ValueError, match=r"other\.mat: not a ucm2 \.mat file \(no ucm2 variable"):
        read_ucm2(tmp_path / "other.mat")
    savemat(tmp_path / "even.mat", {"ucm2": np.zeros((4, 5))})
    with pytest.raises(ValueError, match="odd sides"):
        read_ucm2(tmp_path / "even.mat")
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        write_boundary_png(tmp_path / "b.png", soft * 2)
