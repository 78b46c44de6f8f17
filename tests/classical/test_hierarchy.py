"""Hierarchies of regions and their ultrametric contour maps (BSDS's ucm2 layout)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

import segscope
from segscope.classical import image_hierarchy
from segscope.hierarchy import boundary_orientation, region_hierarchy
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


def test_boundary_orientation_is_the_normal_of_lines_at_known_angles():
    line = np.zeros((15, 15))
    line[7] = 1  # a row: its normal runs along the rows' axis
    assert boundary_orientation(line)[7, 3:12] == pytest.approx(0.0, abs=1e-9)
    assert boundary_orientation(line.T)[3:12, 7] == pytest.approx(np.pi / 2)
    diagonal = np.eye(15)  # down and right: its normal is down and left
    assert boundary_orientation(diagonal)[7, 7] == pytest.approx(3 * np.pi / 4)
    assert boundary_orientation(np.fliplr(diagonal))[7, 7] == pytest.approx(np.pi / 4)
    with pytest.raises(ValueError, match="sigma must be positive"):
        boundary_orientation(line, sigma=0)


def test_the_oriented_watershed_weakens_arcs_that_cross_a_boundary():
    # A strong vertical boundary and a weak horizontal one crossing it: the horizontal arcs take
    # strength from the vertical ridge near the crossing, which orienting removes (gPb-owt-ucm).
    r, c = np.mgrid[:31, :31]
    boundary = np.exp(-((c - 15) ** 2) / 8.0) + 0.3 * np.exp(-((r - 15) ** 2) / 2.0)
    plain = region_hierarchy(boundary)
    oriented = region_hierarchy(boundary, orientation=boundary_orientation(boundary))
    assert plain.finest == oriented.finest == 4
    weak_plain, weak_oriented = plain.altitudes[4:6], oriented.altitudes[4:6]
    assert weak_plain.min() > 0.4 and weak_oriented.max() < 0.3  # below the horizontal ridge itself
    assert oriented.top == pytest.approx(plain.top, rel=0.01)  # the vertical arc follows its boundary
    for level in (0.1, 0.35, 0.6):  # at each level, cuts that only the orientation separates
        assert oriented.cut(level=level).max() <= plain.cut(level=level).max()
    assert oriented.cut(level=0.35).max() == 2 and plain.cut(level=0.35).max() == 4
    with pytest.raises(ValueError, match="orientation has shape"):
        region_hierarchy(boundary, orientation=np.zeros((3, 3)))


def test_regions_under_min_size_never_appear_in_a_cut():
    boundary = _stripes()
    boundary[1:4, 0:3] = 0.0  # a small basin inside the first stripe, ringed by a strong boundary
    boundary[0, 0:4] = boundary[4, 0:4] = boundary[1:4, 3] = 0.9
    every = region_hierarchy(boundary)
    assert every.finest == 4 and every.cut(level=0.5).max() == 3  # the ring outlasts the weak boundary
    small = region_hierarchy(boundary, min_size=10)  # the basin has 9 pixels
    assert small.finest == 3
    for level in (0.0, 0.2, 0.5, 0.85):
        sizes = np.bincount(small.cut(level=level).ravel())[1:]
        assert sizes.min() >= 10
    assert small.cut(level=0.5).max() == 2 and small.ucm2().shape == every.ucm2().shape
    with pytest.raises(ValueError, match="min_size is a number of pixels"):
        region_hierarchy(boundary, min_size=-1)


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
    # How an edge network is run means nothing to a gradient: refused, not ignored.
    for option in ({"scales": (0.5, 1.0)}, {"flip": True}, {"merging": True}):
        with pytest.raises(ValueError, match=r"operator='learned' only"):
            segscope.segment(image, "ucm", **option)


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
