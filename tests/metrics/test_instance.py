"""COCO mask AP equal to pycocotools' COCOeval; matching at an IoU threshold."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segscope import Segmentation
from segscope.io import read_label_png
from segscope.metrics import coco_mask_ap, evaluate, match_instances

KEYS = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode()
    return rle


def pycocotools_stats(preds, truths, crowds, max_dets=(1, 10, 100)) -> np.ndarray:
    """The reference: the same images through pycocotools' COCOeval."""
    images, anns, dets = [], [], []
    for i, (p, t, c) in enumerate(zip(preds, truths, crowds, strict=True)):
        h, w = t.shape
        images.append({"id": i + 1, "height": h, "width": w})
        for k, m in enumerate(t.instance_masks()):
            rle = _rle(m)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(t.categories[k]),
                         "segmentation": rle, "area": float(m.sum()), "iscrowd": int(c[k]),
                         "bbox": list(mask_utils.toBbox(rle))})
        for k, m in enumerate(p.instance_masks()):
            dets.append({"image_id": i + 1, "category_id": int(p.categories[k]), "segmentation": _rle(m),
                         "score": float(p.scores[k])})
    cats = sorted({a["category_id"] for a in anns})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": images, "annotations": anns, "categories": [{"id": c} for c in cats]}
        gt.createIndex()
        dt = gt.loadRes(dets) if dets else COCO()
        ev = COCOeval(gt, dt, "segm")
        ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _random_boxes(rng, n, h, w):
    masks = np.zeros((n, h, w), bool)
    for k in range(n):
        y, x = rng.integers(0, h), rng.integers(0, w)
        masks[k, y : y + rng.integers(1, h // 2 + 2), x : x + rng.integers(1, w // 2 + 2)] = True
    return masks


def _empty(h, w, scored):
    return Segmentation.from_masks(np.zeros((0, h, w), bool), categories=np.zeros(0, int),
                                   scores=np.zeros(0) if scored else None)


@pytest.mark.parametrize("seed", range(40))
def test_mask_ap_equals_pycocotools_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    preds, truths, crowds = [], [], []
    for _ in range(int(rng.integers(1, 5))):
        h, w = (int(v) for v in rng.integers(4, 100, size=2))
        n_t, n_p = int(rng.integers(0, 7)), int(rng.integers(0, 9))
        tm, pm = _random_boxes(rng, n_t, h, w), _random_boxes(rng, n_p, h, w)
        if n_t and n_p:
            pm[0] = tm[0]  # at least one exact hit
        truths.append(
            Segmentation.from_masks(tm, categories=rng.integers(1, 3, n_t)) if n_t else _empty(h, w, False)
        )
        scores = rng.random(n_p).round(1)  # ties on purpose: the order rule must agree too
        preds.append(Segmentation.from_masks(pm, categories=rng.integers(1, 3, n_p), scores=scores)
                     if n_p else _empty(h, w, True))
        crowds.append(rng.random(n_t) < 0.2)  # crowd regions, and images with no objects at all
    if not any(len(t.ids) for t in truths):
        pytest.skip("no truth objects drawn")
    ours = coco_mask_ap(preds, truths, crowd=crowds)
    np.testing.assert_allclose([ours[k] for k in KEYS], pycocotools_stats(preds, truths, crowds), atol=1e-6)


def _perturb(labels: np.ndarray, rng) -> Segmentation:
    """A plausible prediction: some nuclei dropped, some shrunk, one false object, random scores."""
    import cv2

    out = np.zeros_like(labels)
    ids = np.unique(labels)[1:]
    for i in ids:
        if rng.random() < 0.1:
            continue
        mask = (labels == i).astype(np.uint8)
        if rng.random() < 0.4:
            mask = cv2.erode(mask, np.ones((3, 3), np.uint8))
        out[mask > 0] = i
    out[:6, :6] = labels.max() + 1
    seg = Segmentation.from_labels(out.astype(np.int32), kind="instance",
                                   categories={int(i): 0 for i in np.unique(out)[1:]})
    scores = {int(i): float(rng.random()) for i in seg.ids}
    return Segmentation.from_labels(seg.labels, kind="instance", categories=dict.fromkeys(scores, 0),
                                    scores=scores)


def test_mask_ap_equals_pycocotools_on_dsb2018(data_dir):
    rng = np.random.default_rng(0)
    files = sorted((data_dir / "dsb2018" / "train" / "labels").glob("*.png"))[:12]
    truths, preds = [], []
    for f in files:
        labels = read_label_png(f).astype(np.int32)
        truths.append(Segmentation.from_labels(labels, kind="instance",
                                               categories={int(i): 0 for i in np.unique(labels)[1:]}))
        preds.append(_perturb(labels, rng))
    crowds = [np.zeros(len(t.ids), bool) for t in truths]
    ours = coco_mask_ap(preds, truths, crowd=crowds)
    np.testing.assert_allclose([ours[k] for k in KEYS], pycocotools_stats(preds, truths, crowds), atol=1e-6)
    # Nuclei images hold more than 100 objects. pycocotools' headline AP is hard-wired to 100
    # detections whatever maxDets says, while its AP50/AP75/APs.. use the last limit; ours uses the
    # last limit throughout, so only AP differs from pycocotools here, and it is above AP@100.
    dets = (10, 100, 1000)
    ours = coco_mask_ap(preds, truths, crowd=crowds, max_detections=dets)
    reference = pycocotools_stats(preds, truths, crowds, dets)
    keys = [*KEYS[:6], *(f"AR{d}" for d in dets), *KEYS[9:]]
    np.testing.assert_allclose([ours[k] for k in keys[1:]], reference[1:], atol=1e-6)
    assert ours["AP"] > reference[0]


def test_perfect_prediction_scores_one():
    t = np.zeros((20, 20), np.int32)
    t[2:8, 2:8], t[10:18, 10:18] = 1, 2
    result = coco_mask_ap([t], [t])
    assert result["AP"] == pytest.approx(1.0) and result["AR100"] == pytest.approx(1.0)
    assert result["APl"] == -1.0  # no large objects: undefined, printed as -1 like COCO


def test_match_instances_hand_case():
    t = np.zeros((10, 10), np.int32)
    t[0:4, 0:4], t[5:10, 5:10] = 1, 2
    p = np.zeros((10, 10), np.int32)
    p[0:4, 0:2] = 7  # IoU 0.5 with truth 1
    p[5:10, 5:10] = 8  # exact
    p[0:2, 8:10] = 9  # false positive
    r = match_instances(p, t, iou_threshold=0.5)
    assert (r["tp"], r["fp"], r["fn"]) == (2, 1, 0)
    assert r["mean_matched_iou"] == pytest.approx(0.75)
    assert r["f1"] == pytest.approx(0.8)
    r = match_instances(p, t, iou_threshold=0.6)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 2, 1)
    assert r["accuracy"] == pytest.approx(1 / 4)


def test_match_instances_below_half_takes_the_most_pairs():
    # At IoU 0.3, greedy best-IoU matching would pair p1 with t1 and leave t2 unmatched;
    # the optimal matching pairs p1-t2 and p2-t1.
    t = np.zeros((1, 12), np.int32)
    t[0, 0:4], t[0, 4:8] = 1, 2
    p = np.zeros((1, 12), np.int32)
    p[0, 2:8] = 1  # IoU 2/8 with t1, 4/6 with t2
    p[0, 0:3] = 2  # IoU 3/4 with t1
    r = match_instances(p, t, iou_threshold=0.3)
    assert r["tp"] == 2


def test_evaluate_instance_report(data_dir):
    labels = read_label_png(sorted((data_dir / "dsb2018" / "train" / "labels").glob("*.png"))[0])
    seg = Segmentation.from_labels(labels.astype(np.int32), kind="instance",
                                   categories={int(i): 0 for i in np.unique(labels)[1:]})
    report = evaluate([seg], [seg], task="instance")
    assert report["AP"] == pytest.approx(1.0)
    assert report["f1@0.5"] == 1.0
    assert "AP50" in report.table()
