"""Task adapters: what differs between model families when they train.

An adapter turns a :class:`~segscope.trainconfig.TrainConfig` into a :class:`Prepared` run: the
network, its training and validation data, the loss of a batch, and the validation score that
picks the best checkpoint. The training loop (:mod:`segscope.train.engine`) knows only that
shape. A model family names its adapter when it registers (``register_model(...,
adapter="detection")``); a new family with its own loss adds an adapter here, or in its own
module with :func:`register_adapter`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from ..checkpoint import InputSpec
from ..metrics import Evaluator
from ..models import get_model, get_model_info, on_device
from ..trainconfig import NORMALISATIONS, TrainConfig
from .data import Augment, LabelledFolder, input_statistics, pair_by_stem
from .losses import SegmentationLoss, median_frequency_weights

__all__ = ["InstanceAdapter", "Prepared", "TaskAdapter", "get_adapter", "object_names", "register_adapter"]


@dataclass
class Prepared:
    """One training run, ready for the loop."""

    model: torch.nn.Module
    train_set: Any
    val_set: Any
    inputs: InputSpec
    class_names: list[str]
    metric: str
    """The validation figure that picks the best checkpoint, e.g. "val_miou"."""
    batch_loss: Callable[[Any], torch.Tensor]
    validate: Callable[[], dict[str, float]]
    collate: Callable[[Any], Any] | None = None
    unused_parameters: bool = False
    """Some parameters may get no gradient in a step (Mask R-CNN): DDP must look for them."""
    tune: Callable[[], dict[str, float]] | None = None
    """Run once training has ended, with the best weights loaded: decoding settings chosen on the
    validation images, stored in ``best.pt`` (:attr:`Checkpoint.decoding`)."""


class TaskAdapter(Protocol):
    """Data, loss and validation of one model family."""

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared: ...


_ADAPTERS: dict[str, TaskAdapter] = {}


def register_adapter(name: str) -> Callable[[type], type]:
    """Class decorator: the adapter that models registered with ``adapter=name`` train with."""

    def register(cls: type) -> type:
        if name in _ADAPTERS:
            raise ValueError(f"a task adapter named {name!r} is already registered")
        _ADAPTERS[name] = cls()
        return cls

    return register


def get_adapter(name: str) -> TaskAdapter:
    try:
        return _ADAPTERS[name]
    except KeyError:
        raise ValueError(f"no task adapter {name!r}; registered: {sorted(_ADAPTERS)}") from None


# ------------------------------------------------------------------------------- shared
def augment_of(config: TrainConfig) -> Augment:
    data = config.data
    return Augment(crop=data.crop, scale=(float(data.scale[0]), float(data.scale[1])), hflip=data.hflip,
                   vflip=data.vflip, rotation=data.rotation, colour=data.colour, stain=data.stain,
                   invert=data.invert, elastic=data.elastic)


def split(config: TrainConfig, pairs: list[Any], val_pairs: list[Any]) -> tuple[list[Any], list[Any]]:
    """Training and validation items: the validation folders', or the last ``holdout`` training ones."""
    holdout = config.data.holdout
    if val_pairs or holdout <= 0:
        return pairs, val_pairs
    if holdout >= len(pairs):
        raise ValueError(f"holdout {holdout} leaves no training images of {len(pairs)}")
    return pairs[:-holdout], pairs[-holdout:]


def refuse_semantic_options(config: TrainConfig, what: str) -> None:
    """Refuse the options only semantic training reads (a loss other than cross-entropy, class
    weights, a label map), naming them, for a family that trains otherwise."""
    optim = config.optim
    semantic_only = {"loss": optim.loss != "ce", "class_weights": optim.class_weights is not None,
                     "label_map": bool(config.data.label_map)}
    if any(semantic_only.values()):
        named = ", ".join(k for k, v in semantic_only.items() if v)
        raise ValueError(f"{config.model.name} ({what}): {named} apply to semantic models only")


def training_items(config: TrainConfig, pair: Callable[[Any, Any], list[Any]],
                   image_of: Callable[[Any], Any]) -> tuple[list[Any], list[Any], InputSpec]:
    """The training and validation items (``pair`` reads a pair of image and label folders into
    items, ``image_of`` gives an item's image file) after :func:`split`, and the inputs measured
    on the training images (normalisation, dtype and range)."""
    data = config.data
    items = pair(data.train_images, data.train_labels)
    val_items: list[Any] = []
    if data.val_images is not None and data.val_labels is not None:
        val_items = pair(data.val_images, data.val_labels)
    items, val_items = split(config, items, val_items)
    inputs = input_statistics([image_of(item) for item in items], crop=data.crop,
                              percentiles=NORMALISATIONS[data.normalise])
    return items, val_items, inputs


NO_LABEL = -100
"""What crops and rotations fill in, and the loss skips, when the labels declare no ignore value."""


def check_labels(datasets: list[LabelledFolder], num_classes: int, ignore_index: int | None) -> None:
    """Refuse label values outside ``0..num_classes-1`` other than the declared ignore value, saying
    which values, in how many files, and how to map them (ISBI's 255 is a class, not a void)."""
    bad: dict[int, int] = {}
    first: dict[int, Any] = {}
    files = 0
    void = ignore_index if ignore_index is not None else NO_LABEL
    for dataset in datasets:
        for k in range(len(dataset)):
            _, label = dataset.load(k)
            values = np.unique(label)
            wrong = values[((values < 0) | (values >= num_classes)) & (values != void)]
            files += 1
            for v in wrong.tolist():
                bad[v] = bad.get(v, 0) + 1
                first.setdefault(v, dataset.pairs[k][1])
    if bad:
        shown = ", ".join(f"{v} (in {n} of {files} files, first {first[v]})"
                          for v, n in sorted(bad.items())[:5])
        top, last = max(bad), num_classes - 1
        raise ValueError(
            f"labels hold values outside 0..{last}: {shown}. Map them to classes with --label-map "
            f"{top}:{last} (label_map={{{top}: {last}}}), or declare the value not scored with "
            f"--ignore {top} (ignore_index={top})")


def _label_counts(dataset: LabelledFolder, num_classes: int) -> list[float]:
    counts = np.zeros(num_classes)
    for k in range(len(dataset)):
        _, label = dataset.load(k)
        valid = label[(label >= 0) & (label < num_classes)]
        counts += np.bincount(valid.ravel(), minlength=num_classes)[:num_classes]
    return counts.tolist()


def evaluate_model(
    model: torch.nn.Module,
    dataset: LabelledFolder,
    *,
    num_classes: int,
    ignore_index: int,
    device: torch.device,
    class_names: list[str] | None = None,
) -> dict[str, Any]:
    """Whole-image validation: argmax of the logits scored with :class:`segscope.metrics.Evaluator`."""
    evaluator = Evaluator(task="semantic", num_classes=num_classes, ignore_index=ignore_index,
                          class_names=class_names)
    model.eval()
    with torch.inference_mode():
        for k in range(len(dataset)):
            x, y = dataset[k]
            logits = model(x[None].to(device))
            prediction = logits.argmax(1)[0].cpu().numpy().astype(np.int64)
            evaluator.update(prediction, y.numpy(), name=dataset.pairs[k][0].stem)
    report = evaluator.compute()
    return {
        "miou": report["miou"],
        "pixel_accuracy": report["pixel_accuracy"],
        "per_class_iou": {k: v["iou"] for k, v in report.per_class.items()},
    }


# ----------------------------------------------------------------------------- semantic
@register_adapter("semantic")
class SemanticAdapter:
    """Label PNGs of class indices; cross-entropy, Dice or focal loss; validated by mIoU."""

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
        data, optim = config.data, config.optim
        num_classes = int(data.num_classes or 0)
        pairs, val_pairs, inputs = training_items(config, pair_by_stem, lambda pair: pair[0])
        ignore = data.ignore_index if data.ignore_index is not None else NO_LABEL
        common = {"mean": list(inputs.mean), "std": list(inputs.std), "ignore_index": ignore,
                  "label_map": data.label_map, "percentiles": inputs.percentiles}
        train_set = LabelledFolder(pairs, augment=augment_of(config), **common)
        val_set = LabelledFolder(val_pairs, **common) if val_pairs else None
        check_labels([train_set] + ([val_set] if val_set is not None else []), num_classes, data.ignore_index)
        weights: list[float] | None
        if optim.class_weights == "auto":
            weights = median_frequency_weights(_label_counts(train_set, num_classes))
        elif isinstance(optim.class_weights, str):
            raise ValueError(f"class_weights must be None, 'auto' or a list, got {optim.class_weights!r}")
        else:
            weights = optim.class_weights
        criterion = SegmentationLoss(optim.loss, num_classes=num_classes, ignore_index=ignore,
                                     class_weights=weights).to(device)
        options = {"num_classes": num_classes, "in_channels": inputs.channels, **config.model.options}
        model = on_device(get_model(config.model.name, **options), device)

        def batch_loss(batch: Any) -> torch.Tensor:
            x, y = batch
            return criterion(model(x.to(device, non_blocking=True)), y.to(device, non_blocking=True))

        def validate() -> dict[str, float]:
            if val_set is None:
                return {}
            scores = evaluate_model(model, val_set, num_classes=num_classes, ignore_index=ignore,
                                    device=device, class_names=data.class_names)
            return {"val_miou": scores["miou"], "val_pixel_accuracy": scores["pixel_accuracy"]}

        names = data.class_names or [str(k) for k in range(num_classes)]
        return Prepared(model, train_set, val_set, inputs, list(names), "val_miou", batch_loss, validate)


# ----------------------------------------------------------------------------- instances
class InstanceAdapter:
    """Instance annotations (label PNGs, VOC objects, COCO JSON); validated by F1 at IoU 0.5 through
    the very predictor that runs the checkpoint later."""

    task = "instance"

    def network_options(self, config: TrainConfig) -> tuple[dict[str, Any], list[str]]:
        """The builder's class options and the checkpoint's class names."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, device: torch.device) -> Callable[[Any], torch.Tensor]:
        raise NotImplementedError

    unused_parameters = False

    def prepare(self, config: TrainConfig, device: torch.device) -> Prepared:
        from ..infer.predictor import predictor_class
        from .instances import InstanceFolder, collate_instances, instance_sources

        data = config.data
        refuse_semantic_options(config, f"{self.task} model")
        sources, val_sources, inputs = training_items(config, instance_sources, lambda source: source.image)
        common = {"mean": list(inputs.mean), "std": list(inputs.std), "num_classes": data.num_classes,
                  "percentiles": inputs.percentiles}
        train_set = InstanceFolder(sources, augment=augment_of(config), **common)
        val_set = InstanceFolder(val_sources, **common) if val_sources else None
        options, names = self.network_options(config)
        model = on_device(get_model(config.model.name, **{"in_channels": inputs.channels,
                                                          **config.model.options, **options}), device)
        # The predictor that will run the checkpoint validates it, so the two filter alike.
        family: Any = predictor_class(get_model_info(config.model.name).predictor,
                                            source=config.model.name)
        predictor = family(model, class_names=names, inputs=inputs, device=device,
                           name="validation", architecture=config.model.name)

        def validate() -> dict[str, float]:
            if val_set is None:
                return {}
            evaluator = Evaluator(task="instance")
            model.eval()
            for k in range(len(val_set)):
                x, truth, _ = val_set[k]
                found = predictor.segment_normalised(x[None].to(device))
                evaluator.update(found.labels, truth.clamp(min=0).numpy(), name=val_set.names[k])
            report = evaluator.compute()
            return {"val_f1": report["f1@0.5"], "val_accuracy": report["accuracy@0.5"]}

        return Prepared(model, train_set, val_set, inputs, names, "val_f1", self.loss(model, device),
                        validate, collate_instances, unused_parameters=self.unused_parameters)


def object_names(config: TrainConfig) -> list[str]:
    return list(config.data.class_names or [f"object_{k}" for k in range(int(config.data.num_classes or 0))])


@register_adapter("detection")
class DetectionAdapter(InstanceAdapter):
    """Detectors that compute their own losses from box and mask targets (Mask R-CNN)."""

    unused_parameters = True

    def network_options(self, config: TrainConfig) -> tuple[dict[str, Any], list[str]]:
        return {"num_classes": config.data.num_classes}, object_names(config)

    def loss(self, model: torch.nn.Module, device: torch.device) -> Callable[[Any], torch.Tensor]:
        from .instances import maskrcnn_targets

        def batch_loss(batch: Any) -> torch.Tensor:
            images, maps, categories = batch
            found = [maskrcnn_targets(m, c) for m, c in zip(maps, categories, strict=True)]
            targets = [{k: v.to(device) for k, v in t.items()} for t in found]
            losses = model.losses([x.to(device, non_blocking=True) for x in images], targets)
            return sum(losses.values())  # type: ignore[return-value]

        return batch_loss


@register_adapter("centre_offsets")
class CentreOffsetAdapter(InstanceAdapter):
    """Bottom-up panoptic models: a semantic head (background first), object centre heatmaps and
    offsets to the centre (Panoptic-DeepLab)."""

    task = "panoptic"

    def network_options(self, config: TrainConfig) -> tuple[dict[str, Any], list[str]]:
        n = int(config.data.num_classes or 0)
        # Trained from instances, the semantic head has one stuff class (background) before the objects.
        return ({"num_classes": n + 1, "thing_classes": list(range(1, n + 1))},
                ["background", *object_names(config)])

    def loss(self, model: torch.nn.Module, device: torch.device) -> Callable[[Any], torch.Tensor]:
        from .instances import PanopticDeepLabLoss, panoptic_targets, stack_targets

        criterion = PanopticDeepLabLoss(ignore_index=255)
        sigma = model.center_sigma

        def batch_loss(batch: Any) -> torch.Tensor:
            images, maps, categories = batch
            targets = [panoptic_targets(m, c, sigma=sigma) for m, c in zip(maps, categories, strict=True)]
            x = torch.stack(images).to(device, non_blocking=True)
            total, _ = criterion(model(x), stack_targets(targets, device))
            return total

        return batch_loss
