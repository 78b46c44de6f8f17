"""Instance training data (label PNG folders, COCO JSON, VOC ``SegmentationObject``) and targets.

Every source becomes the same sample: the image, an instance map (0 background, k instance k, -1
not annotated: VOC's void border, COCO crowds) and each instance's category. Augmentation moves
the image and the instance map together (nearest-neighbour for the map), and the targets each
model needs are built from the augmented map: boxes and masks for Mask R-CNN, semantic classes,
centre heatmaps and offsets for Panoptic-DeepLab.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from ..checkpoint import percentile_rescale
from ..io.images import imread
from ..io.labels import read_label_png
from .data import IMAGE_SUFFIXES, Augment, augment_pair, pair_by_stem

__all__ = [
    "InstanceFolder",
    "InstanceSource",
    "PanopticDeepLabLoss",
    "collate_instances",
    "instance_sources",
    "maskrcnn_targets",
    "panoptic_targets",
    "stack_targets",
]

NOT_ANNOTATED = -1


@dataclass(frozen=True)
class InstanceSource:
    """Where one training image and its instances come from."""

    image: Path
    labels: Path | None = None
    """An instance label PNG (or VOC ``SegmentationObject`` PNG)."""
    classes: Path | None = None
    """VOC only: the ``SegmentationClass`` PNG giving each object's category."""
    coco: Any = None
    """COCO only: the image's :class:`segscope.io.CocoRecord`."""


def instance_sources(images: str | Path, labels: str | Path) -> list[InstanceSource]:
    """Pair images with instance annotations.

    ``labels`` is one of:

    * a folder of instance label PNGs named like the images (0 background, k object k, one
      category), as DSB2018 ships them;
    * a VOC ``SegmentationObject`` folder, beside which ``SegmentationClass`` gives categories
      (VOC class k becomes category k - 1, 255 is not annotated);
    * a COCO instance JSON file, whose ``file_name`` entries are found in ``images`` (crowd
      regions are not annotated; category ids are the categories, so ``num_classes`` must exceed
      the largest id).
    """
    images, labels = Path(images), Path(labels)
    if labels.is_file() and labels.suffix.lower() == ".json":
        from ..io.coco import read_coco

        if not images.is_dir():
            raise FileNotFoundError(f"{images}: no such folder")
        sources, missing = [], []
        for record in read_coco(labels):
            path = images / record.file_name
            if not path.exists():
                missing.append(record.file_name)
            sources.append(InstanceSource(path, coco=record))
        if missing:
            raise ValueError(f"{labels}: {len(missing)} image(s) not found in {images}: {missing[:5]}")
        if not sources:
            raise ValueError(f"{labels}: no images")
        return sources
    pairs = pair_by_stem(images, labels)
    classes = labels.parent / "SegmentationClass"
    if labels.name == "SegmentationObject" and classes.is_dir():
        found = {p.stem: p for p in classes.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        lacking = [label.name for _, label in pairs if label.stem not in found]
        if lacking:
            raise ValueError(f"{classes}: no class PNG for {lacking[:5]}")
        return [InstanceSource(image, label, found[label.stem]) for image, label in pairs]
    return [InstanceSource(image, label) for image, label in pairs]


def _load(source: InstanceSource) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image (H, W, C), instance map int64, category of each id (index = id, -1 for none))."""
    image = imread(source.image)
    if image.ndim == 2:
        image = image[..., None]
    if source.coco is not None:
        seg = source.coco.segmentation
        masks = seg.instance_masks()
        instance_map = np.zeros(seg.shape, np.int64)
        categories = np.full(len(seg) + 1, -1, np.int64)
        for k, (mask, category, crowd) in enumerate(
            zip(masks, seg.categories, source.coco.iscrowd, strict=True), start=1
        ):
            instance_map[mask] = NOT_ANNOTATED if crowd else k
            categories[k] = category
        where = f"{source.image} (COCO)"
    else:
        if source.labels is None:
            raise ValueError(f"{source.image}: no instance labels (a label PNG or a COCO record)")
        instance_map = read_label_png(source.labels).astype(np.int64)
        where = str(source.labels)
        if source.classes is not None:
            class_map = read_label_png(source.classes)
            void = (instance_map == 255) | (class_map == 255)
            instance_map[void] = NOT_ANNOTATED
            top = int(instance_map.max(initial=0))
            categories = np.full(top + 1, -1, np.int64)
            objects = instance_map > 0
            # Each object takes the class most of its pixels have.
            votes = np.zeros((top + 1, int(class_map.max(initial=0)) + 1), np.int64)
            np.add.at(votes, (instance_map[objects], class_map[objects]), 1)
            present = votes.sum(1) > 0
            categories[present] = votes[present].argmax(1) - 1
        else:
            if instance_map.min(initial=0) < 0:
                raise ValueError(f"{where}: negative instance ids")
            categories = np.full(int(instance_map.max(initial=0)) + 1, 0, np.int64)
            categories[0] = -1
    if instance_map.shape != image.shape[:2]:
        raise ValueError(
            f"{where}: instances are {instance_map.shape}, image {source.image} is {image.shape[:2]}"
        )
    return image, instance_map, categories


class InstanceFolder(Dataset):
    """Images with instance annotations, as normalised tensors, instance maps and categories.

    Items are ``(image (C, H, W) float32, instance map (H, W) int64, categories (ids + 1,) int64)``;
    batch them with :func:`collate_instances`.
    """

    def __init__(
        self,
        sources: Sequence[InstanceSource],
        *,
        mean: Sequence[float],
        std: Sequence[float],
        num_classes: int | None = None,
        augment: Augment | None = None,
        cache: bool = True,
        percentiles: tuple[float, float] | None = None,
    ) -> None:
        self.sources = list(sources)
        self.percentiles = percentiles
        self.num_classes = num_classes
        self.mean = torch.tensor(mean, dtype=torch.float32)[:, None, None]
        self.std = torch.tensor(std, dtype=torch.float32)[:, None, None]
        self.augment = augment
        self.transform = augment.build(NOT_ANNOTATED) if augment is not None else None
        self._cache: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.sources)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        out = _load(self.sources[index])
        if self.percentiles is not None:
            out = (percentile_rescale(out[0], self.percentiles), out[1], out[2])
        if self.num_classes is not None and out[2].max(initial=-1) >= self.num_classes:
            source = self.sources[index]
            raise ValueError(f"{source.labels or source.image}: category {int(out[2].max())} is not below "
                             f"num_classes {self.num_classes}")
        if self._cache is not None:
            self._cache[index] = out
        return out

    @property
    def names(self) -> list[str]:
        return [source.image.stem for source in self.sources]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image, instance_map, categories = self.load(index)
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)).astype(np.float32))
        x = (x - self.mean) / self.std
        x, y = augment_pair(x, torch.from_numpy(instance_map), self.transform, self.augment)
        return x, y, torch.from_numpy(categories)


def collate_instances(
    batch: Sequence[tuple[torch.Tensor, torch.Tensor, torch.Tensor]],
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
    """Keep images, instance maps and category tables as lists (sizes and counts differ)."""
    images, maps, categories = zip(*batch, strict=True)
    return list(images), list(maps), list(categories)


def _instance_ids(instance_map: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
    ids = torch.unique(instance_map)
    ids = ids[(ids > 0) & (ids < categories.numel())]
    return ids[categories[ids] >= 0]


def maskrcnn_targets(instance_map: torch.Tensor, categories: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boxes (x0, y0, x1, y1), 0-based labels and uint8 masks of the instances in a map."""
    ids = _instance_ids(instance_map, categories)
    inside = instance_map[None] == ids[:, None, None]
    height, width = instance_map.shape
    if ids.numel() == 0:
        return {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "masks": torch.zeros(0, height, width, dtype=torch.uint8)}
    rows = inside.any(2)
    cols = inside.any(1)
    arange_r = torch.arange(height)
    arange_c = torch.arange(width)
    big = height + width
    y0 = torch.where(rows, arange_r, big).amin(1)
    y1 = torch.where(rows, arange_r, -1).amax(1) + 1
    x0 = torch.where(cols, arange_c, big).amin(1)
    x1 = torch.where(cols, arange_c, -1).amax(1) + 1
    boxes = torch.stack([x0, y0, x1, y1], dim=1).float()
    return {"boxes": boxes, "labels": categories[ids], "masks": inside.to(torch.uint8)}


def panoptic_targets(
    instance_map: torch.Tensor, categories: torch.Tensor, *, sigma: float, ignore_index: int = 255
) -> dict[str, torch.Tensor]:
    """Panoptic-DeepLab's targets for one instance map.

    ``semantic``: 0 background, category + 1 on each instance, ``ignore_index`` where not
    annotated. ``center``: a Gaussian of standard deviation ``sigma`` and peak 1 at each instance's
    centre of mass (the maximum where two overlap). ``offset``: (dy, dx) from each instance pixel to
    its centre. ``center_weight`` and ``offset_weight`` say which pixels each loss counts.
    """
    height, width = instance_map.shape
    ids = _instance_ids(instance_map, categories)
    semantic = torch.zeros((height, width), dtype=torch.int64)
    center = torch.zeros((1, height, width))
    offset = torch.zeros((2, height, width))
    unannotated = instance_map == NOT_ANNOTATED
    semantic[unannotated] = ignore_index
    offset_weight = torch.zeros((height, width))
    if ids.numel():
        lut = torch.zeros(int(instance_map.max()) + 1, dtype=torch.int64)
        lut[ids] = torch.arange(1, ids.numel() + 1)
        index = lut[instance_map.clamp(min=0)]
        index[unannotated] = 0
        inside = index > 0
        rows, cols = torch.nonzero(inside, as_tuple=True)
        owner = index[inside] - 1
        count = torch.bincount(owner, minlength=ids.numel()).clamp(min=1).float()
        cy = torch.bincount(owner, weights=rows.float(), minlength=ids.numel()) / count
        cx = torch.bincount(owner, weights=cols.float(), minlength=ids.numel()) / count
        semantic[inside] = categories[ids][owner] + 1
        offset[0][inside] = cy[owner] - rows.float()
        offset[1][inside] = cx[owner] - cols.float()
        offset_weight[inside] = 1.0
        radius = int(3 * sigma + 1)
        span = torch.arange(-radius, radius + 1, dtype=torch.float32)
        for y, x in zip(cy.tolist(), cx.tolist(), strict=True):
            iy, ix = round(y), round(x)
            r0, r1 = max(0, iy - radius), min(height, iy + radius + 1)
            c0, c1 = max(0, ix - radius), min(width, ix + radius + 1)
            dy = span[r0 - iy + radius : r1 - iy + radius] + (iy - y)
            dx = span[c0 - ix + radius : c1 - ix + radius] + (ix - x)
            blob = torch.exp(-(dy[:, None] ** 2 + dx[None, :] ** 2) / (2 * sigma**2))
            window = center[0, r0:r1, c0:c1]
            torch.maximum(window, blob, out=window)
    center_weight = (~unannotated).float()
    return {"semantic": semantic, "center": center, "offset": offset,
            "center_weight": center_weight, "offset_weight": offset_weight}


class PanopticDeepLabLoss(nn.Module):
    """Cross-entropy on the classes, mean squared error on the heatmap, L1 on the offsets.

    The weights (1, 200, 0.01) are the paper's; each term is averaged over the pixels it counts.
    """

    def __init__(
        self, *, semantic_weight: float = 1.0, center_weight: float = 200.0, offset_weight: float = 0.01,
        ignore_index: int = 255,
    ) -> None:
        super().__init__()
        self.weights = (semantic_weight, center_weight, offset_weight)
        self.ignore_index = ignore_index

    def forward(self, output: Any, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        semantic = F.cross_entropy(output.semantic, targets["semantic"], ignore_index=self.ignore_index)
        cw = targets["center_weight"][:, None]
        center = ((output.center - targets["center"]) ** 2 * cw).sum() / cw.sum().clamp(min=1)
        ow = targets["offset_weight"][:, None]
        offset = ((output.offset - targets["offset"]).abs() * ow).sum() / ow.sum().clamp(min=1)
        a, b, c = self.weights
        total = a * semantic + b * center + c * offset
        parts = {"semantic": float(semantic.detach()), "center": float(center.detach()),
                 "offset": float(offset.detach())}
        return total, parts


def stack_targets(
    targets: Sequence[dict[str, torch.Tensor]], device: torch.device
) -> dict[str, torch.Tensor]:
    """Batch per-image target dicts of equal size (training crops)."""
    return {k: torch.stack([t[k] for t in targets]).to(device, non_blocking=True) for k in targets[0]}
