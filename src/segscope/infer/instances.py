"""Trained instance and panoptic models as methods: one predictor per family, sharing the rest.

:class:`DetectionPredictor` runs detectors (Mask R-CNN: masks with class scores) and
:class:`CentrePredictor` bottom-up panoptic models (Panoptic-DeepLab: classes, centres and
offsets); :class:`InstanceSegmenter` is what they share, and opens either from a checkpoint.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..result import Provenance, Segmentation
from .predictor import WholeImagePredictor, normalise_image, predicts

__all__ = ["CentrePredictor", "DetectionPredictor", "InstanceSegmenter"]

OUTPUTS = ("instance", "panoptic")

MIN_AREA = 20
"""Objects smaller than this (pixels) are dropped by default, in validation as in inference, as
``watershed_instances`` drops them (its ``min_size``)."""


class InstanceSegmenter(WholeImagePredictor):
    """A trained instance or panoptic checkpoint: ``segment(image)`` gives instances.

    Use :meth:`from_checkpoint`, which opens the family's own predictor. Images run whole (Mask
    R-CNN resizes them as configured).
    """

    task = "instance"
    default_score = 0.5
    """``score_threshold`` when none is given."""
    expects = "an instance or panoptic one"

    def _tensor(self, image: np.ndarray, channel_axis: int | None) -> Any:
        import torch

        x = normalise_image(image, self.inputs, channel_axis=channel_axis)
        return torch.from_numpy(x)[None].to(self.device)

    def segment(
        self,
        image: np.ndarray,
        *,
        score_threshold: float | None = None,
        min_area: int = MIN_AREA,
        output: str = "instance",
        channel_axis: int | None = None,
    ) -> Segmentation:
        """Instances of ``image`` (or, for a panoptic model, ``output="panoptic"``: stuff and things).

        ``score_threshold`` drops weaker instances (default: the family's ``default_score``, 0.5
        for detectors, whose scores are class confidences, and 0 for centre-based models);
        ``min_area`` drops smaller ones, in pixels (training validates with the same default).
        """
        start = time.perf_counter()
        return self.segment_normalised(self._tensor(image, channel_axis), score_threshold=score_threshold,
                                       min_area=min_area, output=output, start=start)

    def segment_normalised(self, x: Any, *, score_threshold: float | None = None, min_area: int = MIN_AREA,
                           output: str = "instance", start: float | None = None,
                           **decode: Any) -> Segmentation:
        """:meth:`segment` of an image already normalised: a (1, C, H, W) tensor on the device.
        Training validates through here, so validation and inference filter alike. ``decode``
        holds a family's own options (its ``segment`` declares them)."""
        import torch

        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if output == "panoptic" and self.task != "panoptic":
            raise ValueError(f"{self.name}: {self.task} models have no panoptic output")
        start = time.perf_counter() if start is None else start
        threshold = self.default_score if score_threshold is None else score_threshold
        with torch.inference_mode():
            found = self._find(x, threshold, min_area, output, **decode)
        provenance = Provenance(
            self.name,
            parameters={"score_threshold": threshold, "min_area": min_area, "output": output, **decode},
            details={"model": self.architecture},
            seconds=time.perf_counter() - start,
        )
        return found.with_provenance(provenance)

    def _find(self, x: Any, score_threshold: float, min_area: int, output: str) -> Segmentation:
        raise NotImplementedError


@predicts("instance")
class DetectionPredictor(InstanceSegmenter):
    """Detectors (``maskrcnn``): each detection's mask and class confidence, best score painted last."""

    task = "instance"
    default_score = 0.5

    def _find(self, x: Any, score_threshold: float, min_area: int, output: str) -> Segmentation:
        found = self.model(x)[0]
        masks = (found["masks"][:, 0] > 0.5).cpu().numpy()
        scores = found["scores"].cpu().numpy()
        labels = found["labels"].cpu().numpy()
        keep = (scores >= score_threshold) & (masks.sum(axis=(1, 2)) >= max(min_area, 1))
        return Segmentation.from_masks(masks[keep], scores=scores[keep], categories=labels[keep],
                                       class_names=self.class_names)



@predicts("panoptic")
class CentrePredictor(InstanceSegmenter):
    """Bottom-up panoptic models (``panoptic_deeplab``): pixels grouped to predicted centres; stuff
    classes too with ``output="panoptic"``. Centres are already thresholded, so every object
    counts by default."""

    task = "panoptic"
    default_score = 0.0

    def _find(self, x: Any, score_threshold: float, min_area: int, output: str) -> Segmentation:
        found = self.model.predict(x, min_area=min_area)[0]
        classes = found.classes.cpu().numpy()
        instance_map = found.instances.cpu().numpy()
        scores = found.scores.cpu().numpy().astype(float)
        categories = found.categories.cpu().numpy()
        keep = np.flatnonzero(scores >= score_threshold)
        lut = np.zeros(len(scores) + 1, np.int32)
        lut[keep + 1] = np.arange(1, keep.size + 1)
        labels = lut[instance_map]
        if output == "instance":
            # Trained from instance annotations, class 0 is the background: objects are class - 1.
            return Segmentation(labels, "instance", ids=np.arange(1, keep.size + 1),
                                categories=categories[keep] - 1, scores=scores[keep],
                                class_names=self.class_names[1:])
        ids = list(range(1, keep.size + 1))
        cats = categories[keep].tolist()
        is_thing = [True] * keep.size
        segment_scores = scores[keep].tolist()
        things = set(self.model.thing_classes)
        for stuff in range(len(self.class_names)):
            region = (classes == stuff) & (labels == 0)
            if stuff in things or not region.any():
                continue
            ids.append(len(ids) + 1)
            labels[region] = ids[-1]
            cats.append(stuff)
            is_thing.append(False)
            segment_scores.append(float("nan"))
        return Segmentation(labels, "panoptic", ids=ids, categories=cats, is_thing=is_thing,
                            scores=segment_scores, class_names=self.class_names)
