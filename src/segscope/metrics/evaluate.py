"""One entry point for every task: :func:`evaluate` and the streaming :class:`Evaluator`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..io.panoptic import BsdsGroundTruth
from ..result import Segmentation
from ._inputs import label_array
from .instance import COCO_AREA_RANGES, _iou, coco_ap_from_prepared, match_counts, prepare_instances
from .panoptic import PanopticCounts, panoptic_counts, panoptic_quality
from .regions import adjusted_rand_index, covering, probabilistic_rand_index, variation_of_information
from .report import MetricReport
from .semantic import SemanticCounts, scores_from_counts, semantic_counts, semantic_scores

__all__ = ["TASKS", "Evaluator", "evaluate"]

Task = Literal["semantic", "instance", "panoptic", "regions"]
TASKS: tuple[str, ...] = ("semantic", "instance", "panoptic", "regions")


def _infer_task(truth: Any) -> str:
    if isinstance(truth, Segmentation):
        return truth.kind
    if isinstance(truth, (BsdsGroundTruth, list, tuple)):
        return "regions"
    raise ValueError("cannot tell the task from a plain array: pass task='semantic', 'instance', ...")


class Evaluator:
    """Score a dataset one image at a time: :meth:`update` per image, then :meth:`compute`.

    Parameters
    ----------
    task : {"semantic", "instance", "panoptic", "regions"}, optional
        Inferred from the first truth when it is a :class:`Segmentation` (its ``kind``).
    num_classes : int, optional
        Semantic: the number of classes. Defaults to the length of the truth's ``class_names``,
        else grows with the largest class index seen.
    ignore_index : int, optional
        Semantic: truth value of pixels not to count.
    class_names : sequence of str, optional
        Names for per-class rows.
    aggregation : {"pooled", "per_image"}
        Semantic: add the counts of all images before scoring, or average per-image scores.
    iou_threshold : float
        Instance: IoU at which a predicted and a true object match for precision, recall, F1.
    max_detections : sequence of int
        Instance: COCO's detection limits per image; AP uses the last.

    Examples
    --------
    >>> ev = Evaluator(task="semantic", num_classes=2)
    >>> ev.update(np.array([[0, 1]]), np.array([[0, 0]]))
    >>> ev.compute()["miou"]
    0.25
    """

    def __init__(
        self,
        *,
        task: Task | str | None = None,
        num_classes: int | None = None,
        ignore_index: int | None = None,
        class_names: Sequence[str] | None = None,
        aggregation: Literal["pooled", "per_image"] = "pooled",
        iou_threshold: float = 0.5,
        max_detections: Sequence[int] = (1, 10, 100),
    ) -> None:
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if aggregation not in ("pooled", "per_image"):
            raise ValueError(f"aggregation must be 'pooled' or 'per_image', got {aggregation!r}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if not 0 <= iou_threshold <= 1:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
        self.task: str | None = task
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.aggregation = aggregation
        self.iou_threshold = iou_threshold
        self.max_detections = tuple(int(m) for m in max_detections)
        self.reset()

    def reset(self) -> None:
        """Forget every image counted so far."""
        self._semantic: list[SemanticCounts] = []
        self._prepared: list[Any] = []
        self._matches: list[dict[str, Any]] = []
        self._panoptic: list[PanopticCounts] = []
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None) -> None:
        """Count one image.

        ``truth`` is a :class:`Segmentation` or label image; for ``regions`` it may also be a list
        of partitions (several annotators) or a :class:`~segscope.io.BsdsGroundTruth`. ``crowd``
        flags crowd truth instances (instance and panoptic).
        """
        task = self.task or _infer_task(truth)
        if self.task is None:
            self.task = task
        row: dict[str, Any] = {"name": name if name is not None else str(len(self._rows))}
        if task == "semantic":
            row.update(self._update_semantic(prediction, truth))
        elif task == "instance":
            row.update(self._update_instance(prediction, truth, crowd, row["name"]))
        elif task == "panoptic":
            counts = panoptic_counts(prediction, truth, crowd=crowd)
            self._panoptic.append(counts)
            row.update({k: v for k, v in panoptic_quality(counts)["all"].items() if k != "n"})
        else:
            row.update(_region_scores(prediction, truth))
        self._rows.append(row)

    def _update_semantic(self, prediction: Any, truth: Any) -> dict[str, Any]:
        if self.class_names is None and isinstance(truth, Segmentation) and truth.class_names:
            self.class_names = list(truth.class_names)
        n = self.num_classes or (len(self.class_names) if self.class_names else None)
        if n is None:
            n = _largest_class(prediction, truth, self.ignore_index) + 1
            n = max(n, self._semantic[0].confusion.shape[0] if self._semantic else 1)
            if self._semantic and n > self._semantic[0].confusion.shape[0]:
                self._semantic = [_pad(c, n) for c in self._semantic]
        counts = semantic_counts(prediction, truth, num_classes=n, ignore_index=self.ignore_index)
        self._semantic.append(counts)
        scores = scores_from_counts(counts)
        return {k: scores[k] for k in ("pixel_accuracy", "mean_accuracy", "miou", "mean_dice")}

    def _update_instance(self, prediction: Any, truth: Any, crowd: Any, name: str) -> dict[str, Any]:
        prepared = prepare_instances(prediction, truth, crowd=crowd, name=name)
        self._prepared.append(prepared)
        iou = _iou(prepared.inter, prepared.area_p, prepared.area_t, np.zeros(len(prepared.area_t), bool))
        # Crowd truths are neither to be found nor false negatives.
        keep = ~prepared.crowd
        match = match_counts(iou[:, keep], self.iou_threshold)
        self._matches.append(match)
        return {k: match[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1", "mean_matched_iou")}

    def compute(self) -> MetricReport:
        """The report over every image counted so far."""
        if not self._rows:
            raise ValueError("no images counted: call update() first")
        task = self.task or "semantic"
        if task == "semantic":
            return self._semantic_report()
        if task == "instance":
            return self._instance_report()
        if task == "panoptic":
            scores = panoptic_quality(self._panoptic, class_names=self.class_names)
            flat = {f"{g}_{k}" if g != "all" else k: v for g in ("all", "things", "stuff")
                    for k, v in scores[g].items() if k != "n"}
            return MetricReport("panoptic", flat, scores["per_class"], self._rows, {})
        keys = [k for k in self._rows[0] if k != "name"]
        means = {k: float(np.mean([r[k] for r in self._rows])) for k in keys}
        return MetricReport("regions", means, {}, self._rows, {"mean over": "images"})

    def _semantic_report(self) -> MetricReport:
        n = max(c.confusion.shape[0] for c in self._semantic)
        counts = [_pad(c, n) for c in self._semantic]
        scores = semantic_scores(counts, aggregation=self.aggregation)
        names = self.class_names or [str(k) for k in range(n)]
        total = counts[0]
        for c in counts[1:]:
            total = total + c
        per_class = {}
        for k in range(n):
            name = names[k] if k < len(names) else str(k)
            per_class[name] = {key: float(scores["per_class"][key][k]) for key in ("iou", "dice", "accuracy")}
            per_class[name]["pixels"] = int(total.tp[k] + total.fn[k])
        head = {k: scores[k] for k in ("pixel_accuracy", "mean_accuracy", "miou", "fwiou", "mean_dice")}
        settings = {"aggregation": self.aggregation, "ignore_index": self.ignore_index, "classes": n}
        return MetricReport("semantic", head, per_class, self._rows, settings, total.confusion)

    def _instance_report(self) -> MetricReport:
        ap = coco_ap_from_prepared(self._prepared, max_detections=self.max_detections,
                                   area_ranges=COCO_AREA_RANGES)
        scores = {k: v for k, v in ap.items() if isinstance(v, float)}
        tp = sum(m["tp"] for m in self._matches)
        fp = sum(m["fp"] for m in self._matches)
        fn = sum(m["fn"] for m in self._matches)
        iou_sum = sum(m["matched_iou_sum"] for m in self._matches)
        t = f"@{self.iou_threshold:g}"
        scores.update(
            {
                f"precision{t}": tp / (tp + fp) if tp + fp else 0.0,
                f"recall{t}": tp / (tp + fn) if tp + fn else 0.0,
                f"f1{t}": 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
                f"accuracy{t}": tp / (tp + fp + fn) if tp + fp + fn else 0.0,
                f"mean_matched_iou{t}": iou_sum / tp if tp else 0.0,
                f"pq{t}": iou_sum / (tp + fp / 2 + fn / 2) if tp + fp + fn else 0.0,
            }
        )
        settings = {"iou_threshold": self.iou_threshold, "max_detections": list(self.max_detections),
                    "objects": int(sum(len(p.area_t) for p in self._prepared))}
        return MetricReport("instance", scores, {}, self._rows, settings)


def _largest_class(prediction: Any, truth: Any, ignore_index: int | None) -> int:
    top = 0
    for value in (prediction, truth):
        if isinstance(value, Segmentation):
            cats = value.categories
            top = max(top, int(cats.max(initial=0)))
        else:
            arr = np.asarray(value)
            if ignore_index is not None:
                arr = arr[arr != ignore_index]
            top = max(top, int(arr.max(initial=0)))
    return top


def _pad(counts: SemanticCounts, n: int) -> SemanticCounts:
    k = counts.confusion.shape[0]
    if k == n:
        return counts
    confusion = np.zeros((n, n), np.int64)
    confusion[:k, :k] = counts.confusion
    missed = np.zeros(n, np.int64)
    missed[:k] = counts.missed
    return SemanticCounts(confusion, missed)


def _region_scores(prediction: Any, truth: Any) -> dict[str, float]:
    if isinstance(truth, BsdsGroundTruth):
        truths = [s.labels for s in truth.segmentations]
    elif isinstance(truth, (list, tuple)):
        truths = [label_array(t, "truth") for t in truth]
    else:
        truths = [label_array(truth, "truth")]
    seg = label_array(prediction, "prediction")
    return {
        "pri": probabilistic_rand_index(seg, truths),
        "voi": float(np.mean([variation_of_information(seg, t) for t in truths])),
        "covering": covering(seg, truths),
        "ari": float(np.mean([adjusted_rand_index(seg, t) for t in truths])),
        "regions": len(np.unique(seg)),
    }


def evaluate(
    prediction: Any, truth: Any, *, task: Task | str | None = None, **options: Any
) -> MetricReport:
    """Score predictions against truths: one image, or a dataset given as two lists.

    ``options`` are those of :class:`Evaluator` (``num_classes``, ``ignore_index``,
    ``class_names``, ``aggregation``, ``iou_threshold``, ``max_detections``), plus ``crowd`` (one
    array per image, or one array for a single image) and ``names``.

    Examples
    --------
    >>> truth = np.array([[0, 0, 1, 1]])
    >>> evaluate(np.array([[0, 1, 1, 1]]), truth, task="semantic")["pixel_accuracy"]
    0.75
    """
    crowd = options.pop("crowd", None)
    names = options.pop("names", None)
    evaluator = Evaluator(task=task, **options)
    single = not isinstance(prediction, (list, tuple))
    if single:
        predictions, truths, crowds = [prediction], [truth], [crowd]
    else:
        predictions, truths = list(prediction), list(truth)
        if len(predictions) != len(truths):
            raise ValueError(f"{len(predictions)} predictions for {len(truths)} truths")
        crowds = list(crowd) if crowd is not None else [None] * len(predictions)
    names = list(names) if names is not None else [None] * len(predictions)
    for p, t, c, n in zip(predictions, truths, crowds, names, strict=True):
        evaluator.update(p, t, crowd=c, name=n)
    return evaluator.compute()
