"""Learned region merging: its hierarchy, its training samples and its fitting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from segscope.hierarchy import region_hierarchy
from segscope.merging import (
    MERGE_FEATURES,
    MergeModel,
    MergeSamples,
    fit_merge_model,
    merge_samples,
    merged_hierarchy,
)


def _only(**weights: float) -> MergeModel:
    return MergeModel.from_decoding({f"merge_{k}": v for k, v in weights.items()})


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_merging_by_boundary_alone_is_the_mean_boundary_hierarchy(seed):
    # A model that weighs only the mean boundary strength orders merges as average linkage does:
    # every cut by number of regions is the partition higra's hierarchy gives.
    rng = np.random.default_rng(seed)
    boundary = ndimage.gaussian_filter(rng.random((40, 50)), 2)
    boundary = (boundary - boundary.min()) / (boundary.max() - boundary.min())
    image = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    ours = merged_hierarchy(boundary, image, _only(boundary=5.0), min_size=0)
    reference = region_hierarchy(boundary)
    assert ours.finest == reference.finest
    for count in range(1, reference.finest + 1):
        assert _same_partition(ours.cut(regions=count), reference.cut(regions=count)), count


def test_the_hierarchy_is_nested_and_its_levels_rise():
    rng = np.random.default_rng(1)
    boundary = ndimage.gaussian_filter(rng.random((48, 64)), 2.5)
    boundary /= boundary.max()
    image = rng.integers(0, 256, (48, 64, 3)).astype(np.uint8)
    weights = dict(zip(MERGE_FEATURES, (-2.0, 3.0, 1.0, 2.0, 1.0, 1.0, 0.5, -0.2, 0.3, 0.5), strict=True))
    hierarchy = merged_hierarchy(boundary, image, _only(**weights), min_size=20)
    parents = np.asarray(hierarchy.tree.parents())
    assert np.all(hierarchy.altitudes[parents] >= hierarchy.altitudes)
    assert 0 < hierarchy.top < 1  # levels are probabilities
    levels = np.linspace(0, hierarchy.top, 7)
    cuts = [hierarchy.cut(level=t) for t in levels]
    for fine, coarse in itertools.pairwise(cuts):
        pairs = np.unique(np.stack([fine.ravel(), coarse.ravel()]), axis=1)
        assert len(np.unique(pairs[0])) == pairs.shape[1]  # each finer region inside one coarser
    assert cuts[-1].max() == 1 and cuts[0].max() == hierarchy.finest
    assert np.bincount(cuts[0].ravel())[1:].min() >= 20  # min_size holds from the finest cut


def _stripes() -> tuple[np.ndarray, np.ndarray]:
    """Three vertical stripes, black, grey and cyan, with equal boundaries between them."""
    image = np.zeros((20, 30, 3), np.uint8)
    image[:, 10:] = 200
    image[:, 20:, 0] = 0
    boundary = np.zeros((20, 30))
    boundary[:, [9, 19]] = 0.5
    return image, boundary


def test_colour_decides_when_the_boundaries_are_equal():
    image, boundary = _stripes()
    hierarchy = merged_hierarchy(boundary, image, _only(bias=-1.0, colour_distance=2.0), min_size=0)
    two = hierarchy.cut(regions=2)
    assert two[0, 15] == two[0, 25] != two[0, 5]  # grey and cyan are closer than grey and black
    # A grey image gives the same regions, its colour as three equal channels.
    grey = merged_hierarchy(boundary, image[..., 1], _only(bias=-1.0, colour_distance=2.0), min_size=0)
    assert grey.finest == 3


def test_merge_samples_count_what_the_annotators_part():
    image, boundary = _stripes()
    first = np.ones((20, 30), int)
    first[:, 10:] = 2  # black | grey and cyan
    second = np.ones((20, 30), int)  # one segment
    samples = merge_samples(boundary, image, [first, second], model=_only(bias=-1.0, colour_distance=2.0),
                            min_size=0)
    assert samples.features.shape == (2, len(MERGE_FEATURES))
    # Grey with cyan first: both annotators keep them together. Then black with the rest: the first
    # parts every pair, the second none.
    assert samples.apart.tolist() == pytest.approx([0.0, 0.5])
    areas = np.bincount(ndimage.label(boundary < 0.5)[0].ravel())[1:]
    assert samples.weight[0] == pytest.approx(areas[1] * areas[2] / 600**2, rel=0.2)
    assert samples.features[:, 0].tolist() == [1.0, 1.0] and samples.features[0, 1] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="segmentation is"):
        merge_samples(boundary, image, [first[:10]], min_size=0)


def test_fitting_recovers_a_known_model():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1.5, len(MERGE_FEATURES))
    features = np.column_stack([np.ones(4000), rng.normal(0, 1, (4000, len(MERGE_FEATURES) - 1))])
    apart = 1 / (1 + np.exp(-(features @ truth)))  # the expected share itself: no noise
    model = fit_merge_model(MergeSamples(features, apart, rng.uniform(0.1, 1, 4000)), ridge=0)
    assert np.allclose(model.weights, truth, atol=1e-4)
    with pytest.raises(ValueError, match="too few"):
        fit_merge_model(MergeSamples(features[:3], apart[:3], np.ones(3)))


def test_a_merge_model_is_checked():
    with pytest.raises(ValueError, match="10 weights"):
        MergeModel((1.0, 2.0))
    with pytest.raises(ValueError, match="finite"):
        MergeModel((np.nan,) * len(MERGE_FEATURES))
    with pytest.raises(ValueError, match="unknown merge features"):
        MergeModel.from_decoding({"merge_colour": 1.0})
    model = _only(bias=-1.0, boundary=3.0)
    assert MergeModel.from_decoding(model.to_decoding()) == model
    flat = merged_hierarchy(np.zeros((10, 12)), np.zeros((10, 12, 3), np.uint8), model)
    assert flat.finest == 1 and flat.cut(level=0.5).max() == 1  # one region: nothing to merge
    image, boundary = _stripes()
    with pytest.raises(ValueError, match="boundary map"):
        merged_hierarchy(boundary[:, :20], image, model)
    with pytest.raises(ValueError, match="RGB or grey"):
        merged_hierarchy(boundary, image[..., :2], model)
    with pytest.raises(ValueError, match="boundary map"):
        merge_samples(boundary, image[:10], [np.ones((20, 30), int)])
