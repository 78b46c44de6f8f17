"""Training 3-D networks (``unet3d``) on labelled volumes, in the nnU-Net manner.

Images and labels are volume files (NIfTI, TIFF stacks) paired by name. Every volume is read
once and held normalised in memory: each mapped from its own percentiles (``--normalise
percentile``, nnU-Net's per-case normalisation of MRI) or taken as it is, then the training
volumes' mean and standard deviation, recorded in the checkpoint.

Each training item is a cubic patch of ``crop`` voxels. With probability
:data:`FOREGROUND_SHARE` its centre is a random labelled foreground voxel (nnU-Net's foreground
oversampling: small structures are otherwise seen in few patches), else anywhere in the volume.
The patch is sampled straight from the volume through one affine map, so rotation (up to
``rotation`` degrees about each axis) and scaling (``scale``) never bring in a patch's own
corners: image voxels are interpolated linearly (the volume mirrored beyond its edges), labels by
nearest neighbour, and label voxels from outside the volume are not scored. Then mirroring along
each axis (``hflip``), contrast and brightness (``colour``), and Gaussian noise.

The loss is the configured one (nnU-Net uses ``ce+dice``); with a network built with
``deep_supervision``, each coarser decoder level is scored against the labels subsampled to it,
weighted by half the previous level's weight. Validation is the mean foreground Dice over the
held-out volumes, predicted by the same :class:`~segscope.infer.volumes.VolumeSegmenter` that
runs the checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from ..checkpoint import InputSpec, percentile_rescale
from ..infer.volumes import VolumeSegmenter, normalise_volume
from ..io.volumes import VOLUME_SUFFIXES, file_stem, read_label_volume, read_volume
from ..metrics import semantic_counts
from ..metrics.semantic import scores_from_counts
from ..models import get_model, on_device
from ..trainconfig import NORMALISATIONS, TrainConfig
from .adapters import NO_LABEL, Prepared, register_adapter, split
from .losses import SegmentationLoss

__all__ = ["FOREGROUND_SHARE", "VolumeAdapter", "VolumePatches", "volume_pairs"]

FOREGROUND_SHARE = 1 / 3
"""The share of patches centred on a foreground voxel (nnU-Net's)."""
NOISE = 0.1
"""The largest standard deviation of the Gaussian noise added, in normalised units (applied to
15% of the patches, as nnU-Net does)."""


def volume_pairs(images: str | Path, labels: str | Path) -> list[tuple[Path, Path]]:
    """(image, label) volume files with the same name (suffix aside), sorted; an image without a
    label is an error."""
    images, labels = Path(images), Path(labels)
    for folder in (images, labels):
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")

    def volumes(folder: Path) -> dict[str, Path]:
        return {
            file_stem(p): p
            for p in folder.iterdir()
            if p.name.lower().endswith(VOLUME_SUFFIXES) and not p.name.startswith(".")
        }

    image_files, label_files = volumes(images), volumes(labels)
    missing = sorted(set(image_files) - set(label_files))
    if missing:
        raise ValueError(f"{len(missing)} volume(s) in {images} have no label in {labels}: {missing[:5]}")
    if not image_files:
        raise ValueError(f"{images}: no volumes ({', '.join(VOLUME_SUFFIXES)})")
    return [(image_files[k], label_files[k]) for k in sorted(image_files)]


def class_volume(path: Path, num_classes: int, ignore_index: int | None) -> np.ndarray:
    """A label volume of class indices, refused when it holds values outside the classes other
    than the declared ignore value (which becomes the loss's unscored value)."""
    labels = read_label_volume(path)
    values = np.unique(labels)
    bad = values[
        ((values < 0) | (values >= num_classes))
        & (values != (ignore_index if ignore_index is not None else NO_LABEL))
    ]
    if bad.size:
        raise ValueError(
            f"{path}: labels hold {bad[:5].tolist()}, outside 0..{num_classes - 1}; declare the "
            "value not scored with --ignore"
        )
    if ignore_index is not None:
        labels[labels == ignore_index] = NO_LABEL
    return labels


def volume_statistics(
    paths: Sequence[Path], *, patch: int, percentiles: tuple[float, float] | None
) -> InputSpec:
    """What a model trained on the volumes at ``paths`` expects: per-channel mean and standard
    deviation (after each volume's percentiles, when given), the dtype (when they share one) and
    value range, and the patch side."""
    total = total_sq = None
    count = 0
    low, high = np.inf, -np.inf
    dtypes = set()
    for path in paths:
        data = read_volume(path).data
        dtypes.add(data.dtype.name)
        low, high = min(low, float(data.min())), max(high, float(data.max()))
        image = data[..., None] if data.ndim == 3 else data
        image = percentile_rescale(image, percentiles) if percentiles is not None else image
        flat = np.asarray(image, np.float64).reshape(-1, image.shape[-1])
        total = flat.sum(0) if total is None else total + flat.sum(0)
        total_sq = (flat**2).sum(0) if total_sq is None else total_sq + (flat**2).sum(0)
        count += flat.shape[0]
    if total is None or total_sq is None:
        raise ValueError("no training volumes")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 1e-12))
    if percentiles is None and len(dtypes) > 1:
        raise ValueError(
            f"the training volumes mix dtypes ({', '.join(sorted(dtypes))}): their units may "
            "differ; normalise each from its percentiles (--normalise percentile)"
        )
    return InputSpec(
        tuple(mean.tolist()),
        tuple(std.tolist()),
        dtypes.pop() if len(dtypes) == 1 else None,
        (low, high),
        patch,
        percentiles,
    )


def _rotation(angles: Sequence[float]) -> np.ndarray:
    """The 3x3 rotation by ``angles`` (radians) about the z, y and x axes in turn."""
    matrix = np.eye(3)
    for axis, angle in enumerate(angles):
        c, s = math.cos(angle), math.sin(angle)
        a, b = [k for k in range(3) if k != axis]
        turn = np.eye(3)
        turn[a, a], turn[a, b], turn[b, a], turn[b, b] = c, -s, s, c
        matrix = matrix @ turn
    return matrix


class VolumePatches(Dataset):
    """Normalised volumes held in memory, giving augmented cubic patches (see the module's text).

    ``len`` is the number of volumes: an epoch is one patch of each, in random order.
    """

    def __init__(
        self,
        pairs: Sequence[tuple[Path, Path]],
        *,
        inputs: InputSpec,
        num_classes: int,
        ignore_index: int | None,
        patch: int,
        augment: bool,
        rotation: float = 0.0,
        scale: tuple[float, float] = (1.0, 1.0),
        mirror: bool = True,
        colour: float = 0.0,
    ) -> None:
        self.pairs = list(pairs)
        self.images = [
            normalise_volume(read_volume(image).data, inputs, name=str(image)) for image, _ in pairs
        ]
        self.labels = [class_volume(label, num_classes, ignore_index) for _, label in pairs]
        for (image_path, _), image, label in zip(self.pairs, self.images, self.labels, strict=True):
            if image.shape[1:] != label.shape:
                raise ValueError(
                    f"{image_path}: volume {image.shape[1:]} and its labels {label.shape} differ"
                )
        self.foreground = [np.argwhere(label > 0) for label in self.labels]
        self.patch, self.augment = patch, augment
        self.rotation, self.scale, self.mirror, self.colour = rotation, scale, mirror, colour

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = self.images[index], self.labels[index]
        shape = np.array(label.shape)
        rng = np.random.default_rng(int(torch.randint(0, 2**31, ()).item()))
        foreground = self.foreground[index]
        if self.augment and len(foreground) and rng.random() < FOREGROUND_SHARE:
            centre = foreground[rng.integers(len(foreground))].astype(np.float64)
        else:
            # Anywhere a patch fits, or the middle of a volume smaller than the patch.
            half = (self.patch - 1) / 2
            low, high = np.minimum(half, (shape - 1) / 2), np.maximum(shape - 1 - half, (shape - 1) / 2)
            centre = rng.uniform(low, high) if self.augment else (shape - 1) / 2
        matrix = np.eye(3)
        if self.augment:
            angles = (
                np.deg2rad(rng.uniform(-self.rotation, self.rotation, 3)) if self.rotation else np.zeros(3)
            )
            matrix = _rotation(angles) * rng.uniform(*self.scale)
        # Patch voxel o samples the volume at centre + matrix @ (o - middle of the patch).
        offset = centre - matrix @ np.full(3, (self.patch - 1) / 2)
        out = (self.patch,) * 3
        x = np.stack(
            [
                ndimage.affine_transform(channel, matrix, offset, output_shape=out, order=1, mode="mirror")
                for channel in image
            ]
        )
        y = ndimage.affine_transform(
            label, matrix, offset, output_shape=out, order=0, mode="constant", cval=NO_LABEL
        )
        if self.augment:
            if self.mirror:
                axes = tuple(a for a in range(3) if rng.random() < 0.5)
                x, y = np.flip(x, tuple(a + 1 for a in axes)), np.flip(y, axes)
            if self.colour:
                x = x * (1 + self.colour * rng.uniform(-1, 1)) + self.colour * rng.uniform(-1, 1)
            if rng.random() < 0.15:
                x = x + rng.normal(0, rng.uniform(0, NOISE), x.shape)
        return (
            torch.from_numpy(np.ascontiguousarray(x, np.float32)),
            torch.from_numpy(np.ascontiguousarray(y, np.int64)),
        )


def volume_dice(predictor: VolumeSegmenter, dataset: VolumePatches, num_classes: int) -> dict[str, float]:
    """Mean foreground Dice of ``predictor`` over ``dataset``'s whole volumes: per volume and class,
    then averaged over volumes (a class absent from both truth and prediction is left out), then
    over classes."""
    per_class: list[list[float]] = [[] for _ in range(num_classes)]
    for image, label in zip(dataset.images, dataset.labels, strict=True):
        # The dataset holds normalised volumes: run the network on them as they are.
        probs = predictor.probabilities_of_normalised(image, flip=False)
        counts = semantic_counts(probs.argmax(0), label, num_classes=num_classes, ignore_index=NO_LABEL)
        dice = scores_from_counts(counts)["per_class"]["dice"]
        for c in range(1, num_classes):
            if not np.isnan(dice[c]):
                per_class[c].append(float(dice[c]))
    means = [float(np.mean(v)) if v else float("nan") for v in per_class[1:]]
    return {
        "val_dice": float(np.nanmean(means)) if means else float("nan"),
        **{f"val_dice_{c}": m for c, m in enumerate(means, start=1)},
    }


@register_adapter("volumes")
class VolumeAdapter:
    """Labelled volumes; patches with foreground oversampling and 3-D augmentation; the configured
    loss (deep supervision when the network has it); validated by mean foreground Dice."""

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
        data, optim = config.data, config.optim
        if data.label_map:
            raise ValueError(
                f"{config.model.name}: label_map applies to 2-D label PNGs; map the volumes' "
                "labels before training"
            )
        num_classes = int(data.num_classes or 0)
        pairs = volume_pairs(data.train_images, data.train_labels)
        val_pairs = (
            volume_pairs(data.val_images, data.val_labels) if data.val_images and data.val_labels else []
        )
        pairs, val_pairs = split(config, pairs, val_pairs)
        inputs = volume_statistics(
            [image for image, _ in pairs], patch=data.crop, percentiles=NORMALISATIONS[data.normalise]
        )
        common = {
            "inputs": inputs,
            "num_classes": num_classes,
            "ignore_index": data.ignore_index,
            "patch": data.crop,
        }
        train_set = VolumePatches(
            pairs,
            augment=True,
            rotation=data.rotation,
            scale=(float(data.scale[0]), float(data.scale[1])),
            mirror=data.hflip,
            colour=data.colour,
            **common,
        )
        val_set = VolumePatches(val_pairs, augment=False, **common) if val_pairs else None
        if isinstance(optim.class_weights, str):
            raise ValueError(
                f"{config.model.name}: class_weights {optim.class_weights!r} are not computed for "
                "volumes; give one weight per class"
            )
        criterion = SegmentationLoss(
            optim.loss, num_classes=num_classes, ignore_index=NO_LABEL, class_weights=optim.class_weights
        ).to(device)
        options = {"num_classes": num_classes, "in_channels": inputs.channels, **config.model.options}
        model = on_device(get_model(config.model.name, **options), device)
        levels = getattr(model, "forward_levels", None) if getattr(model, "deep_supervision", False) else None

        def batch_loss(batch: Any) -> torch.Tensor:
            x, y = (t.to(device, non_blocking=True) for t in batch)
            if levels is None:
                return criterion(model(x), y)
            outputs = levels(x)
            weights = [0.5**k for k in range(len(outputs))]
            total = sum(
                w * criterion(out, y[(slice(None), *(slice(None, None, 2**k),) * 3)])
                for k, (w, out) in enumerate(zip(weights, outputs, strict=True))
            )
            return total / sum(weights)

        names = data.class_names or [str(k) for k in range(num_classes)]
        predictor = VolumeSegmenter(
            model,
            class_names=names,
            inputs=inputs,
            device=device,
            name="validation",
            architecture=config.model.name,
        )

        def validate() -> dict[str, float]:
            if val_set is None:
                return {}
            model.eval()
            return volume_dice(predictor, val_set, num_classes)

        return Prepared(model, train_set, val_set, inputs, list(names), "val_dice", batch_loss, validate)
