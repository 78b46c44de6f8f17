"""PQ on the COCO panoptic sample against hand-derived values for known perturbations."""

from __future__ import annotations

import numpy as np
import pytest

from segscope import Segmentation
from segscope.io import read_coco_panoptic
from segscope.metrics import evaluate, panoptic_counts, panoptic_quality


@pytest.fixture(scope="module")
def record(data_dir):
    root = data_dir / "format_fixtures" / "coco_panoptic_sample" / "sample_data"
    return read_coco_panoptic(root / "panoptic_examples.json", root / "panoptic_examples")[0]


def _with_labels(
    seg: Segmentation, labels: np.ndarray, categories: dict[int, int] | None = None
) -> Segmentation:
    ids = np.unique(labels)
    ids = ids[ids > 0]
    cat = dict(zip(seg.ids.tolist(), seg.categories.tolist(), strict=True)) | (categories or {})
    thing = dict(zip(seg.categories.tolist(), seg.is_thing.tolist(), strict=True))
    cats = [cat[int(i)] for i in ids]
    return Segmentation(labels, "panoptic", ids=ids, categories=cats, is_thing=[thing[c] for c in cats])


def _pq(pred, record):
    return panoptic_quality(panoptic_counts(pred, record.segmentation, crowd=record.iscrowd))


def test_identity(record):
    r = _pq(record.segmentation, record)
    # Categories: person and one other thing, three stuff classes.
    assert (r["all"]["n"], r["things"]["n"], r["stuff"]["n"]) == (5, 2, 3)
    assert r["all"]["pq"] == r["all"]["sq"] == r["all"]["rq"] == 1.0


def test_missing_thing_is_one_false_negative(record):
    seg = record.segmentation
    person = [i for i, c, k in zip(seg.ids, seg.categories, record.iscrowd, strict=True) if c == 1 and not k]
    labels = seg.labels.copy()
    labels[labels == person[0]] = 0
    r = _pq(_with_labels(seg, labels), record)
    tp = len(person) - 1
    assert r["per_class"]["1"]["fn"] == 1
    assert r["per_class"]["1"]["pq"] == pytest.approx(tp / (tp + 0.5))
    assert r["all"]["pq"] == pytest.approx((tp / (tp + 0.5) + 4) / 5)


def test_wrong_stuff_category_is_fn_and_fp(record):
    seg = record.segmentation
    stuff = seg.ids[seg.categories == 187][0]
    r = _pq(_with_labels(seg, seg.labels, {int(stuff): 184}), record)
    assert r["per_class"]["187"]["pq"] == 0.0
    assert r["per_class"]["184"]["rq"] == pytest.approx(1 / 1.5)
    assert r["all"]["pq"] == pytest.approx((1 + 1 + 1 / 1.5 + 0 + 1) / 5)


@pytest.mark.parametrize(("removed", "matched"), [(0.4, True), (0.6, False)])
def test_partial_segment_sets_sq_or_breaks_the_match(record, removed, matched):
    seg = record.segmentation
    stuff = seg.ids[seg.categories == 193][0]
    labels = seg.labels.copy()
    ys, xs = np.nonzero(labels == stuff)
    cut = round(removed * len(ys))
    labels[ys[:cut], xs[:cut]] = 0  # prediction says void there: IoU = (a - cut) / a
    r = _pq(_with_labels(seg, labels), record)
    iou = (len(ys) - cut) / len(ys)
    if matched:
        assert r["per_class"]["193"]["sq"] == pytest.approx(iou)
        assert r["per_class"]["193"]["pq"] == pytest.approx(iou)
    else:
        assert (r["per_class"]["193"]["fp"], r["per_class"]["193"]["fn"]) == (1, 1)


def test_predictions_on_void_or_crowd_are_not_false_positives(record):
    seg = record.segmentation
    crowd_id = seg.ids[record.iscrowd][0]
    void = seg.labels == 0
    labels = seg.labels.copy()
    new = int(seg.ids.max()) + 1
    labels[void] = new  # a person predicted on the void pixels
    labels[labels == crowd_id] = new + 1  # and one exactly on the crowd region
    pred = _with_labels(seg, labels, {new: 1, new + 1: 1})
    r = _pq(pred, record)
    assert r["per_class"]["1"]["fp"] == 0
    assert r["all"]["pq"] == 1.0


def test_evaluate_panoptic(record):
    report = evaluate([record.segmentation], [record.segmentation], crowd=[record.iscrowd])
    assert report.task == "panoptic"
    assert report["pq"] == report["things_pq"] == report["stuff_pq"] == 1.0
