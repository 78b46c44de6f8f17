"""Instance metrics: COCO mask AP and matching at an IoU threshold.

:func:`coco_mask_ap` follows pycocotools' ``COCOeval`` (``iouType="segm"``) rule for rule: detections
sorted by score and cut at the largest ``max_detections``, greedy matching per IoU threshold
where a detection takes the best still-free truth (crowd truths may be matched many times and
their IoU is the intersection over the detection's area), truths outside an area range or crowd
ignored, precision made monotone and sampled at 101 recall points. It counts faster: overlaps of
non-overlapping instances come from one contingency table per image, and the matching is compiled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from scipy import sparse
from scipy.optimize import linear_sum_assignment

from ..result import Segmentation
from ._inputs import same_shape
from ._policy import ratio

__all__ = [
    "COCO_AREA_RANGES",
    "PreparedImage",
    "coco_ap_from_prepared",
    "coco_mask_ap",
    "instance_overlaps",
    "match_instances",
    "prepare_instances",
]

COCO_AREA_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)


def _as_instances(value: Any, name: str) -> Segmentation:
    if isinstance(value, Segmentation):
        if value.kind == "semantic":
            raise ValueError(f"{name} is a semantic result: instance metrics need one segment per object")
        return value
    array = np.asarray(value)
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be a Segmentation or a 2-D integer instance label image")
    labels = array.astype(np.int32)
    # A bare label image is one class of objects: category 0.
    return Segmentation.from_labels(
        labels, kind="instance", categories=dict.fromkeys(np.unique(labels).tolist(), 0)
    )


def instance_overlaps(prediction: Any, truth: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Intersections ``(P, G)`` of every predicted with every true instance, and their areas.

    Rows and columns follow ``prediction.ids`` and ``truth.ids``. Instances that do not overlap
    each other (the usual case) are counted with one contingency table of the two label images;
    overlapping masks with a sparse product of the flattened masks.
    """
    pred = _as_instances(prediction, "prediction")
    true = _as_instances(truth, "truth")
    same_shape(pred.labels, true.labels)
    if pred.masks is None and true.masks is None:
        rows = np.zeros(int(pred.labels.max(initial=0)) + 1, np.int64)
        cols = np.zeros(int(true.labels.max(initial=0)) + 1, np.int64)
        rows[pred.ids] = np.arange(1, len(pred.ids) + 1)
        cols[true.ids] = np.arange(1, len(true.ids) + 1)
        a = rows[pred.labels].ravel()
        b = cols[true.labels].ravel()
        width = len(true.ids) + 1
        table = np.bincount(a * width + b, minlength=(len(pred.ids) + 1) * width)
        table = table.reshape(len(pred.ids) + 1, width)
        return table[1:, 1:], table[1:].sum(1), table[:, 1:].sum(0)
    pm = _flat_masks(pred)
    tm = _flat_masks(true)
    inter = (pm @ tm.T).toarray().astype(np.int64)
    return inter, np.asarray(pm.sum(1)).ravel(), np.asarray(tm.sum(1)).ravel()


def _flat_masks(seg: Segmentation) -> sparse.csr_matrix:
    masks = seg.instance_masks()
    return sparse.csr_matrix(masks.reshape(len(masks), seg.labels.size).astype(np.int32))


def _iou(inter: np.ndarray, area_p: np.ndarray, area_t: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    union = area_p[:, None] + area_t[None, :] - inter
    # A crowd truth is scored by how much of the detection lies inside it, as COCO does.
    union = np.where(crowd[None, :], area_p[:, None], union)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _greedy_match_py(
    ious: np.ndarray, thresholds: np.ndarray, ignore: np.ndarray, crowd: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_t, (n_d, n_g) = len(thresholds), ious.shape
    matched_gt = np.zeros((n_t, n_g), np.bool_)
    dt_match = np.full((n_t, n_d), -1, np.int64)
    dt_ignore = np.zeros((n_t, n_d), np.bool_)
    for t in range(n_t):
        for d in range(n_d):
            best = min(thresholds[t], 1 - 1e-10)
            m = -1
            for g in range(n_g):
                if matched_gt[t, g] and not crowd[g]:
                    continue
                # Truths are sorted real-first: once matched to a real one, ignored ones cannot win.
                if m > -1 and not ignore[m] and ignore[g]:
                    break
                if ious[d, g] < best:
                    continue
                best = ious[d, g]
                m = g
            if m == -1:
                continue
            dt_ignore[t, d] = ignore[m]
            dt_match[t, d] = m
            matched_gt[t, m] = True
    return dt_match, dt_ignore


_greedy_match = njit(cache=True, nogil=True)(_greedy_match_py)


@dataclass
class _ImageEval:
    scores: np.ndarray  # (D,) sorted descending, cut at the largest max_detections
    matched: np.ndarray  # (T, D) bool
    ignored: np.ndarray  # (T, D) bool
    truths: int  # non-ignored truths


def coco_mask_ap(
    predictions: Sequence[Any],
    truths: Sequence[Any],
    *,
    crowd: Sequence[np.ndarray | None] | None = None,
    iou_thresholds: Sequence[float] | None = None,
    max_detections: Sequence[int] = (1, 10, 100),
    area_ranges: dict[str, tuple[float, float]] | None = None,
) -> dict[str, Any]:
    """COCO mask average precision and recall over a dataset, as pycocotools' ``COCOeval``.

    Parameters
    ----------
    predictions, truths : sequence of Segmentation (instance or panoptic) or label images
        One per image, in the same order. Prediction scores rank detections (a result without
        scores ranks its instances in id order, all at score 1).
    crowd : sequence of bool arrays, optional
        Per image, per truth instance (``truth.ids`` order): a crowd region.
    iou_thresholds : sequence of float, optional
        Defaults to COCO's 0.50:0.05:0.95.
    max_detections : sequence of int
        Detection limits per image for AR; every AP uses the last. COCO uses (1, 10, 100); images
        with more objects (nuclei) want a larger last value. (pycocotools' headline AP always uses
        100 whatever its ``maxDets``; ours uses the last limit, as its AP50 and AP75 do.)
    area_ranges : dict, optional
        Named (min, max) object areas; defaults to COCO's all/small/medium/large.

    Returns
    -------
    dict
        ``AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl`` (named after the
        limits given; -1 where undefined, as COCO prints), plus ``precision`` (T, R, K, A, M) and
        ``recall`` (T, K, A, M) arrays and the ``categories`` evaluated.

    References
    ----------
    .. [1] T.-Y. Lin et al., "Microsoft COCO: Common objects in context", ECCV 2014.

    Examples
    --------
    >>> truth = np.zeros((8, 8), np.int32); truth[1:4, 1:4] = 1; truth[5:8, 5:8] = 2
    >>> round(coco_mask_ap([truth], [truth])["AP"], 6)
    1.0
    """
    if len(predictions) != len(truths):
        raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
    thresholds = np.asarray(COCO_IOU_THRESHOLDS if iou_thresholds is None else iou_thresholds, np.float64)
    ranges = dict(COCO_AREA_RANGES if area_ranges is None else area_ranges)
    limits = [int(m) for m in max_detections]
    if not limits or min(limits) < 1:
        raise ValueError(f"max_detections must be positive integers, got {max_detections}")
    crowd_list = list(crowd) if crowd is not None else [None] * len(truths)
    if len(crowd_list) != len(truths):
        raise ValueError(f"crowd has {len(crowd_list)} entries for {len(truths)} images")

    prepared = [
        prepare_instances(p, t, crowd=c, name=f"image {k}")
        for k, (p, t, c) in enumerate(zip(predictions, truths, crowd_list, strict=True))
    ]
    return coco_ap_from_prepared(
        prepared, iou_thresholds=thresholds, max_detections=limits, area_ranges=ranges
    )


@dataclass
class PreparedImage:
    """What COCO evaluation needs of one image: overlaps, areas, categories, scores, crowd flags."""

    inter: np.ndarray
    area_p: np.ndarray
    area_t: np.ndarray
    cat_p: np.ndarray
    cat_t: np.ndarray
    scores: np.ndarray
    crowd: np.ndarray


def prepare_instances(
    prediction: Any, truth: Any, *, crowd: Any = None, name: str = "image"
) -> PreparedImage:
    """Count one image for :func:`coco_ap_from_prepared` (so the images need not be kept)."""
    pred = _as_instances(prediction, f"prediction of {name}")
    true = _as_instances(truth, f"truth of {name}")
    is_crowd = np.zeros(len(true.ids), bool) if crowd is None else np.asarray(crowd, bool)
    if is_crowd.shape != (len(true.ids),):
        raise ValueError(f"crowd flags of {name} have shape {is_crowd.shape}, truth has {len(true.ids)}")
    inter, area_p, area_t = instance_overlaps(pred, true)
    scores = np.where(np.isnan(pred.scores), 1.0, pred.scores) if len(pred.ids) else np.zeros(0)
    return PreparedImage(inter, area_p, area_t, pred.categories, true.categories, scores, is_crowd)


def coco_ap_from_prepared(
    prepared: Sequence[PreparedImage],
    *,
    iou_thresholds: np.ndarray = COCO_IOU_THRESHOLDS,
    max_detections: Sequence[int] = (1, 10, 100),
    area_ranges: dict[str, tuple[float, float]] = COCO_AREA_RANGES,
) -> dict[str, Any]:
    """COCO AP and AR from prepared images (see :func:`coco_mask_ap`)."""
    thresholds = np.asarray(iou_thresholds, np.float64)
    ranges = dict(area_ranges)
    limits = list(max_detections)
    cats = sorted({int(c) for image in prepared for c in image.cat_t})

    evals: dict[tuple[int, str], list[_ImageEval]] = {(c, a): [] for c in cats for a in ranges}
    top = limits[-1]
    for image in prepared:
        inter, area_p, area_t, scores, is_crowd = (
            image.inter, image.area_p, image.area_t, image.scores, image.crowd
        )
        cat_p, cat_t = image.cat_p, image.cat_t
        for c in cats:
            d_idx = np.flatnonzero(cat_p == c)
            g_idx = np.flatnonzero(cat_t == c)
            if len(d_idx) == 0 and len(g_idx) == 0:
                continue
            order = np.argsort(-scores[d_idx], kind="mergesort")[:top]
            d_idx = d_idx[order]
            ious_all = _iou(inter[np.ix_(d_idx, g_idx)], area_p[d_idx], area_t[g_idx], is_crowd[g_idx])
            for name, (lo, hi) in ranges.items():
                gt_area = area_t[g_idx]
                ignore = is_crowd[g_idx] | (gt_area < lo) | (gt_area > hi)
                g_order = np.argsort(ignore, kind="mergesort")
                ious = np.ascontiguousarray(ious_all[:, g_order])
                match, dt_ignore = _greedy_match(
                    ious, thresholds, ignore[g_order].copy(), is_crowd[g_idx][g_order].copy()
                )
                dt_area = area_p[d_idx]
                outside = (dt_area < lo) | (dt_area > hi)
                dt_ignore = dt_ignore | ((match < 0) & outside[None, :])
                evals[(c, name)].append(
                    _ImageEval(scores[d_idx], match >= 0, dt_ignore, int((~ignore).sum()))
                )

    n_t, n_r = len(thresholds), len(COCO_RECALL_THRESHOLDS)
    precision = -np.ones((n_t, n_r, len(cats), len(ranges), len(limits)))
    recall = -np.ones((n_t, len(cats), len(ranges), len(limits)))
    for ki, c in enumerate(cats):
        for ai, name in enumerate(ranges):
            images = evals[(c, name)]
            if not images:
                continue
            n_truth = sum(e.truths for e in images)
            if n_truth == 0:
                continue
            for mi, limit in enumerate(limits):
                scores = np.concatenate([e.scores[:limit] for e in images])
                matched = np.concatenate([e.matched[:, :limit] for e in images], axis=1)
                ignored = np.concatenate([e.ignored[:, :limit] for e in images], axis=1)
                order = np.argsort(-scores, kind="mergesort")
                matched, ignored = matched[:, order], ignored[:, order]
                tps = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
                fps = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
                for ti in range(n_t):
                    tp, fp = tps[ti], fps[ti]
                    rc = tp / n_truth
                    pr = tp / (fp + tp + np.spacing(1))
                    recall[ti, ki, ai, mi] = rc[-1] if len(tp) else 0.0
                    pr = np.maximum.accumulate(pr[::-1])[::-1]
                    inds = np.searchsorted(rc, COCO_RECALL_THRESHOLDS, side="left")
                    q = np.zeros(n_r)
                    ok = inds < len(pr)
                    q[ok] = pr[inds[ok]]
                    precision[ti, :, ki, ai, mi] = q
    return _summarise(precision, recall, thresholds, list(ranges), limits, cats)


def _mean_defined(values: np.ndarray) -> float:
    values = values[values > -1]
    return float(values.mean()) if values.size else -1.0


def _summarise(
    precision: np.ndarray,
    recall: np.ndarray,
    thresholds: np.ndarray,
    ranges: list[str],
    limits: list[int],
    cats: list[int],
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    last = len(limits) - 1

    def ap(threshold: float | None = None, area: str = "all") -> float:
        if area not in ranges:
            return -1.0
        s = precision[..., ranges.index(area), last]
        if threshold is not None:
            hit = np.flatnonzero(np.isclose(thresholds, threshold))
            if not len(hit):
                return -1.0
            s = s[hit]
        return _mean_defined(s)

    def ar(limit_index: int, area: str = "all") -> float:
        if area not in ranges:
            return -1.0
        return _mean_defined(recall[:, :, ranges.index(area), limit_index])

    out["AP"] = ap()
    out["AP50"] = ap(0.5)
    out["AP75"] = ap(0.75)
    out["APs"], out["APm"], out["APl"] = ap(area="small"), ap(area="medium"), ap(area="large")
    for mi, limit in enumerate(limits):
        out[f"AR{limit}"] = ar(mi)
    out["ARs"], out["ARm"], out["ARl"] = ar(last, "small"), ar(last, "medium"), ar(last, "large")
    out["precision"] = precision
    out["recall"] = recall
    out["categories"] = cats
    return out


def match_instances(prediction: Any, truth: Any, *, iou_threshold: float = 0.5) -> dict[str, float]:
    """Match predicted to true instances one to one at an IoU threshold and count.

    A pair may match when its IoU is at least ``iou_threshold``; the matching has the most pairs
    and, among those, the largest total IoU (above 0.5 every matching is the same). Categories are
    not compared.

    Returns
    -------
    dict
        ``tp, fp, fn, precision, recall, f1``, ``accuracy`` = TP / (TP + FP + FN) (the DSB2018 and
        StarDist "accuracy"), ``mean_matched_iou`` and ``panoptic_quality``
        (sum of matched IoU over TP + FP/2 + FN/2).

    Examples
    --------
    >>> t = np.zeros((6, 6), np.int32); t[:3, :3] = 1; t[3:, 3:] = 2
    >>> p = np.zeros((6, 6), np.int32); p[:3, :3] = 5
    >>> r = match_instances(p, t)
    >>> r["tp"], r["fn"], r["recall"]
    (1, 1, 0.5)
    """
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
    inter, area_p, area_t = instance_overlaps(prediction, truth)
    iou = _iou(inter, area_p, area_t, np.zeros(len(area_t), bool))
    return match_counts(iou, iou_threshold)


def match_counts(iou: np.ndarray, iou_threshold: float) -> dict[str, Any]:
    """Counts of :func:`match_instances` from a (P, G) IoU matrix."""
    n_p, n_g = iou.shape
    ok = iou >= iou_threshold
    if iou_threshold > 0.5:
        # Above 0.5 a prediction can overlap at most one truth by that much: no choice to make.
        rows, cols = np.nonzero(ok)
    elif ok.any():
        # Most pairs first, then most IoU: every valid pair is worth more than any IoU sum.
        weight = np.where(ok, iou + (min(n_p, n_g) + 1), 0.0)
        rows, cols = linear_sum_assignment(weight, maximize=True)
        keep = ok[rows, cols]
        rows, cols = rows[keep], cols[keep]
    else:
        rows = cols = np.zeros(0, np.intp)
    tp = len(rows)
    fp, fn = n_p - tp, n_g - tp
    matched_iou = float(iou[rows, cols].sum())
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": ratio(tp, n_p),
        "recall": ratio(tp, n_g),
        "f1": ratio(2 * tp, n_p + n_g),
        "accuracy": ratio(tp, tp + fp + fn),
        "mean_matched_iou": ratio(matched_iou, tp),
        "panoptic_quality": ratio(matched_iou, tp + fp / 2 + fn / 2),
        "matched_iou_sum": matched_iou,
    }
