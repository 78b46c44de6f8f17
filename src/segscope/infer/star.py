"""The predictor of star-convex polygon models (``stardist``): probabilities and ray distances to
instances, through :func:`segscope.star.decode_polygons`."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..result import Segmentation
from ..star import decode_polygons
from .instances import InstanceSegmenter
from .predictor import predicts

__all__ = ["StarPredictor"]


@predicts("star_polygons")
class StarPredictor(InstanceSegmenter):
    """Star-convex polygon models: every pixel whose object probability is above
    ``score_threshold`` proposes its polygon, and greedy non-maximum suppression at
    :attr:`nms_threshold` IoU keeps the most probable. Scores are the probabilities at the kept
    polygons' centres."""

    task = "instance"
    default_score = 0.5
    nms_threshold = 0.4
    """Candidates overlapping a kept polygon by more IoU than this are dropped (StarDist's 0.4)."""

    def _find(self, x: Any, score_threshold: float, min_area: int, output: str) -> Segmentation:
        found = self.model(x)
        probability = found.probability[0, 0].sigmoid().cpu().numpy()
        distances = found.distances[0].permute(1, 2, 0).cpu().numpy()
        labels, scores = decode_polygons(probability, distances, prob_threshold=score_threshold,
                                         nms_threshold=self.nms_threshold, min_area=min_area)
        count = scores.size
        return Segmentation(labels, "instance", ids=np.arange(1, count + 1), categories=np.zeros(count, int),
                            scores=scores, class_names=self.class_names)
