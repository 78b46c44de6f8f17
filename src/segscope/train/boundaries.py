"""Training edge networks (``rcf``): images with several annotators' segmentations each.

Labels are BSDS500 ground-truth ``.mat`` files (every annotator's segmentation) or label PNGs (one
annotator). Each annotator's segmentation is augmented with the image (nearest neighbours: region
labels survive resampling where thin boundary lines would not), and only then turned into
boundaries: a pixel is a boundary of an annotator where its label differs from its right or lower
neighbour's. The target is the annotators' agreement, the fraction that marks a pixel.

The loss is RCF's class-balanced cross-entropy: pixels at least :data:`POSITIVE_AGREEMENT` of the
annotators mark are edges, pixels none marks are not, pixels between are left out (the annotators
disagree); edges weigh the share of non-edges and non-edges :data:`NEGATIVE_WEIGHT` times the share
of edges, per image. Every side output and the fused map are supervised. Validation is the BSDS
protocol's boundary ODS F on the held-out images, through the predictor that runs the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..checkpoint import percentile_rescale
from ..groundtruth import BsdsGroundTruth
from ..io.bsds import read_bsds_groundtruth
from ..io.images import imread
from ..io.labels import read_label_png
from ..metrics import label_boundaries
from ..metrics.bsds import bsds_image, bsds_summary, sweep_soft_boundaries
from ..models import get_model, on_device
from ..result import Segmentation
from ..trainconfig import TrainConfig
from .adapters import (
    NO_LABEL,
    Prepared,
    augment_of,
    refuse_semantic_options,
    register_adapter,
    training_items,
)
from .data import IMAGE_SUFFIXES, Augment, augment_pair, pair_by_stem

__all__ = ["AnnotatedBoundaries", "BoundaryAdapter", "agreement", "edge_loss"]

POSITIVE_AGREEMENT = 0.3
"""Pixels at least this share of the annotators mark are edges in the loss (PiDiNet's eta for
BSDS500; RCF uses 0.5 of its thicker, augmented labels)."""
NEGATIVE_WEIGHT = 1.1
"""RCF's lambda: non-edges weigh this times the share of edges."""
VALIDATION_THRESHOLDS = 9
"""Thresholds of the validation sweep (the benchmark uses 99; the best of 9 picks epochs alike)."""


def _read_annotators(path: Path) -> BsdsGroundTruth:
    """All annotators of one image: a BSDS ``.mat`` file, or one label PNG (one annotator)."""
    if path.suffix.lower() == ".mat":
        return read_bsds_groundtruth(path)
    labels = read_label_png(path)
    return BsdsGroundTruth([Segmentation.from_labels(labels, kind="regions")], [label_boundaries(labels)])


def agreement(segmentations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(agreement (H, W) float, valid (H, W) bool) of (K, H, W) annotators' label maps.

    A pixel is a boundary of an annotator where its label differs from its right or lower
    neighbour's, both labelled (augmentation fills with negative values); the agreement is the
    share of annotators marking it. A pixel is valid where every annotator labels it.

    Examples
    --------
    >>> segs = torch.tensor([[[1, 1, 2, 2]], [[1, 2, 2, 2]]])
    >>> agreement(segs)[0].tolist()
    [[0.5, 0.5, 0.0, 0.0]]
    """
    labelled = segmentations >= 0
    marked = torch.zeros_like(labelled)
    across = (segmentations[:, :, 1:] != segmentations[:, :, :-1]) & labelled[:, :, 1:] & labelled[:, :, :-1]
    down = (segmentations[:, 1:] != segmentations[:, :-1]) & labelled[:, 1:] & labelled[:, :-1]
    marked[:, :, :-1] |= across
    marked[:, :-1] |= down
    return marked.float().mean(0), labelled.all(0)


def edge_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """RCF's class-balanced cross-entropy, averaged over maps and valid pixels.

    ``logits`` is (N, M, H, W): M maps (sides and fused) supervised alike; ``target`` the (N, H, W)
    agreement and ``valid`` the (N, H, W) pixels every annotator labels.
    """
    positive = (target >= POSITIVE_AGREEMENT) & valid
    negative = (target == 0) & valid
    n_pos = positive.flatten(1).sum(1).float()[:, None, None]
    n_neg = negative.flatten(1).sum(1).float()[:, None, None]
    total = (n_pos + n_neg).clamp(min=1)
    weight = positive * (n_neg / total) + negative * (NEGATIVE_WEIGHT * n_pos / total)
    bce = F.binary_cross_entropy_with_logits(
        logits, positive.float()[:, None].expand_as(logits), reduction="none")
    return (bce * weight[:, None]).sum() / (valid.sum().clamp(min=1) * logits.shape[1])


class AnnotatedBoundaries(Dataset):
    """Images and their annotators' segmentations, as normalised tensors and agreement targets.

    Items are ``(image (C, H, W), agreement (H, W), valid (H, W))``; :meth:`truth` gives the
    annotators as the BSDS protocol scores them.
    """

    def __init__(
        self, pairs: Sequence[tuple[Path, Path]], *, mean: Sequence[float], std: Sequence[float],
        augment: Augment | None = None, percentiles: tuple[float, float] | None = None,
    ) -> None:
        self.pairs = list(pairs)
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.augment = augment
        self.transform = augment.build(NO_LABEL) if augment is not None else None
        self.percentiles = percentiles
        self._cache: dict[int, tuple[np.ndarray, BsdsGroundTruth]] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def names(self) -> list[str]:
        return [image.stem for image, _ in self.pairs]

    def load(self, index: int) -> tuple[np.ndarray, BsdsGroundTruth]:
        """The image (H, W, C) as stored (mapped by percentiles when trained so) and its annotators."""
        if index not in self._cache:
            image_path, label_path = self.pairs[index]
            image = imread(image_path)
            image = image[..., None] if image.ndim == 2 else image
            if self.percentiles is not None:
                image = percentile_rescale(image, self.percentiles)
            truth = _read_annotators(label_path)
            for seg in truth.segmentations:
                if seg.shape != image.shape[:2]:
                    raise ValueError(f"{label_path}: an annotation of {seg.shape}, image {image_path} is "
                                     f"{image.shape[:2]}")
            self._cache[index] = (image, truth)
        return self._cache[index]

    def truth(self, index: int) -> BsdsGroundTruth:
        return self.load(index)[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, truth = self.load(index)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32))
        x = (x - self.mean) / self.std
        segs = torch.from_numpy(np.stack([s.labels for s in truth.segmentations]).astype(np.int64))
        x, segs = augment_pair(x, segs, self.transform, self.augment)
        target, valid = agreement(segs)
        return x, target, valid


def boundary_pairs(images: str | Path, labels: str | Path) -> list[tuple[Path, Path]]:
    """(image, annotation) pairs by stem: BSDS ``.mat`` ground truth, or label PNGs."""
    return pair_by_stem(images, labels, label_suffixes=(".mat", *IMAGE_SUFFIXES))


@register_adapter("boundaries")
class BoundaryAdapter:
    """Edge networks: annotators' segmentations in, agreement-weighted deep supervision, validated
    by the BSDS protocol's boundary ODS F (matching within 0.75% of the image diagonal)."""

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
        from ..infer.predictor import predictor_class
        from ..models import get_model_info

        refuse_semantic_options(config, "an edge model")
        pairs, val_pairs, inputs = training_items(config, boundary_pairs, lambda pair: pair[0])
        common = {"mean": list(inputs.mean), "std": list(inputs.std), "percentiles": inputs.percentiles}
        train_set = AnnotatedBoundaries(pairs, augment=augment_of(config), **common)
        val_set = AnnotatedBoundaries(val_pairs, **common) if val_pairs else None
        names = ["boundary"]
        model = on_device(get_model(config.model.name, **{"in_channels": inputs.channels,
                                                          **config.model.options, "num_classes": 1}), device)
        family: Any = predictor_class(get_model_info(config.model.name).predictor, source=config.model.name)
        predictor = family(model, class_names=names, inputs=inputs, device=device, name="validation",
                           architecture=config.model.name)

        def batch_loss(batch: Any) -> torch.Tensor:
            x, target, valid = (t.to(device, non_blocking=True) for t in batch)
            out = model(x)
            return edge_loss(torch.cat([out.fused, out.sides], dim=1), target, valid)

        def validate() -> dict[str, float]:
            if val_set is None:
                return {}
            model.eval()
            counts = []
            for k in range(len(val_set)):
                x, _, _ = val_set[k]
                soft = predictor.boundaries_normalised(x[None].to(device), scales=(1.0,))
                steps = sweep_soft_boundaries(soft, VALIDATION_THRESHOLDS)
                counts.append(bsds_image(steps, val_set.truth(k), regions=False))
            found = bsds_summary(counts).boundary
            return {"val_ods": found["ods_f"], "val_ois": found["ois_f"]}

        return Prepared(model, train_set, val_set, inputs, names, "val_ods", batch_loss, validate)
