"""One evaluator per task behind one protocol, and :func:`evaluate` for all of them.

Each task's evaluator counts one image at a time (:meth:`~TaskEvaluator.update`), then reduces
(:meth:`~TaskEvaluator.compute`) to a :class:`MetricReport`. :class:`Evaluator` picks the one for a
task (given, or read from the first truth's ``kind``); :class:`MultiTaskEvaluator` scores the
same predictions for several tasks at once. Reading files is not done here: truths and
predictions arrive as :class:`~segscope.Segmentation` objects or arrays.

Zero division, for every task: a ratio whose denominator is zero (a class with no pixels, an
image with no objects predicted or to find) is undefined, NaN. Undefined values are left out of
every mean, tables show them as ``-`` and JSON as ``null``; a mean of nothing defined is NaN.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ..groundtruth import BsdsGroundTruth
from ..result import KINDS, Kind, Segmentation
from ._inputs import label_array
from ._policy import nanmean, ratio
from .instance import COCO_AREA_RANGES, _iou, coco_ap_from_prepared, match_counts, prepare_instances
from .panoptic import PanopticCounts, panoptic_counts, panoptic_quality
from .regions import adjusted_rand_index, covering, probabilistic_rand_index, variation_of_information
from .report import MetricReport
from .semantic import SemanticCounts, scores_from_counts, semantic_counts, semantic_scores

__all__ = ["TASKS", "Evaluator", "InstanceEvaluator", "MultiTaskEvaluator", "PanopticEvaluator",
           "RegionsEvaluator", "SemanticEvaluator", "TaskEvaluator", "evaluate"]

Task = Kind
TASKS: tuple[str, ...] = KINDS
"""The tasks, as :data:`segscope.result.KINDS` names them."""


@runtime_checkable
class TaskEvaluator(Protocol):
    """What every evaluator offers: count an image, reduce to a report, report on one image."""

    task: str

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None
               ) -> dict[str, Any]:
        """Count one image; returns its row of per-image figures."""
        ...

    def compute(self) -> MetricReport:
        """The report over every image counted so far."""
        ...

    def __len__(self) -> int: ...


_EVALUATORS: dict[str, Callable[..., TaskEvaluator]] = {}


def evaluates(task: str) -> Callable[[type], type]:
    """Class decorator: the evaluator of ``task`` (one per task)."""

    def register(cls: type) -> type:
        if task not in KINDS:
            raise ValueError(f"task must be one of {KINDS}, got {task!r}")
        _EVALUATORS[task] = cls
        return cls

    return register


class _Rows:
    """Per-image rows, shared by every evaluator."""

    def __init__(self) -> None:
        self._rows: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self._rows)

    def _row(self, name: str | None, figures: dict[str, Any]) -> dict[str, Any]:
        row = {"name": name if name is not None else str(len(self._rows)), **figures}
        self._rows.append(row)
        return row

    def _check_counted(self) -> None:
        if not self._rows:
            raise ValueError("no images counted: call update() first")


@evaluates("semantic")
class SemanticEvaluator(_Rows):
    """Confusion counts per image, reduced pooled (dataset-wide counts) or per image (mean of scores).

    ``num_classes`` defaults to the truth's class names, else grows with the largest class seen.
    """

    task = "semantic"

    def __init__(self, *, num_classes: int | None = None, ignore_index: int | None = None,
                 class_names: Sequence[str] | None = None,
                 aggregation: Literal["pooled", "per_image"] = "pooled") -> None:
        super().__init__()
        if aggregation not in ("pooled", "per_image"):
            raise ValueError(f"aggregation must be 'pooled' or 'per_image', got {aggregation!r}")
        if num_classes is not None and num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = list(class_names) if class_names is not None else None
        self.aggregation = aggregation
        self._counts: list[SemanticCounts] = []

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None
               ) -> dict[str, Any]:
        if self.class_names is None and isinstance(truth, Segmentation) and truth.class_names:
            self.class_names = list(truth.class_names)
        n = self.num_classes or (len(self.class_names) if self.class_names else None)
        if n is None:
            n = max(_largest_class(prediction, truth, self.ignore_index) + 1,
                    self._counts[0].confusion.shape[0] if self._counts else 1)
        counts = semantic_counts(prediction, truth, num_classes=n, ignore_index=self.ignore_index)
        self._counts.append(counts)
        scores = scores_from_counts(counts)
        return self._row(name, {k: scores[k] for k in ("pixel_accuracy", "mean_accuracy", "miou",
                                                       "mean_dice")})

    def compute(self) -> MetricReport:
        self._check_counted()
        n = max(c.confusion.shape[0] for c in self._counts)
        counts = [_pad(c, n) for c in self._counts]
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


@evaluates("instance")
class InstanceEvaluator(_Rows):
    """COCO mask AP (equal to pycocotools) and matching at one IoU: precision, recall, F1, PQ."""

    task = "instance"

    def __init__(self, *, iou_threshold: float = 0.5, max_detections: Sequence[int] = (1, 10, 100)) -> None:
        super().__init__()
        if not 0 <= iou_threshold <= 1:
            raise ValueError(f"iou_threshold must lie in [0, 1], got {iou_threshold}")
        self.iou_threshold = iou_threshold
        self.max_detections = tuple(int(m) for m in max_detections)
        self._prepared: list[Any] = []
        self._matches: list[dict[str, Any]] = []

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None
               ) -> dict[str, Any]:
        row_name = name if name is not None else str(len(self._rows))
        prepared = prepare_instances(prediction, truth, crowd=crowd, name=row_name)
        self._prepared.append(prepared)
        iou = _iou(prepared.inter, prepared.area_p, prepared.area_t, np.zeros(len(prepared.area_t), bool))
        # Crowd truths are neither to be found nor false negatives.
        match = match_counts(iou[:, ~prepared.crowd], self.iou_threshold)
        self._matches.append(match)
        return self._row(row_name, {k: match[k] for k in ("tp", "fp", "fn", "precision", "recall", "f1",
                                                          "mean_matched_iou")})

    def compute(self) -> MetricReport:
        self._check_counted()
        ap = coco_ap_from_prepared(self._prepared, max_detections=self.max_detections,
                                   area_ranges=COCO_AREA_RANGES)
        scores = {k: v for k, v in ap.items() if isinstance(v, float)}
        tp = sum(m["tp"] for m in self._matches)
        fp = sum(m["fp"] for m in self._matches)
        fn = sum(m["fn"] for m in self._matches)
        iou_sum = sum(m["matched_iou_sum"] for m in self._matches)
        t = f"@{self.iou_threshold:g}"
        scores.update({
            f"precision{t}": ratio(tp, tp + fp),
            f"recall{t}": ratio(tp, tp + fn),
            f"f1{t}": ratio(2 * tp, 2 * tp + fp + fn),
            f"accuracy{t}": ratio(tp, tp + fp + fn),
            f"mean_matched_iou{t}": ratio(iou_sum, tp),
            f"pq{t}": ratio(iou_sum, tp + fp / 2 + fn / 2),
        })
        settings = {"iou_threshold": self.iou_threshold, "max_detections": list(self.max_detections),
                    "objects": int(sum(len(p.area_t) for p in self._prepared))}
        return MetricReport("instance", scores, {}, self._rows, settings)


@evaluates("panoptic")
class PanopticEvaluator(_Rows):
    """Panoptic quality (PQ = SQ x RQ) over all, thing and stuff categories, and per class."""

    task = "panoptic"

    def __init__(self, *, class_names: Sequence[str] | None = None) -> None:
        super().__init__()
        self.class_names = list(class_names) if class_names is not None else None
        self._counts: list[PanopticCounts] = []

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None
               ) -> dict[str, Any]:
        counts = panoptic_counts(prediction, truth, crowd=crowd)
        self._counts.append(counts)
        return self._row(name, {k: v for k, v in panoptic_quality(counts)["all"].items() if k != "n"})

    def compute(self) -> MetricReport:
        self._check_counted()
        scores = panoptic_quality(self._counts, class_names=self.class_names)
        flat = {f"{g}_{k}" if g != "all" else k: v for g in ("all", "things", "stuff")
                for k, v in scores[g].items() if k != "n"}
        return MetricReport("panoptic", flat, scores["per_class"], self._rows, {})


@evaluates("regions")
class RegionsEvaluator(_Rows):
    """Partition agreement with one or several human truths: PRI, VOI, covering, ARI; image means.

    A truth may be one partition or a sequence of them (several annotators, a
    :class:`~segscope.groundtruth.BsdsGroundTruth`).
    """

    task = "regions"

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None
               ) -> dict[str, Any]:
        if isinstance(truth, BsdsGroundTruth | list | tuple):
            truths = [label_array(t, "truth") for t in truth]
        else:
            truths = [label_array(truth, "truth")]
        seg = label_array(prediction, "prediction")
        return self._row(name, {
            "pri": probabilistic_rand_index(seg, truths),
            "voi": float(np.mean([variation_of_information(seg, t) for t in truths])),
            "covering": covering(seg, truths),
            "ari": float(np.mean([adjusted_rand_index(seg, t) for t in truths])),
            "regions": len(np.unique(seg)),
        })

    def compute(self) -> MetricReport:
        self._check_counted()
        keys = [k for k in self._rows[0] if k != "name"]
        means = {k: nanmean([r[k] for r in self._rows]) for k in keys}
        return MetricReport("regions", means, {}, self._rows, {"mean over": "images"})


def evaluator_for(task: str, **options: Any) -> TaskEvaluator:
    """The evaluator of ``task``, given the options it takes (others are ignored when None)."""
    if task not in _EVALUATORS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    cls = _EVALUATORS[task]
    takes = set(inspect.signature(cls).parameters)
    unused = sorted(k for k, v in options.items() if k not in takes and v is not None)
    if unused and any(options[k] != _DEFAULTS.get(k) for k in unused):
        raise TypeError(f"{task} evaluation takes no {', '.join(unused)}; it takes {sorted(takes) or 'none'}")
    return cls(**{k: v for k, v in options.items() if k in takes})


# Options of one evaluator that the others may be handed at their defaults (one CLI serves all).
_DEFAULTS: dict[str, Any] = {"aggregation": "pooled", "iou_threshold": 0.5, "max_detections": (1, 10, 100)}


def _infer_task(truth: Any) -> str:
    if isinstance(truth, Segmentation):
        return truth.kind
    if isinstance(truth, BsdsGroundTruth | list | tuple):
        return "regions"
    raise ValueError("cannot tell the task from a plain array: pass task='semantic', 'instance', ...")


class Evaluator:
    """Score a dataset one image at a time: :meth:`update` per image, then :meth:`compute`.

    The work is done by the task's evaluator (:class:`SemanticEvaluator`,
    :class:`InstanceEvaluator`, :class:`PanopticEvaluator`, :class:`RegionsEvaluator`), made
    when the task is known: given, or read from the first truth's ``kind``.

    Parameters
    ----------
    task : {"semantic", "instance", "panoptic", "regions"}, optional
        Inferred from the first truth when it is a :class:`Segmentation` (its ``kind``).
    **options
        The task evaluator's options: ``num_classes``, ``ignore_index``, ``class_names`` and
        ``aggregation`` (semantic), ``iou_threshold`` and ``max_detections`` (instance),
        ``class_names`` (panoptic).

    Examples
    --------
    >>> ev = Evaluator(task="semantic", num_classes=2)
    >>> ev.update(np.array([[0, 1]]), np.array([[0, 0]]))
    >>> ev.compute()["miou"]
    0.25
    """

    def __init__(self, *, task: Task | str | None = None, **options: Any) -> None:
        if task is not None and task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        self._options = options
        self._evaluator: TaskEvaluator | None = None
        if task is not None:
            self._evaluator = evaluator_for(task, **options)
        else:  # check the options now: some task must take them all
            refusals = []
            for each in TASKS:
                try:
                    evaluator_for(each, **options)
                    break
                except TypeError as exc:
                    refusals.append(str(exc))
            else:
                raise TypeError("; ".join(refusals))

    @property
    def task(self) -> str | None:
        return None if self._evaluator is None else self._evaluator.task

    def __len__(self) -> int:
        return 0 if self._evaluator is None else len(self._evaluator)

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None) -> None:
        """Count one image.

        ``truth`` is a :class:`Segmentation` or label image; for ``regions`` it may also be a list
        of partitions (several annotators). ``crowd`` flags crowd truth instances.
        """
        if self._evaluator is None:
            self._evaluator = evaluator_for(_infer_task(truth), **self._options)
        self._evaluator.update(prediction, truth, crowd=crowd, name=name)

    def compute(self) -> MetricReport:
        """The report over every image counted so far."""
        if self._evaluator is None:
            raise ValueError("no images counted: call update() first")
        return self._evaluator.compute()


class MultiTaskEvaluator:
    """The same predictions scored for several tasks (a panoptic result as panoptic and semantic).

    Examples
    --------
    >>> ev = MultiTaskEvaluator({"semantic": SemanticEvaluator(num_classes=2),
    ...                          "regions": RegionsEvaluator()})
    >>> ev.update(np.array([[0, 1]]), np.array([[0, 1]]))
    >>> sorted(ev.compute())
    ['regions', 'semantic']
    """

    def __init__(self, evaluators: Mapping[str, TaskEvaluator]) -> None:
        if not evaluators:
            raise ValueError("give at least one evaluator")
        self.evaluators = dict(evaluators)

    def update(self, prediction: Any, truth: Any, *, crowd: Any = None, name: str | None = None) -> None:
        for evaluator in self.evaluators.values():
            evaluator.update(prediction, truth, crowd=crowd, name=name)

    def compute(self) -> dict[str, MetricReport]:
        return {key: evaluator.compute() for key, evaluator in self.evaluators.items()}


def _largest_class(prediction: Any, truth: Any, ignore_index: int | None) -> int:
    top = 0
    for value in (prediction, truth):
        if isinstance(value, Segmentation):
            top = max(top, int(value.categories.max(initial=0)))
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
