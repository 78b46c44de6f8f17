"""panoptic.fuse on hand-built cases, and on truth that must come back unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segscope
from segscope import Segmentation
from segscope.datasets import SHAPES_THINGS, synthetic_shapes
from segscope.panoptic import fuse


def _semantic(class_map):
    return Segmentation.from_class_map(np.asarray(class_map), num_classes=3)


def _box(shape, r0, r1, c0, c1):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_overlaps_go_to_the_higher_score_and_heavily_covered_instances_are_dropped():
    shape = (10, 10)
    semantic = _semantic(np.zeros(shape, int))
    masks = np.stack([
        _box(shape, 0, 6, 0, 6),   # score 0.6: 25 % of it lies under the 0.9 instance, kept
        _box(shape, 3, 9, 3, 9),   # score 0.9: placed first, whole
        _box(shape, 4, 8, 4, 8),   # score 0.8: entirely under the 0.9 instance, dropped
    ])
    instances = Segmentation.from_masks(masks, categories=[2, 2, 2], scores=[0.6, 0.9, 0.8])
    pan = fuse(semantic, instances, things=[2], min_stuff_area=1)
    things = pan.is_thing
    assert things.sum() == 2
    labels = pan.labels
    best = labels[5, 5]
    assert (labels[3:9, 3:9] == best).all()
    other = labels[0, 0]
    assert other != best and (labels == other).sum() == 36 - 9
    assert pan.scores[pan.ids == best][0] == pytest.approx(0.9)


def test_overlap_threshold_and_score_threshold_decide_who_stays():
    shape = (10, 10)
    semantic = _semantic(np.zeros(shape, int))
    masks = np.stack([_box(shape, 0, 4, 0, 10), _box(shape, 2, 6, 0, 10), _box(shape, 8, 10, 0, 10)])
    instances = Segmentation.from_masks(masks, categories=[2, 2, 2], scores=[0.9, 0.7, 0.3])
    # The second instance lies half under the first: kept at 0.5, dropped at 0.4.
    assert fuse(semantic, instances, things=[2], min_stuff_area=1).is_thing.sum() == 2
    assert fuse(semantic, instances, things=[2], min_stuff_area=1, overlap_threshold=0.4).is_thing.sum() == 1
    # The third scores 0.3: in only when the score threshold allows it.
    assert fuse(semantic, instances, things=[2], min_stuff_area=1, score_threshold=0.2).is_thing.sum() == 3


def test_stuff_below_the_area_limit_is_dropped_and_unclaimed_thing_pixels_are_void():
    class_map = np.zeros((10, 10), int)
    class_map[:, 7:] = 1          # 30 pixels of stuff class 1
    class_map[0:2, 0:2] = 2       # thing-class pixels that no instance claims
    instances = Segmentation.from_masks(np.zeros((0, 10, 10), bool), categories=[])
    pan = fuse(_semantic(class_map), instances, things=[2], min_stuff_area=31)
    assert sorted(pan.categories.tolist()) == [0]
    assert (pan.labels[:, 7:] == 0).all() and (pan.labels[0:2, 0:2] == 0).all()
    pan = fuse(_semantic(class_map), instances, things=[2], min_stuff_area=30)
    assert sorted(pan.categories.tolist()) == [0, 1]
    assert not pan.is_thing.any() and np.isnan(pan.scores).all()


def test_unscored_instances_are_kept_in_their_own_order():
    shape = (6, 6)
    masks = np.stack([_box(shape, 0, 4, 0, 4), _box(shape, 2, 6, 2, 6)])
    instances = Segmentation.from_masks(masks, categories=[2, 2])
    pan = fuse(_semantic(np.zeros(shape, int)), instances, things=[2], min_stuff_area=1)
    assert pan.is_thing.sum() == 2
    assert pan.labels[3, 3] == pan.labels[0, 0]  # the first one placed keeps the shared pixels


def test_fusing_the_truth_gives_back_the_panoptic_truth():
    for sample in synthetic_shapes(4, 64, seed=9):
        pan = fuse(sample.semantic, sample.instances, things=SHAPES_THINGS, min_stuff_area=1)
        assert segscope.evaluate(pan, sample.panoptic, task="panoptic")["pq"] == pytest.approx(1.0)
        assert (pan.class_map() == sample.panoptic.class_map()).all()


def test_inputs_of_the_wrong_kind_or_shape_are_refused():
    sample = synthetic_shapes(1, 32, seed=0)[0]
    with pytest.raises(TypeError, match="instance Segmentation"):
        fuse(sample.semantic, sample.semantic, things=[2])
    with pytest.raises(TypeError, match="semantic Segmentation"):
        fuse(sample.instances, sample.instances, things=[2])
    other = synthetic_shapes(1, 40, seed=0)[0]
    with pytest.raises(ValueError, match="semantic result is"):
        fuse(sample.semantic, other.instances, things=[2])


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    count=st.integers(0, 6),
    overlap_threshold=st.floats(0.0, 1.0),
    score_threshold=st.floats(0.0, 1.0),
    min_stuff_area=st.integers(0, 60),
)
def test_fused_segments_obey_every_rule(seed, count, overlap_threshold, score_threshold, min_stuff_area):
    rng = np.random.default_rng(seed)
    shape = (16, 20)
    class_map = rng.integers(0, 3, shape)
    masks = np.zeros((count, *shape), bool)
    for k in range(count):
        r, c = rng.integers(0, 12), rng.integers(0, 16)
        masks[k, r : r + rng.integers(1, 8), c : c + rng.integers(1, 8)] = True
    scores = rng.random(count)
    instances = Segmentation.from_masks(masks, categories=np.full(count, 2), scores=scores)
    pan = fuse(_semantic(class_map), instances, things=[2], overlap_threshold=overlap_threshold,
               score_threshold=score_threshold, min_stuff_area=min_stuff_area)
    assert pan.kind == "panoptic" and pan.shape == shape
    labels = pan.labels
    for seg_id, category, score, thing in zip(pan.ids, pan.categories, pan.scores, pan.is_thing, strict=True):
        region = labels == seg_id
        assert region.any()
        if thing:
            # A thing is the free part of one instance that scored high enough and was not
            # covered beyond the threshold by better instances.
            source = int(np.argmin(np.abs(scores - score)))  # scores are distinct draws
            assert score >= score_threshold and (masks[source] | ~region).all()
            covered = 1 - region.sum() / masks[source].sum()
            assert covered <= overlap_threshold + 1e-9
        else:
            assert category != 2 and region.sum() >= max(min_stuff_area, 1)
            assert (class_map[region] == category).all()
