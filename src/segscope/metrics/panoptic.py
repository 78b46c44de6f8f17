"""Panoptic quality (PQ), segmentation quality (SQ) and recognition quality (RQ).

The counting follows COCO panoptic's ``pq_compute`` rule for rule: a predicted and a true
segment of the same category match when their IoU exceeds 0.5, where the predicted pixels lying
on void truth (label 0) are left out of the union; crowd truth segments are never matched, and an
unmatched prediction is not a false positive when more than half of it lies on void or on a
crowd region of its own category.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..result import Segmentation
from ._inputs import same_shape
from ._policy import nanmean, ratio

__all__ = ["PanopticCounts", "panoptic_counts", "panoptic_quality"]


@dataclass
class PanopticCounts:
    """Per-category TP, FP, FN and sum of matched IoU, and whether each category is a thing."""

    tp: dict[int, int] = field(default_factory=dict)
    fp: dict[int, int] = field(default_factory=dict)
    fn: dict[int, int] = field(default_factory=dict)
    iou: dict[int, float] = field(default_factory=dict)
    is_thing: dict[int, bool] = field(default_factory=dict)

    def _bump(self, table: dict[int, Any], category: int, value: float = 1) -> None:
        table[category] = table.get(category, 0) + value

    def __add__(self, other: PanopticCounts) -> PanopticCounts:
        out = PanopticCounts()
        for name in ("tp", "fp", "fn", "iou"):
            mine, theirs = getattr(self, name), getattr(other, name)
            merged = dict(mine)
            for key, value in theirs.items():
                merged[key] = merged.get(key, 0) + value
            setattr(out, name, merged)
        out.is_thing = {**self.is_thing, **other.is_thing}
        return out

    @property
    def categories(self) -> list[int]:
        return sorted(set(self.tp) | set(self.fp) | set(self.fn))


def _as_panoptic(value: Any, name: str) -> Segmentation:
    if not isinstance(value, Segmentation):
        raise TypeError(f"panoptic quality needs segments with categories: the {name} must be a "
                        f"Segmentation (a COCO panoptic JSON or .npz results), got {type(value).__name__}")
    if value.kind == "regions":
        raise ValueError(f"{name} is a regions result: panoptic quality needs categories")
    return value


def panoptic_counts(
    prediction: Segmentation, truth: Segmentation, *, crowd: np.ndarray | None = None
) -> PanopticCounts:
    """Count one image: matches (IoU > 0.5, same category), false positives and negatives.

    ``crowd`` flags truth segments (in ``truth.ids`` order) that are crowd regions.
    """
    pred = _as_panoptic(prediction, "prediction")
    true = _as_panoptic(truth, "truth")
    same_shape(pred.labels, true.labels)
    is_crowd = np.zeros(len(true.ids), bool) if crowd is None else np.asarray(crowd, bool)
    if is_crowd.shape != (len(true.ids),):
        raise ValueError(f"crowd has shape {is_crowd.shape}, truth has {len(true.ids)} segments")
    counts = PanopticCounts()
    for seg in (true, pred):
        for c, thing in zip(seg.categories, seg.is_thing, strict=True):
            counts.is_thing.setdefault(int(c), bool(thing))

    # Joint histogram of (truth index, prediction index); index 0 is void on either side.
    t_index = np.zeros(int(true.labels.max(initial=0)) + 1, np.int64)
    p_index = np.zeros(int(pred.labels.max(initial=0)) + 1, np.int64)
    t_index[true.ids] = np.arange(1, len(true.ids) + 1)
    p_index[pred.ids] = np.arange(1, len(pred.ids) + 1)
    width = len(pred.ids) + 1
    joint = np.bincount(
        (t_index[true.labels] * width + p_index[pred.labels]).ravel(), minlength=(len(true.ids) + 1) * width
    ).reshape(len(true.ids) + 1, width)
    t_area = joint.sum(1)[1:]
    p_area = joint.sum(0)[1:]
    on_void = joint[0, 1:]
    t_cat, p_cat = true.categories, pred.categories

    matched_t = np.zeros(len(true.ids), bool)
    matched_p = np.zeros(len(pred.ids), bool)
    ti, pi = np.nonzero(joint[1:, 1:])
    for i, j in zip(ti, pi, strict=True):
        if is_crowd[i] or t_cat[i] != p_cat[j]:
            continue
        inter = joint[i + 1, j + 1]
        union = p_area[j] + t_area[i] - inter - on_void[j]
        iou = inter / union
        if iou > 0.5:
            c = int(t_cat[i])
            counts._bump(counts.tp, c)
            counts._bump(counts.iou, c, float(iou))
            matched_t[i] = matched_p[j] = True

    crowd_of: dict[int, int] = {}
    for t in range(len(true.ids)):
        if matched_t[t]:
            continue
        if is_crowd[t]:
            crowd_of[int(t_cat[t])] = t  # COCO keeps one crowd region per category
            continue
        counts._bump(counts.fn, int(t_cat[t]))
    for p in range(len(pred.ids)):
        if matched_p[p]:
            continue
        c = int(p_cat[p])
        ignored = int(on_void[p])
        if c in crowd_of:
            ignored += int(joint[crowd_of[c] + 1, p + 1])
        if ignored / p_area[p] > 0.5:
            continue
        counts._bump(counts.fp, c)
    for table in (counts.tp, counts.fp, counts.fn, counts.iou):
        for c in list(counts.is_thing):
            table.setdefault(c, 0)
    return counts


def panoptic_quality(
    counts: PanopticCounts | Sequence[PanopticCounts], *, class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """PQ, SQ and RQ overall, for things, for stuff and per category, from counts.

    A category counts in the averages when it has any TP, FP or FN; SQ of a category with no
    match is 0, as in COCO panoptic.

    References
    ----------
    .. [1] A. Kirillov, K. He, R. Girshick, C. Rother, P. Dollar, "Panoptic segmentation",
           CVPR 2019.

    Examples
    --------
    >>> from segscope import Segmentation
    >>> truth = Segmentation(np.array([[1, 1, 2, 2]]), "panoptic", ids=[1, 2], categories=[0, 1],
    ...                      is_thing=[False, True])
    >>> panoptic_quality(panoptic_counts(truth, truth))["all"]["pq"]
    1.0
    """
    if isinstance(counts, PanopticCounts):
        total = counts
    else:
        items = list(counts)
        if not items:
            raise ValueError("no counts to score")
        total = items[0]
        for item in items[1:]:
            total = total + item
    per_class: dict[str, dict[str, float]] = {}
    groups: dict[str, list[tuple[float, float, float]]] = {"all": [], "things": [], "stuff": []}
    for c in total.categories:
        tp, fp, fn = total.tp.get(c, 0), total.fp.get(c, 0), total.fn.get(c, 0)
        if tp + fp + fn == 0:
            continue
        iou = total.iou.get(c, 0.0)
        denominator = tp + 0.5 * fp + 0.5 * fn
        pq, sq, rq = iou / denominator, ratio(iou, tp), tp / denominator
        name = class_names[c] if class_names is not None and 0 <= c < len(class_names) else str(c)
        per_class[name] = {"pq": pq, "sq": sq, "rq": rq, "tp": tp, "fp": fp, "fn": fn}
        groups["all"].append((pq, sq, rq))
        groups["things" if total.is_thing.get(c, False) else "stuff"].append((pq, sq, rq))
    out: dict[str, Any] = {}
    for group, values in groups.items():
        if values:
            arr = np.array(values)
            out[group] = {"pq": nanmean(arr[:, 0]), "sq": nanmean(arr[:, 1]), "rq": nanmean(arr[:, 2]),
                          "n": len(values)}
        else:
            out[group] = {"pq": float("nan"), "sq": float("nan"), "rq": float("nan"), "n": 0}
    out["per_class"] = per_class
    return out
