"""Semantic metrics against a straightforward NumPy reference and hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segscope import Segmentation
from segscope.metrics import Evaluator, confusion_matrix, evaluate, semantic_counts, semantic_scores


def reference_scores(pred: np.ndarray, true: np.ndarray, n: int, ignore: int | None) -> dict:
    """Per-class loops over boolean masks: slow and obviously right."""
    valid = np.ones(true.shape, bool) if ignore is None else true != ignore
    ious, accs, dices = [], [], []
    for c in range(n):
        p = (pred == c) & valid
        t = (true == c) & valid
        inter, union = (p & t).sum(), (p | t).sum()
        if union:
            ious.append(inter / union)
            dices.append(2 * inter / (p.sum() + t.sum()))
        if t.sum():
            accs.append(inter / t.sum())
    freq = [((true == c) & valid).sum() / valid.sum() for c in range(n)]
    fw = 0.0
    for c, f in enumerate(freq):
        union = ((pred == c) | (true == c))[valid].sum()
        fw += f * (((pred == c) & (true == c) & valid).sum() / max(union, 1))
    return {"pixel_accuracy": ((pred == true) & valid).sum() / valid.sum(), "miou": np.mean(ious),
            "mean_accuracy": np.mean(accs), "mean_dice": np.mean(dices), "fwiou": fw}


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.int64, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 4)),
    st.data(),
)
def test_scores_match_reference(true, data):
    pred = data.draw(arrays(np.int64, true.shape, elements=st.integers(0, 3)))
    ignore = data.draw(st.sampled_from([None, 4]))
    n = 4
    if ignore is None:
        true = np.minimum(true, 3)
    if ignore is not None and (true == ignore).all():
        return
    ours = semantic_scores(semantic_counts(pred, true, num_classes=n, ignore_index=ignore))
    ref = reference_scores(pred, true, n, ignore)
    for key, value in ref.items():
        assert ours[key] == pytest.approx(value), key


def test_confusion_matrix_hand_case():
    true = np.array([[0, 0, 1], [1, 2, 255]])
    pred = np.array([[0, 1, 1], [1, 1, 0]])
    cm = confusion_matrix(pred, true, num_classes=3, ignore_index=255)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 2, 0], [0, 1, 0]])


def test_absent_class_is_excluded_not_zero():
    true = np.array([[0, 0, 1, 1]])
    pred = true.copy()
    scores = semantic_scores(semantic_counts(pred, true, num_classes=5))
    assert scores["miou"] == 1.0  # classes 2..4 appear nowhere: excluded
    assert np.isnan(scores["per_class"]["iou"][3])


def test_prediction_out_of_range_is_a_miss():
    true = np.array([[0, 0, 1, 1]])
    pred = np.array([[0, 9, 1, 1]])
    c = semantic_counts(pred, true, num_classes=2)
    np.testing.assert_array_equal(c.fn, [1, 0])
    np.testing.assert_array_equal(c.fp, [0, 0])
    assert semantic_scores(c)["pixel_accuracy"] == 0.75


def test_truth_out_of_range_is_an_error():
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        semantic_counts(np.zeros((2, 2), int), np.full((2, 2), 7), num_classes=2)


def test_pooled_and_per_image_differ_as_documented():
    a_true, a_pred = np.array([[0, 0, 0, 1]]), np.array([[0, 0, 0, 0]])  # class 1 IoU 0
    b_true, b_pred = np.array([[1, 1, 1, 1]]), np.array([[1, 1, 1, 1]])  # class 1 IoU 1
    counts = [semantic_counts(p, t, num_classes=2) for p, t in [(a_pred, a_true), (b_pred, b_true)]]
    pooled = semantic_scores(counts, aggregation="pooled")
    per_image = semantic_scores(counts, aggregation="per_image")
    # pooled: class 0 IoU 3/4, class 1 IoU 4/5; per image: (3/4 + 0)/2 and (1)/1, then averaged.
    assert pooled["miou"] == pytest.approx((3 / 4 + 4 / 5) / 2)
    assert per_image["miou"] == pytest.approx(((3 / 4 + 0) / 2 + 1.0) / 2)
    with pytest.raises(ValueError, match="aggregation"):
        semantic_scores(counts, aggregation="mean")


def test_segmentation_inputs_and_void():
    true = Segmentation.from_class_map(np.array([[0, 1, 255]]), num_classes=2, void=255)
    pred = Segmentation.from_class_map(np.array([[0, 0, 1]]), num_classes=2)
    report = evaluate(pred, true)
    assert report.task == "semantic"
    assert report["pixel_accuracy"] == 0.5  # the void truth pixel is not counted


def test_evaluator_streams_and_grows_classes():
    ev = Evaluator(task="semantic")
    ev.update(np.array([[0, 1]]), np.array([[0, 1]]))
    ev.update(np.array([[2, 2]]), np.array([[2, 0]]))
    report = ev.compute()
    assert report.settings["classes"] == 3
    assert report["pixel_accuracy"] == 0.75
    assert len(report.per_image) == 2
    full = evaluate([np.array([[0, 1]]), np.array([[2, 2]])], [np.array([[0, 1]]), np.array([[2, 0]])],
                    task="semantic", num_classes=3)
    assert full["miou"] == pytest.approx(report["miou"])


def test_camvid_val_trivial_prediction(data_dir):
    from segscope.io import read_label_png

    files = sorted((data_dir / "camvid" / "valannot").glob("*.png"))[:5]
    ev = Evaluator(task="semantic", num_classes=11, ignore_index=11)
    for f in files:
        truth = read_label_png(f)
        ev.update(np.full_like(truth, 3), truth, name=f.stem)  # everything is "Road"
    report = ev.compute()
    road = report.per_class["3"]
    assert 0 < road["iou"] < 1
    present = sum(v["pixels"] > 0 for v in report.per_class.values())
    assert report["mean_accuracy"] == pytest.approx(1 / present)  # only Road is ever right
    assert "miou" in report.to_json()


def test_a_batch_counts_as_the_sum_of_its_images():
    rng = np.random.default_rng(4)
    pred, true = rng.integers(0, 3, (2, 5, 6, 7))
    batch = semantic_counts(pred, true, num_classes=3, ignore_index=2)
    one_by_one = [semantic_counts(p, t, num_classes=3, ignore_index=2)
                  for p, t in zip(pred, true, strict=True)]
    np.testing.assert_array_equal(batch.confusion, sum(c.confusion for c in one_by_one))
    np.testing.assert_array_equal(batch.missed, sum(c.missed for c in one_by_one))
