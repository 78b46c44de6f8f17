"""synthetic_shapes: truth that agrees across tasks and survives the COCO and panoptic formats."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import segscope
from segscope.datasets import SHAPES_CLASSES, SHAPES_THINGS, synthetic_shapes
from segscope.io import PanopticRecord, read_coco, read_coco_panoptic, write_coco, write_coco_panoptic


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), height=st.integers(16, 70), width=st.integers(16, 70))
def test_every_view_of_the_truth_agrees(seed, height, width):
    sample = synthetic_shapes(1, (height, width), seed=seed)[0]
    assert sample.image.shape == (height, width, 3) and sample.image.dtype == np.uint8
    classes = sample.semantic.class_map()
    assert set(np.unique(classes)) <= set(range(len(SHAPES_CLASSES)))
    assert (sample.panoptic.class_map() == classes).all()
    masks = sample.instances.instance_masks()
    # Visible masks never overlap, are never empty, and cover exactly the thing pixels.
    assert (masks.sum(0) <= 1).all() and masks.reshape(len(masks), -1).any(1).all()
    assert (masks.any(0) == np.isin(classes, SHAPES_THINGS)).all()
    for mask, category in zip(masks, sample.instances.categories, strict=True):
        assert (classes[mask] == category).all()
    things = sample.panoptic.is_thing
    assert things.sum() == len(sample.instances)
    assert set(sample.panoptic.categories[~things]) <= {0, 1}


def test_same_seed_same_scenes_and_different_seed_different_scenes():
    a, b = synthetic_shapes(2, 48, seed=5), synthetic_shapes(2, 48, seed=5)
    assert all((x.image == y.image).all() and x.panoptic == y.panoptic for x, y in zip(a, b, strict=True))
    assert not (synthetic_shapes(1, 48, seed=6)[0].image == a[0].image).all()


def test_shapes_overlap_in_some_scenes():
    # Occlusion is the point: some shape must be partly hidden, so its visible mask is not a full
    # disc or square. A fully drawn square fills its bounding box.
    samples = synthetic_shapes(10, 96, seed=0)
    partial = 0
    for sample in samples:
        for mask, category in zip(sample.instances.instance_masks(), sample.instances.categories,
                                  strict=True):
            rows, cols = np.nonzero(mask)
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            partial += int(category == 3 and mask.sum() < box)
    assert partial > 0


def test_truth_round_trips_through_coco_and_coco_panoptic(tmp_path):
    samples = synthetic_shapes(3, 64, seed=2)
    write_coco(tmp_path / "instances.json", {f"{k}.png": s.instances for k, s in enumerate(samples)},
               encoding="polygon")
    for record, sample in zip(read_coco(tmp_path / "instances.json"), samples, strict=True):
        assert (record.segmentation.instance_masks() == sample.instances.instance_masks()).all()
        assert (record.segmentation.categories == sample.instances.categories).all()
    write_coco_panoptic(tmp_path / "panoptic.json",
                        [PanopticRecord(k, f"{k}.png", s.panoptic) for k, s in enumerate(samples)])
    for record, sample in zip(read_coco_panoptic(tmp_path / "panoptic.json"), samples, strict=True):
        report = segscope.evaluate(record.segmentation, sample.panoptic, task="panoptic")
        assert report["pq"] == pytest.approx(1.0)
        assert (record.segmentation.is_thing == sample.panoptic.is_thing).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": -1}, "non-negative"),
    ({"n": 1, "size": 8}, "at least 16"),
    ({"n": 1, "max_objects": 0}, "max_objects"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        synthetic_shapes(**kwargs)
