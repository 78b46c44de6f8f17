from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from segscope import Segmentation
from segscope.io import (
    CocoRecord,
    PanopticRecord,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    read_bsds_groundtruth,
    read_coco,
    read_coco_panoptic,
    read_label_png,
    read_palette_png,
    read_yolo,
    rgb_to_ids,
    rle_to_mask,
    voc_palette,
    write_coco,
    write_coco_panoptic,
    write_label_png,
    write_palette_png,
    write_yolo,
)

small = st.tuples(st.integers(1, 16), st.integers(1, 16))


# ---------------------------------------------------------------- label and palette PNG
@settings(max_examples=40, deadline=None)
@given(labels=hnp.arrays(np.int32, small, elements=st.integers(0, 65535)))
def test_label_png_round_trip(tmp_path_factory, labels):
    path = tmp_path_factory.mktemp("lbl") / "l.png"
    write_label_png(path, labels)
    assert np.array_equal(read_label_png(path), labels)
    with Image.open(path) as img:
        assert img.mode == ("L" if labels.max() <= 255 else "I;16")


def test_label_png_out_of_range(tmp_path):
    with pytest.raises(ValueError, match="do not fit a PNG"):
        write_label_png(tmp_path / "l.png", np.array([[70000]]))
    assert not (tmp_path / "l.png").exists()


@settings(max_examples=40, deadline=None)
@given(class_map=hnp.arrays(np.uint8, small))
def test_palette_png_round_trip(tmp_path_factory, class_map):
    path = tmp_path_factory.mktemp("pal") / "p.png"
    write_palette_png(path, class_map)
    indices, palette = read_palette_png(path)
    assert np.array_equal(indices, class_map)
    assert np.array_equal(palette[:256], voc_palette())


def test_voc_palette_known_colours():
    pal = voc_palette()
    assert pal[1].tolist() == [128, 0, 0] and pal[15].tolist() == [192, 128, 128]
    assert pal[255].tolist() == [224, 224, 192]


def test_voc_fixture_class_and_object_pngs(data_dir):
    root = data_dir / "format_fixtures" / "labelme_voc2011" / "voc_instances"
    cls, _ = read_palette_png(root / "SegmentationClass" / "2011_000003.png")
    obj, _ = read_palette_png(root / "SegmentationObject" / "2011_000003.png")
    assert cls.shape == obj.shape == (338, 500)
    assert np.unique(cls).tolist() == [0, 5, 15, 255]  # background, bottle, person, void
    assert np.unique(obj).tolist() == [0, 1, 2, 3]  # three objects
    names = (root / "class_names.txt").read_text().split()
    seg = Segmentation.from_class_map(cls, void=255, num_classes=len(names))
    assert set(seg.categories.tolist()) <= set(range(len(names)))
    assert (obj[cls == 0] == 0).all()  # background has no object


# ---------------------------------------------------------------- COCO
@settings(max_examples=60, deadline=None)
@given(mask=hnp.arrays(bool, small))
def test_rle_round_trip(mask):
    assert np.array_equal(rle_to_mask(mask_to_rle(mask)), mask)


@settings(max_examples=80, deadline=None)
@given(mask=hnp.arrays(bool, small))
def test_polygon_round_trip_is_exact_without_holes(mask):
    from scipy import ndimage

    mask = ndimage.binary_fill_holes(mask)
    polygons = mask_to_polygons(mask)
    assert polygons is not None
    assert np.array_equal(polygons_to_mask(polygons, *mask.shape), mask)


def test_polygon_refuses_holes():
    mask = np.ones((5, 5), bool)
    mask[2, 2] = False
    assert mask_to_polygons(mask) is None


@settings(max_examples=25, deadline=None)
@given(masks=hnp.arrays(bool, st.tuples(st.integers(0, 4), st.integers(1, 12), st.integers(1, 12))),
       encoding=st.sampled_from(["rle", "polygon"]))
def test_write_read_coco_round_trip(tmp_path_factory, masks, encoding):
    n = masks.shape[0]
    seg = Segmentation.from_masks(masks, categories=np.arange(n) % 3 + 1,
                                  scores=np.linspace(0.1, 0.9, n), class_names=["bg", "a", "b", "c"])
    path = tmp_path_factory.mktemp("coco") / "ann.json"
    write_coco(path, [CocoRecord(7, "img.png", seg)], encoding=encoding)
    (record,) = read_coco(path)
    assert record.image_id == 7 and record.file_name == "img.png"
    assert np.array_equal(record.segmentation.masks, masks)
    assert record.segmentation.categories.tolist() == seg.categories.tolist()
    np.testing.assert_allclose(record.segmentation.scores, seg.scores, rtol=1e-6)


def test_coco_fixture_polygons_match_pycocotools(data_dir):
    from pycocotools.coco import COCO

    path = data_dir / "format_fixtures" / "labelme_voc2011" / "coco_instances" / "annotations.json"
    records = read_coco(path)
    assert sum(len(r.segmentation) for r in records) == 12
    reference = COCO(str(path))
    for record in records:
        ann_ids = reference.getAnnIds(imgIds=[record.image_id])
        expected = np.array([reference.annToMask(a).astype(bool)
                             for a in reference.loadAnns(ann_ids)])
        assert np.array_equal(record.segmentation.masks, expected.reshape(
            record.segmentation.masks.shape))
    assert records[0].segmentation.class_names[15] == "person"


def test_coco_fixture_rewrites_losslessly(data_dir, tmp_path):
    path = data_dir / "format_fixtures" / "labelme_voc2011" / "coco_instances" / "annotations.json"
    records = read_coco(path)
    for encoding in ("rle", "polygon"):
        write_coco(tmp_path / f"{encoding}.json", records, encoding=encoding)
        again = read_coco(tmp_path / f"{encoding}.json")
        for a, b in zip(records, again, strict=True):
            assert np.array_equal(a.segmentation.masks, b.segmentation.masks)
    polys = json.loads((tmp_path / "polygon.json").read_text())["annotations"]
    assert any(isinstance(a["segmentation"], list) for a in polys)


def test_coco_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json.*not valid JSON"):
        read_coco(bad)
    bad.write_text(json.dumps({"images": []}))
    with pytest.raises(ValueError, match="not a COCO instance file"):
        read_coco(bad)


# ---------------------------------------------------------------- COCO panoptic
def test_panoptic_fixture_reads(data_dir):
    root = data_dir / "format_fixtures" / "coco_panoptic_sample" / "sample_data"
    records = read_coco_panoptic(root / "panoptic_examples.json", root / "panoptic_examples")
    assert len(records) == 2
    meta = json.loads((root / "panoptic_examples.json").read_text())
    for record, ann in zip(records, meta["annotations"], strict=True):
        seg = record.segmentation
        assert seg.kind == "panoptic"
        by_id = {s.id: s for s in seg.segments}
        for info in ann["segments_info"]:
            assert by_id[info["id"]].area == info["area"]
            assert by_id[info["id"]].category == info["category_id"]
        assert seg.is_thing.any() and not seg.is_thing.all()


def test_panoptic_round_trip_fixture(data_dir, tmp_path):
    root = data_dir / "format_fixtures" / "coco_panoptic_sample" / "sample_data"
    records = read_coco_panoptic(root / "panoptic_examples.json", root / "panoptic_examples")
    write_coco_panoptic(tmp_path / "out.json", records)
    again = read_coco_panoptic(tmp_path / "out.json")
    for a, b in zip(records, again, strict=True):
        assert a.segmentation == b.segmentation


@settings(max_examples=30, deadline=None)
@given(labels=hnp.arrays(np.int32, small, elements=st.sampled_from([0, 1, 300, 70000, 2**24 - 1])))
def test_panoptic_round_trip_property(tmp_path_factory, labels):
    ids = np.unique(labels)
    ids = ids[ids > 0]
    seg = Segmentation(labels, "panoptic", ids=ids, categories=ids % 5,
                       is_thing=(ids % 2).astype(bool), class_names=[f"c{k}" for k in range(5)])
    folder = tmp_path_factory.mktemp("pan")
    write_coco_panoptic(folder / "p.json", [PanopticRecord(1, "x.jpg", seg)])
    (back,) = read_coco_panoptic(folder / "p.json")
    assert np.array_equal(back.segmentation.labels, labels)
    assert back.segmentation.categories.tolist() == seg.categories.tolist()


def test_rgb_to_ids():
    rgb = np.array([[[1, 2, 3]]], np.uint8)
    assert rgb_to_ids(rgb)[0, 0] == 1 + 2 * 256 + 3 * 65536


# ---------------------------------------------------------------- YOLO
def test_yolo_fixture_and_rewrite(data_dir, tmp_path):
    from segscope.io import imread

    root = data_dir / "format_fixtures" / "yolo_seg_coco8"
    for label in sorted((root / "labels" / "train").glob("*.txt")):
        image = imread(root / "images" / "train" / f"{label.stem}.jpg")
        seg = read_yolo(label, image.shape[:2])
        lines = [ln for ln in label.read_text().splitlines() if ln.strip()]
        assert len(seg) == len(lines)
        assert seg.categories.tolist() == [int(ln.split()[0]) for ln in lines]
        assert (seg.areas() > 0).all()
        write_yolo(tmp_path / label.name, seg)
        again = read_yolo(tmp_path / label.name, image.shape[:2])
        # Outlines are traced along pixel edges, so each category's pixels survive exactly;
        # only holes, which YOLO polygons cannot express, are filled.
        from scipy import ndimage

        for cat in np.unique(seg.categories):
            before = np.zeros(image.shape[:2], bool)
            for m in seg.masks[seg.categories == cat]:
                before |= ndimage.binary_fill_holes(m)
            after = again.masks[again.categories == cat].any(axis=0)
            assert np.array_equal(before, after)


def test_yolo_bad_line(tmp_path):
    path = tmp_path / "l.txt"
    path.write_text("0 0.1 0.2 0.3\n")
    with pytest.raises(ValueError, match=r"l\.txt:1: a polygon needs"):
        read_yolo(path, (10, 10))


# ---------------------------------------------------------------- BSDS
def test_bsds_groundtruth(data_dir):
    mats = sorted((data_dir / "bsds500" / "groundTruth" / "val").glob("*.mat"))
    truth = read_bsds_groundtruth(mats[0])
    assert 4 <= len(truth.segmentations) <= 9
    first = truth.segmentations[0]
    assert first.kind == "regions" and first.shape in ((321, 481), (481, 321))
    assert first.labels.min() >= 1  # every pixel belongs to a human region
    assert truth.boundaries[0].dtype == bool and truth.boundaries[0].shape == first.shape


def test_bsds_relative_paths_follow_the_working_folder(tmp_path, monkeypatch):
    # The .mat is parsed in a helper process that outlives a chdir: relative paths must still
    # name the file in the caller's working folder (found by the README test).
    from scipy.io import savemat

    from segscope.io import read_bsds_groundtruth

    for name in ("first", "second"):
        (tmp_path / name).mkdir()
        cell = np.empty((1, 1), dtype=object)
        shape = (3, 4) if name == "first" else (5, 2)
        cell[0, 0] = {"Segmentation": np.ones(shape, np.uint16), "Boundaries": np.zeros(shape, bool)}
        savemat(tmp_path / name / "gt.mat", {"groundTruth": cell})
    monkeypatch.chdir(tmp_path / "first")
    assert read_bsds_groundtruth("gt.mat")[0].shape == (3, 4)
    monkeypatch.chdir(tmp_path / "second")
    assert read_bsds_groundtruth("gt.mat")[0].shape == (5, 2)
