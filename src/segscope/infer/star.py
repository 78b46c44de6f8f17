"""The predictor of star-convex polygon models (``stardist``): probabilities and ray distances to
instances, through :func:`segscope.star.decode_polygons`."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..result import Segmentation
from ..star import decode_polygons, flipped_rays
from .instances import MIN_AREA, InstanceSegmenter
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
    decoded_by = ("default_score", "nms_threshold", "flip")
    flip = False
    """Average the probabilities and distances predicted for the image and its :attr:`mirrors`
    when ``segment`` is not told (a checkpoint's ``decoding`` may set it: the ``nuclei`` card does)."""
    mirrors: tuple[tuple[int, ...], ...] = ((), (3,))
    """The images ``flip`` averages over, as tensor axes to mirror (3: left to right, 2: upside
    down): the image and its left-right mirror, as semantic models flip. On the 106 held-out
    DSB2018 images all four mirror images gave the zoo's ``nuclei`` F1 0.8456 and PQ 0.6799, these
    two 0.8454 and 0.6778 in half the time (the image alone: 0.8305 and 0.6648)."""
    nms_threshold = 0.4
    """Candidates overlapping a kept polygon by more IoU than this are dropped (StarDist's 0.4)."""
    candidate_stride = 2
    """Candidates are the pixels of every second row and column (StarDist's grid of 2 for
    nuclei). Decoding the exact targets of 54 DSB2018 training label images (every tenth), this
    gave F1 0.983 at IoU 0.5 in 0.7 s in all, against 0.968 in 2.5 s from every pixel: neighbours
    propose nearly the same polygon, and fewer weak ones survive."""

    def segment(
        self,
        image: np.ndarray,
        *,
        score_threshold: float | None = None,
        min_area: int = MIN_AREA,
        output: str = "instance",
        channel_axis: int | None = None,
        flip: bool | None = None,
    ) -> Segmentation:
        """Instances of ``image``; ``flip`` averages the probabilities and distances predicted for
        the image and its :attr:`mirrors` (rays renumbered to match) before decoding (None:
        :attr:`flip`, the model's own default)."""
        start = time.perf_counter()
        return self.segment_normalised(self._tensor(image, channel_axis), score_threshold=score_threshold,
                                       min_area=min_area, output=output, start=start,
                                       flip=self.flip if flip is None else bool(flip))

    def _outputs(self, x: Any, flip: bool) -> tuple[np.ndarray, np.ndarray]:
        """(probability (H, W), distances (H, W, n_rays)), averaged over mirror images with ``flip``."""
        import torch

        probability = distances = None
        n_rays = int(self.model.n_rays)
        mirrors = self.mirrors if flip else ((),)
        for axes in mirrors:
            found = self.model(x.flip(axes) if axes else x)
            p = found.probability[0, 0].sigmoid()
            d = found.distances[0]
            for axis in axes:  # back to the image's orientation: pixels, then ray numbers
                p, d = p.flip(axis - 2), d.flip(axis - 1)[torch.as_tensor(flipped_rays(n_rays, axis - 2))]
            probability = p if probability is None else probability + p
            distances = d if distances is None else distances + d
        count = len(mirrors)
        return ((probability / count).cpu().numpy(),  # type: ignore[operator]
                (distances / count).permute(1, 2, 0).cpu().numpy())  # type: ignore[operator]

    def _find(self, x: Any, score_threshold: float, min_area: int, output: str,
              flip: bool = False) -> Segmentation:
        probability, distances = self._outputs(x, flip)
        labels, scores = decode_polygons(probability, distances, prob_threshold=score_threshold,
                                         nms_threshold=self.nms_threshold, stride=self.candidate_stride,
                                         min_area=min_area)
        count = scores.size
        return Segmentation(labels, "instance", ids=np.arange(1, count + 1), categories=np.zeros(count, int),
                            scores=scores, class_names=self.class_names)
