"""Semantic segmentation metrics: count a confusion matrix, then reduce with an explicit policy.

Counting and reducing are separate so that a dataset can be scored image by image without keeping
the images: add the counts (``pooled``: dataset-wide counts, then the scores) or average the
scores (``per_image``: each image's scores, then their mean). The two policies give different
figures; published numbers usually pool.

A class that appears neither in the truth nor in the prediction of the pixels counted has no IoU
(0 / 0); it is *excluded* from means rather than counted as 0 or 1. Truth pixels equal to
``ignore_index`` (or void in a truth :class:`Segmentation`) are not counted at all. A prediction
outside ``0..num_classes-1`` (or void) is a miss: a false negative for the truth class and a false
positive for none.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..result import Segmentation
from ._inputs import same_shape

__all__ = ["SemanticCounts", "confusion_matrix", "semantic_counts", "semantic_scores"]

Aggregation = Literal["pooled", "per_image"]


def _class_map(value: Any, name: str, ignore_index: int | None) -> np.ndarray:
    if isinstance(value, Segmentation):
        if value.kind == "regions":
            raise ValueError(f"{name} is a regions result: it has no classes to score")
        # Void pixels become -1: not counted in a truth, a miss in a prediction.
        return value.class_map(void=-1)
    array = np.asarray(value)
    if array.ndim not in (2, 3):
        raise ValueError(f"{name} must be an (H, W) class index image or an (N, H, W) batch of them, "
                         f"got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == bool):
        raise TypeError(f"{name} must hold integer class indices, got dtype {array.dtype}")
    return array


def confusion_matrix(
    prediction: Any, truth: Any, *, num_classes: int, ignore_index: int | None = None
) -> np.ndarray:
    """Pixel counts ``cm[t, p]`` of truth class ``t`` predicted as class ``p``.

    Parameters
    ----------
    prediction, truth : (H, W) int ndarray or Segmentation
        Class index images (a semantic, instance or panoptic result is reduced to its class map).
    num_classes : int
        Number of classes; valid indices are ``0..num_classes-1``.
    ignore_index : int, optional
        Truth value of pixels not to count (for example 255 in VOC, 11 in CamVid).

    Returns
    -------
    (num_classes, num_classes) int64 ndarray
        Predictions outside the valid range are not in the matrix; see :func:`semantic_counts`.

    Examples
    --------
    >>> confusion_matrix(np.array([[0, 1], [1, 1]]), np.array([[0, 0], [1, 2]]), num_classes=3,
    ...                  ignore_index=2)
    array([[1, 1, 0],
           [0, 1, 0],
           [0, 0, 0]])
    """
    return semantic_counts(prediction, truth, num_classes=num_classes, ignore_index=ignore_index).confusion


def semantic_counts(
    prediction: Any, truth: Any, *, num_classes: int, ignore_index: int | None = None
) -> SemanticCounts:
    """Count one image, or an (N, H, W) batch of equally sized ones: the confusion matrix and misses.

    Examples
    --------
    >>> batch = np.array([[[0, 1]], [[1, 1]]])  # two 1x2 images
    >>> semantic_counts(batch, np.ones_like(batch), num_classes=2).confusion.tolist()
    [[0, 0], [1, 3]]
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    pred = _class_map(prediction, "prediction", ignore_index)
    true = _class_map(truth, "truth", ignore_index)
    same_shape(pred, true)
    true = true.ravel().astype(np.int64)
    pred = pred.ravel().astype(np.int64)
    keep = (true >= 0) & (true < num_classes)
    if ignore_index is not None:
        keep &= true != ignore_index
    bad = true[~keep]
    bad = bad[bad >= 0]
    if ignore_index is not None:
        bad = bad[bad != ignore_index]
    if bad.size:
        raise ValueError(
            f"truth holds class {int(bad[0])}, outside 0..{num_classes - 1} and not the ignore index "
            f"{ignore_index}"
        )
    true = true[keep]
    pred = pred[keep]
    # Predictions outside the valid range become an extra "missed" column.
    pred = np.where((pred >= 0) & (pred < num_classes), pred, num_classes)
    full = np.bincount(true * (num_classes + 1) + pred, minlength=num_classes * (num_classes + 1))
    full = full.reshape(num_classes, num_classes + 1)
    return SemanticCounts(full[:, :num_classes].copy(), full[:, num_classes].copy())


@dataclass
class SemanticCounts:
    """A confusion matrix (truth rows, prediction columns) and per-class missed pixels."""

    confusion: np.ndarray
    missed: np.ndarray

    def __post_init__(self) -> None:
        self.confusion = np.asarray(self.confusion, np.int64)
        self.missed = np.asarray(self.missed, np.int64)
        c = self.confusion
        if c.ndim != 2 or c.shape[0] != c.shape[1]:
            raise ValueError(f"confusion must be square, got shape {c.shape}")
        if self.missed.shape != (c.shape[0],):
            raise ValueError(f"missed must have shape ({c.shape[0]},), got {self.missed.shape}")

    def __add__(self, other: SemanticCounts) -> SemanticCounts:
        if self.confusion.shape != other.confusion.shape:
            raise ValueError(
                f"cannot add counts of {self.confusion.shape[0]} and {other.confusion.shape[0]} classes"
            )
        return SemanticCounts(self.confusion + other.confusion, self.missed + other.missed)

    @property
    def tp(self) -> np.ndarray:
        return np.diag(self.confusion).copy()

    @property
    def fp(self) -> np.ndarray:
        return self.confusion.sum(0) - self.tp

    @property
    def fn(self) -> np.ndarray:
        return self.confusion.sum(1) + self.missed - self.tp


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1), np.nan)


def _nanmean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


def scores_from_counts(counts: SemanticCounts) -> dict[str, Any]:
    """Scores of one set of counts: per-class arrays (NaN where undefined) and their summaries."""
    tp = counts.tp.astype(np.float64)
    fp = counts.fp.astype(np.float64)
    fn = counts.fn.astype(np.float64)
    truth_pixels = tp + fn
    total = truth_pixels.sum()
    iou = _divide(tp, tp + fp + fn)
    dice = _divide(2 * tp, 2 * tp + fp + fn)
    accuracy = _divide(tp, truth_pixels)
    precision = _divide(tp, tp + fp)
    frequency = truth_pixels / total if total else np.zeros_like(tp)
    return {
        "pixel_accuracy": float(tp.sum() / total) if total else float("nan"),
        "mean_accuracy": _nanmean(accuracy),
        "miou": _nanmean(iou),
        "fwiou": float(np.nansum(frequency * iou)) if total else float("nan"),
        "mean_dice": _nanmean(dice),
        "per_class": {"iou": iou, "dice": dice, "accuracy": accuracy, "precision": precision},
    }


def semantic_scores(
    counts: SemanticCounts | list[SemanticCounts], *, aggregation: Aggregation = "pooled"
) -> dict[str, Any]:
    """Reduce counts to scores: pixel accuracy, mean class accuracy, IoU, mIoU, fwIoU, Dice.

    Parameters
    ----------
    counts : SemanticCounts or list of SemanticCounts
        One set of counts, or one per image.
    aggregation : {"pooled", "per_image"}
        ``pooled`` adds the counts of all images and scores the sum; ``per_image`` scores each image
        and averages the scores over the images where they are defined.

    Examples
    --------
    >>> c = semantic_counts(np.array([[0, 1]]), np.array([[0, 0]]), num_classes=2)
    >>> semantic_scores(c)["miou"]   # class 0: IoU 1/2; class 1: predicted, never true, IoU 0
    0.25
    """
    items = counts if isinstance(counts, list) else [counts]
    if not items:
        raise ValueError("no counts to score")
    if aggregation == "pooled":
        total = items[0]
        for item in items[1:]:
            total = total + item
        return scores_from_counts(total)
    if aggregation != "per_image":
        raise ValueError(f"aggregation must be 'pooled' or 'per_image', got {aggregation!r}")
    each = [scores_from_counts(item) for item in items]
    out: dict[str, Any] = {}
    for key in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou", "mean_dice"):
        out[key] = _nanmean(np.array([e[key] for e in each]))
    out["per_class"] = {}
    for key in ("iou", "dice", "accuracy", "precision"):
        stack = np.stack([e["per_class"][key] for e in each])
        # An all-NaN column (a class defined in no image) is a documented NaN, not a warning.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out["per_class"][key] = np.nanmean(stack, axis=0)
    return out

