"""Training star-convex polygon models (``stardist``): targets from instance maps, and the loss.

The targets are built from each augmented instance map (:mod:`segscope.star`): the object
probability (each object's normalised distance to its edge) and the ray distances, at the pixels
the network's grid stands for (:func:`~segscope.star.grid_pixels`). The loss is StarDist's,
computed on the grid as StarDist computes it: binary cross-entropy on the probability, plus the
mean absolute error of the distances weighted by the target probability (central pixels'
polygons matter most), weighted 0.2.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..star import grid_pixels, object_probability, star_distances
from ..trainconfig import TrainConfig
from .adapters import InstanceAdapter, Prepared, object_names, register_adapter

__all__ = ["StarPolygonAdapter", "star_loss", "star_targets"]

DISTANCE_WEIGHT = 0.2
"""The distance term's weight in the loss (StarDist's default)."""


def star_targets(instance_map: torch.Tensor, n_rays: int, *, grid: int = 1
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(probability (h, w), distances (n_rays, h, w), annotated (h, w) bool) for one instance map
    (0 background, ids above, negative not annotated), at the pixels of a network's ``grid``
    (every pixel at 1: h, w = H, W)."""
    labels = instance_map.numpy()
    annotated = labels >= 0
    objects = np.where(annotated, labels, 0)
    at = grid_pixels(grid)
    probability = np.ascontiguousarray(object_probability(objects)[at])
    distances = star_distances(objects, n_rays=n_rays, grid=grid).transpose(2, 0, 1)
    return (torch.from_numpy(probability), torch.from_numpy(np.ascontiguousarray(distances)),
            torch.from_numpy(np.ascontiguousarray(annotated[at])))


def star_loss(probability_logits: torch.Tensor, distances: torch.Tensor, target_probability: torch.Tensor,
              target_distances: torch.Tensor, annotated: torch.Tensor) -> torch.Tensor:
    """StarDist's loss over a batch: BCE on the probability over annotated pixels, plus
    :data:`DISTANCE_WEIGHT` times the distance error weighted by the target probability."""
    weight = annotated.float()
    bce = F.binary_cross_entropy_with_logits(probability_logits, target_probability, reduction="none")
    probability_term = (bce * weight).sum() / weight.sum().clamp(min=1)
    central = target_probability * weight
    error = (distances - target_distances).abs().mean(dim=1)
    distance_term = (error * central).sum() / central.sum().clamp(min=1e-6)
    return probability_term + DISTANCE_WEIGHT * distance_term


PROBABILITY_THRESHOLDS = tuple(round(0.3 + 0.05 * k, 2) for k in range(11))
"""The object probabilities tried when the thresholds are chosen (0.3 to 0.8)."""
OVERLAP_THRESHOLDS = (0.3, 0.4, 0.5)
"""The suppression overlaps tried (StarDist's optimize_thresholds searches the same range)."""


def choose_thresholds(model: Any, prepared: Prepared, name: str, device: torch.device) -> dict[str, float]:
    """The object probability and suppression overlap with the best F1 at IoU 0.5 on the validation
    images (the network run once per image, every pair decoded), as StarDist's
    ``optimize_thresholds`` chooses them after training; none without validation images."""
    from ..infer.instances import MIN_AREA
    from ..infer.star import StarPredictor
    from ..metrics import Evaluator

    val_set = prepared.val_set
    if val_set is None or len(val_set) == 0:
        return {}
    predictor = StarPredictor(model, class_names=prepared.class_names, inputs=prepared.inputs, device=device,
                              name="tuning", architecture=name)
    model.eval()
    maps = []  # the network once per image (maps runs it in inference mode)
    for k in range(len(val_set)):
        x, truth, _ = val_set[k]
        maps.append((predictor.maps(x[None].to(device)), truth.clamp(min=0).numpy()))
    # The family's own settings first: another pair must do strictly better to replace them.
    pairs = [(predictor.default_score, predictor.nms_threshold)]
    pairs += [(t, o) for o in OVERLAP_THRESHOLDS for t in PROBABILITY_THRESHOLDS if (t, o) != pairs[0]]
    best = (-1.0, *pairs[0])  # (F1, probability, overlap)
    for threshold, overlap in pairs:
        evaluator = Evaluator(task="instance")
        for k, (found, truth) in enumerate(maps):
            labels, _ = predictor.decode(found, score_threshold=threshold, nms_threshold=overlap,
                                         min_area=MIN_AREA)
            evaluator.update(labels, truth, name=str(k))
        f1 = float(evaluator.compute()["f1@0.5"])
        if f1 > best[0]:
            best = (f1, threshold, overlap)
    return {"default_score": best[1], "nms_threshold": best[2]}


@register_adapter("star_polygons")
class StarPolygonAdapter(InstanceAdapter):
    """Star-convex polygon models: one object class, trained from instance annotations and
    validated by F1 at IoU 0.5 through :class:`~segscope.infer.star.StarPredictor`."""

    task = "instance"

    def network_options(self, config: TrainConfig) -> tuple[dict[str, Any], list[str]]:
        classes = int(config.data.num_classes or 1)
        if classes != 1:
            raise ValueError(f"{config.model.name} segments one object class; num_classes is {classes}")
        return {"num_classes": 1}, object_names(config)

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
        """The instance data and validation; the distance head starts at the training objects'
        typical distance (their centre-weighted mean, over up to 16 images), so the first steps
        learn shapes rather than the scale of the data."""
        prepared = super().prepare(config, device)
        model: Any = prepared.model
        total = weight = 0.0
        for index in range(min(16, len(prepared.train_set))):
            _, instance_map, _ = prepared.train_set.load(index)
            probability, distances, _ = star_targets(torch.from_numpy(instance_map), int(model.n_rays),
                                                     grid=int(model.grid))
            total += float((distances.mean(0) * probability).sum())
            weight += float(probability.sum())
        if weight > 0:
            with torch.no_grad():
                model.distances.bias.fill_(total / weight)
        prepared.tune = partial(choose_thresholds, model, prepared, config.model.name, device)
        return prepared

    def loss(self, model: torch.nn.Module, device: torch.device) -> Callable[[Any], torch.Tensor]:
        """StarDist's loss on the network's grid, the crops in channels-last order (:meth:`prepare`)."""
        n_rays, grid = int(model.n_rays), int(model.grid)

        def batch_loss(batch: Any) -> torch.Tensor:
            images, maps, _ = batch
            targets = [star_targets(m, n_rays, grid=grid) for m in maps]
            probability, distances, annotated = (torch.stack(t).to(device, non_blocking=True)
                                                 for t in zip(*targets, strict=True))
            x = torch.stack(images).to(device, non_blocking=True)
            out = model.forward_grid(x.contiguous(memory_format=torch.channels_last))
            return star_loss(out.probability[:, 0], out.distances, probability, distances, annotated)

        return batch_loss
