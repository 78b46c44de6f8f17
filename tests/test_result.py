from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from segscope import Provenance, Segmentation
from segscope.io import load_segmentation, save_segmentation


def test_from_labels_derives_area_and_bbox():
    labels = np.array([[0, 1, 1], [2, 2, 0], [2, 0, 0]])
    seg = Segmentation.from_labels(labels)
    assert seg.labels.dtype == np.int32
    assert [(s.id, s.area, s.bbox) for s in seg.segments] == [
        (1, 2, (0, 1, 1, 3)),
        (2, 3, (1, 0, 3, 2)),
    ]
    assert all(s.category is None and s.score is None for s in seg.segments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labels": np.zeros((2, 2, 2, 2), int), "kind": "regions"}, "2-D"),
        ({"labels": np.zeros((2, 2), float), "kind": "regions"}, "integer"),
        ({"labels": np.zeros((2, 2), int), "kind": "blobs"}, "kind must be"),
        ({"labels": np.array([[1, 2]]), "kind": "regions", "ids": [1, 1]}, "duplicate"),
        ({"labels": np.array([[1, 3]]), "kind": "regions", "ids": [1]}, "no segment entry"),
        ({"labels": np.array([[-1, 0]]), "kind": "regions"}, "lie in"),
        ({"labels": np.array([[1, 2]]), "kind": "instance", "categories": [0]}, "2 entries"),
        ({"labels": np.array([[1, 2]]), "kind": "semantic", "categories": [5, 6]}, r"category \+ 1"),
        ({"labels": np.array([[1]]), "kind": "regions", "categories": [0]}, "no categories"),
        ({"labels": np.array([[1]]), "kind": "panoptic"}, "needs a category"),
        ({"labels": np.array([[1]]), "kind": "semantic", "categories": [0],
          "class_names": []}, "has no name"),
        ({"labels": np.array([[1]]), "kind": "semantic", "categories": [0],
          "probabilities": np.zeros((2, 2, 2))}, "probabilities must have shape"),
        ({"labels": np.array([[1]]), "kind": "regions",
          "masks": np.ones((1, 1, 1), bool)}, "only for instance"),
    ],
)
def test_construction_is_validated(kwargs, message):
    labels = kwargs.pop("labels")
    kind = kwargs.pop("kind")
    with pytest.raises((ValueError, TypeError), match=message):
        Segmentation(labels, kind, **kwargs)


def test_from_masks_overlap_higher_score_wins():
    masks = np.zeros((2, 3, 3), bool)
    masks[0, :, :2] = True
    masks[1, :, 1:] = True
    seg = Segmentation.from_masks(masks, scores=[0.3, 0.9], categories=[4, 7])
    assert seg.labels.tolist() == [[1, 2, 2]] * 3
    # full masks keep the overlap: areas are not the visible ones
    assert seg.areas().tolist() == [6, 6]
    seg2 = Segmentation.from_masks(masks, scores=[0.9, 0.3], categories=[4, 7])
    assert seg2.labels.tolist() == [[1, 1, 2]] * 3


def test_semantic_ids_and_class_map_with_void():
    class_map = np.array([[0, 0, 255], [2, 2, 0]])
    seg = Segmentation.from_class_map(class_map, class_names=["sky", "road", "car"], void=255)
    assert seg.ids.tolist() == [1, 3]
    assert seg.categories.tolist() == [0, 2]
    assert seg.labels[0, 2] == 0
    assert seg.class_map(void=255).tolist() == class_map.tolist()


def test_semantic_to_panoptic_splits_thing_components():
    class_map = np.array([[0, 1, 0, 1], [0, 1, 0, 1]])
    pan = Segmentation.from_class_map(class_map).to_panoptic(thing_categories=[1])
    assert pan.kind == "panoptic"
    assert len(pan) == 3  # one stuff (class 0) and two separate things
    assert sorted(pan.is_thing.tolist()) == [False, True, True]
    assert np.array_equal(pan.to_semantic().class_map(), class_map)


def test_instance_to_semantic_and_panoptic():
    masks = np.zeros((2, 4, 4), bool)
    masks[0, :2] = True
    masks[1, 2:] = True
    inst = Segmentation.from_masks(masks, categories=[3, 3], scores=[0.5, 0.6])
    sem = inst.to_semantic()
    assert sem.ids.tolist() == [4] and sem.categories.tolist() == [3]
    pan = inst.to_panoptic()
    assert pan.is_thing.all() and len(pan) == 2
    with pytest.raises(ValueError, match="no categories"):
        Segmentation.from_labels(np.ones((2, 2), int)).to_semantic()


label_images = hnp.arrays(
    np.int32, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 6)
)


@settings(max_examples=60, deadline=None)
@given(labels=label_images, kind=st.sampled_from(["regions", "instance", "panoptic"]))
def test_save_load_round_trip(tmp_path_factory, labels, kind):
    ids = np.unique(labels)
    ids = ids[ids > 0]
    cats = None if kind == "regions" else (ids % 3).tolist()
    scores = None if kind != "instance" else (ids / 10).tolist()
    seg = Segmentation(labels, kind, ids=ids, categories=cats, scores=scores,
                       provenance=Provenance("m", {"a": (1, 2)}, {"t": 3.5}, 0.1, "x"))
    path = tmp_path_factory.mktemp("rt") / "seg.npz"
    save_segmentation(seg, path)
    assert load_segmentation(path) == seg


@settings(max_examples=40, deadline=None)
@given(masks=hnp.arrays(bool, st.tuples(st.integers(0, 4), st.integers(1, 9), st.integers(1, 9))),
       data=st.data())
def test_masks_and_probabilities_round_trip(tmp_path_factory, masks, data):
    n = masks.shape[0]
    scores = data.draw(hnp.arrays(np.float32, n, elements=st.floats(0, 1, width=32)))
    seg = Segmentation.from_masks(masks, scores=scores, categories=np.arange(n) % 2)
    path = tmp_path_factory.mktemp("rt") / "seg.npz"
    save_segmentation(seg, path)
    back = load_segmentation(path)
    assert back == seg
    assert np.array_equal(back.masks, masks)
    # labels never show a pixel outside its own mask
    for k, seg_id in enumerate(seg.ids):
        assert masks[k][seg.labels == seg_id].all()


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, labels=np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"x\.npz"):
        load_segmentation(bad)
    with pytest.raises(FileNotFoundError, match="missing"):
        load_segmentation(tmp_path / "missing.npz")


def test_save_into_missing_folder_leaves_nothing(tmp_path):
    seg = Segmentation.from_labels(np.ones((2, 2), int))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_segmentation(seg, tmp_path / "nope" / "a.npz")
    assert not (tmp_path / "nope").exists()


def test_byte_class_map_results_equal_the_general_path_and_are_isolated():
    rng = np.random.default_rng(3)
    cm = rng.integers(0, 4, size=(9, 7)).astype(np.uint8)
    cm[0, 0] = 255
    fast = Segmentation.from_class_map(cm, num_classes=4, void=255)
    general = Segmentation.from_class_map(cm.astype(np.int32), num_classes=4, void=255)
    assert fast.shape == (9, 7)
    np.testing.assert_array_equal(fast.class_map(void=255), general.class_map(void=255))
    assert not fast.class_map(void=255).flags.writeable  # the kept map cannot be edited through it
    cm[:] = 0  # the caller's array changing later does not change the result
    np.testing.assert_array_equal(fast.labels, general.labels)
    assert fast == general
    np.testing.assert_array_equal(fast.ids, general.ids)
    with pytest.raises(ValueError, match="out of range"):
        Segmentation.from_class_map(np.full((2, 2), 7, np.uint8), num_classes=4)


def test_fields_cannot_be_reassigned():
    seg = Segmentation.from_labels(np.array([[0, 1], [2, 2]]))
    for name in ("kind", "provenance", "masks", "class_names", "_labels"):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(seg, name, None)
    with pytest.raises(AttributeError, match="immutable"):
        del seg.kind
    # with_provenance makes a new result and leaves this one as it was
    other = seg.with_provenance(Provenance("m"))
    assert seg.provenance is None and other.provenance.method == "m"


def test_results_pickle_between_processes_and_stay_immutable():
    import copy
    import pickle

    masks = np.zeros((2, 4, 5), bool)
    masks[0, :2] = masks[1, 2:, 1:] = True
    seg = Segmentation.from_masks(masks, categories=[0, 1], scores=[0.9, 0.4], class_names=["a", "b"])
    seg = seg.with_provenance(Provenance("m", parameters={"k": 2}))
    for back in (pickle.loads(pickle.dumps(seg)), copy.deepcopy(seg)):
        assert np.array_equal(back.labels, seg.labels) and np.array_equal(back.masks, seg.masks)
        assert np.array_equal(back.scores, seg.scores) and back.class_names == seg.class_names
        assert back.provenance == seg.provenance and back.kind == seg.kind
        with pytest.raises(AttributeError, match="immutable"):
            back.kind = "semantic"


@settings(max_examples=60, deadline=None)
@given(masks=hnp.arrays(bool, st.tuples(st.integers(0, 5), st.integers(1, 7), st.integers(1, 7))),
       data=st.data())
def test_selecting_instances_equals_building_from_the_kept_masks(masks, data):
    n = masks.shape[0]
    scores = data.draw(hnp.arrays(np.float32, n, elements=st.floats(0, 1, width=32)))
    keep = data.draw(hnp.arrays(bool, n))
    seg = Segmentation.from_masks(masks, scores=scores, categories=np.arange(n) % 3)
    chosen = seg[keep]
    rebuilt = Segmentation.from_masks(masks[keep], scores=scores[keep], categories=(np.arange(n) % 3)[keep])
    assert chosen.ids.tolist() == seg.ids[keep].tolist()
    np.testing.assert_array_equal(chosen.masks, rebuilt.masks)
    # the same pixels win, under the original ids
    lut = np.concatenate([[0], seg.ids[keep]])
    np.testing.assert_array_equal(chosen.labels, lut[rebuilt.labels])
    assert seg[np.flatnonzero(keep)].ids.tolist() == chosen.ids.tolist()


def test_selection_without_masks_and_by_slice():
    seg = Segmentation.from_labels(np.array([[1, 2, 3]]), kind="instance",
                                   categories={1: 0, 2: 1, 3: 0}, scores={1: 0.1, 2: 0.9, 3: 0.6})
    assert seg[seg.scores > 0.5].labels.tolist() == [[0, 2, 3]]
    assert seg[:1].labels.tolist() == [[1, 0, 0]] and seg[-1].ids.tolist() == [3]
    with pytest.raises(ValueError, match="3 entries"):
        seg.select(np.array([True, False]))
    with pytest.raises(IndexError):
        seg.select([5])


def test_no_instances_have_no_areas():
    empty = Segmentation.from_masks(np.zeros((0, 4, 5), bool))
    assert empty.areas().shape == (0,) and empty.bboxes().shape == (0, 4)


def test_concatenate_joins_instance_results():
    a = Segmentation.from_masks(np.eye(3, dtype=bool)[None], scores=[0.4], categories=[1])
    b = Segmentation.from_masks(np.ones((2, 3, 3), bool), scores=[0.9, 0.1], categories=[0, 2])
    joined = Segmentation.concatenate([a, b])
    assert joined.ids.tolist() == [1, 2, 3] and joined.categories.tolist() == [1, 0, 2]
    assert (joined.labels == 2).all()  # the best score wins everywhere
    with pytest.raises(ValueError, match="instance"):
        Segmentation.concatenate([Segmentation.from_labels(np.ones((3, 3), int))])


def test_saved_files_honour_the_umask(tmp_path):
    import os

    seg = Segmentation.from_labels(np.ones((2, 2), int))
    old = os.umask(0o027)
    try:
        save_segmentation(seg, tmp_path / "a.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o640


def test_volumes_hold_3d_labels_with_their_spacing(tmp_path):
    from scipy import ndimage

    labels = np.zeros((4, 5, 6), np.int32)
    labels[1:3, 1:4, 2:5] = 3
    labels[0, 0, 0] = 1
    seg = Segmentation.from_labels(labels, spacing=(2.0, 0.5, 0.5))
    assert seg.shape == (4, 5, 6) and seg.ndim == 3 and seg.spacing == (2.0, 0.5, 0.5)
    assert [s.area for s in seg.segments] == [1, 18]
    # Boxes are (z, row, col) starts, then stops, as scipy's find_objects gives them.
    expected = [[sl.start for sl in box] + [sl.stop for sl in box]
                for box in ndimage.find_objects(labels) if box is not None]
    assert seg.bboxes().tolist() == expected
    save_segmentation(seg, tmp_path / "v.npz")
    assert load_segmentation(tmp_path / "v.npz") == seg
    assert seg != Segmentation.from_labels(labels)  # the spacing is part of the result
    with pytest.raises(ValueError, match="one positive size per axis"):
        Segmentation.from_labels(labels, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"2-D .* or 3-D"):
        Segmentation.from_labels(np.zeros((2, 2, 2, 2), np.int32))


def test_volume_class_maps_and_instance_masks_behave_as_in_2d():
    rng = np.random.default_rng(0)
    class_map = rng.integers(0, 3, (3, 4, 5)).astype(np.uint8)
    semantic = Segmentation.from_class_map(class_map, num_classes=3, spacing=(1.0, 1.0, 1.0))
    assert np.array_equal(semantic.class_map(), class_map) and semantic.spacing == (1.0, 1.0, 1.0)
    assert np.array_equal(semantic.labels, class_map.astype(np.int32) + 1)
    masks = np.zeros((2, 3, 4, 5), bool)
    masks[0, :2, :2, :2] = True
    masks[1, 1:, 1:, 1:] = True
    instances = Segmentation.from_masks(masks, scores=[0.2, 0.9])
    assert instances.areas().tolist() == [8, 24]
    assert instances.labels[1, 1, 1] == 2  # the higher score is painted over the overlap
    assert instances.bboxes().tolist() == [[0, 0, 0, 2, 2, 2], [1, 1, 1, 3, 4, 5]]
    # Thing components in 3-D use the full 26-neighbourhood.
    touching = np.zeros((3, 3, 3), np.uint8)
    touching[0, 0, 0] = touching[1, 1, 1] = 1
    panoptic = Segmentation.from_class_map(touching, num_classes=2).to_panoptic(thing_categories=[1])
    assert sum(panoptic.is_thing) == 1
