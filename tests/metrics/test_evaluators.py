"""One evaluator per task behind one protocol; one zero-division policy; metrics read no files."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

import segscope
from segscope.metrics import Evaluator, evaluate
from segscope.metrics.evaluate import (
    InstanceEvaluator,
    MultiTaskEvaluator,
    PanopticEvaluator,
    RegionsEvaluator,
    SemanticEvaluator,
    TaskEvaluator,
)


def _instances(labels):
    labels = np.asarray(labels)
    ids = [int(i) for i in np.unique(labels) if i]
    return segscope.Segmentation.from_labels(labels, kind="instance", categories=dict.fromkeys(ids, 0))


def test_every_task_has_an_evaluator_behind_the_protocol():
    evaluators = [SemanticEvaluator(), InstanceEvaluator(), PanopticEvaluator(), RegionsEvaluator()]
    assert sorted(e.task for e in evaluators) == sorted(segscope.metrics.TASKS)
    assert all(isinstance(e, TaskEvaluator) for e in evaluators)


def test_an_empty_denominator_is_undefined_and_left_out_of_means():
    empty = _instances(np.zeros((4, 4), int))
    one = _instances(np.pad(np.ones((2, 2), int), 1))
    ev = Evaluator(task="instance")
    ev.update(empty, empty, name="nothing to find")
    ev.update(one, one, name="found")
    report = ev.compute()
    first = report.per_image[0]
    assert math.isnan(first["precision"]) and math.isnan(first["recall"]) and math.isnan(first["f1"])
    assert report["f1@0.5"] == 1.0  # the empty image neither helps nor hurts
    # Panoptic: no stuff segments at all leaves the stuff figures undefined, not 0.
    panoptic = one.to_panoptic()
    assert math.isnan(evaluate(panoptic, panoptic, task="panoptic")["stuff_pq"])
    # Semantic: a class absent from truth and prediction has no IoU and is left out of mIoU.
    zeros = np.zeros((2, 2), int)
    assert evaluate(zeros, zeros, task="semantic", num_classes=3)["miou"] == 1.0


def test_options_of_another_task_are_refused_by_name():
    with pytest.raises(TypeError, match="instance evaluation takes no num_classes"):
        Evaluator(task="instance", num_classes=3)
    with pytest.raises(TypeError, match="no_such_option"):
        Evaluator(no_such_option=1)


def test_several_tasks_score_the_same_predictions():
    truth = _instances(np.pad(np.ones((2, 2), int), 1)).to_panoptic()
    ev = MultiTaskEvaluator({"panoptic": PanopticEvaluator(), "semantic": SemanticEvaluator(num_classes=1)})
    ev.update(truth, truth)
    reports = ev.compute()
    assert reports["panoptic"]["pq"] == 1.0 and reports["semantic"]["miou"] == 1.0


def test_metrics_read_no_files():
    folder = Path(segscope.__file__).parent / "metrics"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                from_io = (node.level == 2 and module.split(".")[0] == "io") \
                    or module.startswith("segscope.io")
                assert not from_io, f"{path.name} imports {'.' * node.level}{module}"
