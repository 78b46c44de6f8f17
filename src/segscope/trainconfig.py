"""What a training run depends on, in four parts: the model, the data, the optimisation and the
schedule. Saved in every checkpoint (``Checkpoint.recipe``).

Each field declares its command-line flag and help where it is defined (:func:`flag`), so
``segscope train``'s options are made from these classes in one place
(:func:`segscope.cli.deep.add_config_arguments`) and nothing is copied field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = ["DataConfig", "ModelConfig", "OptimConfig", "ScheduleConfig", "TrainConfig", "flag"]


MIXED_PRECISIONS = ("cuda", "bf16", "off")
"""Where training runs the network in half precision (``optim.mixed_precision``)."""
SAMPLINGS = ("image", "area")
"""How training draws its images each epoch (``data.sampling``)."""


def flag(name: str, help: str, *, parse: Callable[[str], Any] | None = None, metavar: str | None = None
         ) -> dict[str, Any]:
    """Field metadata: the option ``name`` sets this field; ``parse`` reads its text when the
    field's annotation alone cannot (a file of names, ``FROM:TO`` pairs)."""
    return {"flag": name, "help": help, "parse": parse, "metavar": metavar}


def parse_label_map(text: str) -> dict[int, int]:
    """``FROM:TO,FROM:TO`` as a mapping of label values (``255:1`` for ISBI)."""
    try:
        return {int(a): int(b) for a, b in (pair.split(":") for pair in text.split(","))}
    except ValueError:
        raise ValueError(f"expects FROM:TO pairs like 255:1, got {text!r}") from None


def _names_file(path: str) -> list[str]:
    from pathlib import Path

    try:
        names = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as exc:
        raise ValueError(f"cannot read class names from {path}: {exc.strerror or exc}") from None
    if not names:
        raise ValueError(f"{path} holds no class names (one per line)")
    return names


NORMALISATIONS: dict[str, tuple[float, float] | None] = {"dataset": None, "percentile": (1.0, 99.8)}
"""``DataConfig.normalise``'s choices and the per-image percentiles each maps from (None: none)."""


@dataclass
class ModelConfig:
    """Which network, with which builder options."""

    name: str = field(metadata=flag("--model", "a name from `segscope models` (unet, fcn, maskrcnn ...)"))
    options: dict[str, Any] = field(default_factory=dict, metadata=flag(
        "--option", "model option KEY=VALUE, e.g. base_width=32 (repeat for several)", metavar="KEY=VALUE"))


@dataclass
class DataConfig:
    """Where the images and labels are, what the classes are, and how images are augmented."""

    train_images: str = field(metadata=flag("--images", "training images folder"))
    train_labels: str = field(metadata=flag(
        "--labels", "training label PNGs folder (same file stems); for instance models: instance label "
        "PNGs, a VOC SegmentationObject folder, or a COCO instances JSON"))
    num_classes: int | None = field(default=None, metadata=flag(
        "--num-classes", "number of classes (default: the number of --classes names)"))
    class_names: list[str] | None = field(default=None, metadata=flag(
        "--classes", "class names, one per line (instance models: object categories, no background)",
        parse=_names_file, metavar="NAMES_TXT"))
    val_images: str | None = field(default=None, metadata=flag("--val-images", "validation images folder"))
    val_labels: str | None = field(default=None, metadata=flag(
        "--val-labels", "validation labels, as --labels"))
    holdout: int = field(default=0, metadata=flag(
        "--holdout", "without val folders: the last N training pairs become the validation set"))
    ignore_index: int | None = field(default=None, metadata=flag(
        "--ignore", "the label value not scored (CamVid 11, VOC 255); none unless declared"))
    label_map: dict[int, int] | None = field(default=None, metadata=flag(
        "--label-map", "label values to replace, e.g. 255:1 for ISBI", parse=parse_label_map,
        metavar="FROM:TO,..."))
    normalise: str = field(default="dataset", metadata=flag(
        "--normalise", "dataset: the training images' per-channel mean and std; percentile: each "
        "image first mapped from its own 1st and 99.8th percentiles to 0..1 (microscopy)"))
    crop: int = field(default=256, metadata=flag("--crop", "training crop side, in pixels"))
    scale: tuple[float, float] = field(default=(0.5, 2.0), metadata=flag(
        "--scale", "random scale range MIN,MAX", metavar="MIN,MAX"))
    hflip: bool = field(default=True, metadata=flag("--hflip", "random horizontal flips"))
    vflip: bool = field(default=False, metadata=flag("--vflip", "random vertical flips"))
    rotation: float = field(default=0.0, metadata=flag("--rotation", "random rotation range, degrees"))
    colour: float = field(default=0.2, metadata=flag("--colour", "brightness and contrast jitter"))
    stain: float = field(default=0.0, metadata=flag(
        "--stain", "per-channel gain and offset jitter (stain and white-balance variation)"))
    invert: float = field(default=0.0, metadata=flag(
        "--invert", "probability of inverting the contrast (dark objects on light, and the reverse)"))
    elastic: float = field(default=0.0, metadata=flag(
        "--elastic", "elastic deformation: standard deviation of the random displacements, in pixels "
        "(control points 128 pixels apart; U-Net's EM augmentation); 0 for none"))
    workers: int = field(default=0, metadata=flag("--workers", "data-loading processes"))
    sampling: str = field(default="image", metadata=flag(
        "--sampling", "image: every training image once per epoch; area: as many draws per epoch, "
        "each image drawn with probability proportional to its pixels (a 1024x1024 image 16 times "
        "as often as a 256x256 one, so crops cover each image's pixels equally)"))


@dataclass
class OptimConfig:
    """What is minimised and how: loss, optimiser, batch."""

    loss: str = field(default="ce", metadata=flag("--loss", "semantic: ce, dice, focal or sums like ce+dice"))
    class_weights: str | list[float] | None = field(default=None, metadata=flag(
        "--class-weights", "semantic: 'auto' (median frequency) or comma-separated weights"))
    optimizer: str = field(default="adamw", metadata=flag("--optimizer", "adamw or sgd"))
    lr: float = field(default=1e-3, metadata=flag("--lr", "peak learning rate"))
    weight_decay: float = field(default=1e-4, metadata=flag("--weight-decay", "weight decay"))
    momentum: float = field(default=0.9, metadata=flag("--momentum", "SGD momentum"))
    batch_size: int = field(default=8, metadata=flag("--batch-size", "images per step (per process)"))
    accumulate: int = field(default=1, metadata=flag("--accumulate", "gradient accumulation steps"))
    mixed_precision: str = field(default="cuda", metadata=flag(
        "--mixed-precision", "cuda: float16 autocast with loss scaling on CUDA, float32 on CPU; "
        "bf16: bfloat16 autocast on either (weights stay float32; fast on CPUs that compute "
        "bfloat16, with avx512_bf16 or AMX); off: float32 throughout"))


@dataclass
class ScheduleConfig:
    """How long, and how the learning rate moves."""

    schedule: str = field(default="poly", metadata=flag("--schedule", "poly, cosine or constant"))
    warmup_steps: int = field(default=0, metadata=flag("--warmup", "warm-up steps"))
    epochs: int = field(default=50, metadata=flag("--epochs", "epochs at most"))
    max_minutes: float | None = field(default=None, metadata=flag(
        "--minutes", "stop after this much training time (the learning rate decays with the clock)"))
    patience: int | None = field(default=None, metadata=flag(
        "--patience", "stop after N validations without a better score"))
    val_every: int = field(default=1, metadata=flag(
        "--val-every", "validate every N epochs (and after the last); small datasets make short epochs"))
    keep: str = field(default="best", metadata=flag(
        "--keep", "the weights best.pt holds once training ends: best (the best validation score) or "
        "last (the final epoch, when the validation data are too few to choose an epoch)"))


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved in its checkpoints.

    Examples
    --------
    >>> config = TrainConfig.from_dict({"model": {"name": "unet"}, "output": "runs/a",
    ...     "data": {"train_images": "img", "train_labels": "lab", "num_classes": 2}})
    >>> config.optim.lr, config.data.crop
    (0.001, 256)
    """

    model: ModelConfig
    data: DataConfig
    output: str = field(metadata=flag("-o", "output folder (best.pt, last.pt, log.csv, log.json)",
                                      metavar="OUTDIR"))
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    seed: int = field(default=0, metadata=flag("--seed", "random seed"))
    device: str | None = field(default=None, metadata=flag(
        "--device", "cpu, cuda, cuda:1 (default: cuda when present)"))

    PARTS: ClassVar[dict[str, type]] = {"model": ModelConfig, "data": DataConfig, "optim": OptimConfig,
                                        "schedule": ScheduleConfig}
    """The nested parts, by the key they have in :meth:`to_dict`."""

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """A configuration from its nested plain form (as :meth:`to_dict` and checkpoints hold it);
        an unknown key is an error naming the valid ones."""
        parts: dict[str, Any] = {}
        for key, value in values.items():
            if key in cls.PARTS:
                part = cls.PARTS[key]
                if key == "optim" and "amp" in value:  # recipes before mixed_precision (amp: bool)
                    value = {k: v for k, v in value.items() if k != "amp"} | \
                        {"mixed_precision": "cuda" if value["amp"] else "off"}
                valid = {f.name for f in dataclasses.fields(part)}
                unknown = sorted(set(value) - valid)
                if unknown:
                    raise ValueError(f"{key} configuration has no {unknown}; it has {sorted(valid)}")
                if key == "data" and value.get("label_map") is not None:
                    # JSON holds a mapping's keys as text ({"255": 1}): values are whole numbers.
                    value = {**value, "label_map": {int(k): int(v) for k, v in value["label_map"].items()}}
                parts[key] = part(**value)
            elif key in ("output", "seed", "device"):
                parts[key] = value
            else:
                raise ValueError(f"a training configuration has no {key!r}; it has "
                                 f"{sorted([*cls.PARTS, 'output', 'seed', 'device'])}")
        return cls(**parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def validate(self) -> None:
        """Check the values together; fills ``data.num_classes`` from the class names."""
        data, optim, schedule = self.data, self.optim, self.schedule
        if data.num_classes is None and data.class_names is None and _gives_regions(self.model.name):
            data.num_classes = 1  # one boundary map; its regions carry no classes
        if data.num_classes is None:
            if data.class_names is None:
                raise ValueError("give the class names or the number of classes (--classes or --num-classes)")
            data.num_classes = len(data.class_names)
        if optim.optimizer not in ("adamw", "sgd"):
            raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optim.optimizer!r}")
        if schedule.schedule not in ("poly", "cosine", "constant"):
            raise ValueError(f"schedule must be 'poly', 'cosine' or 'constant', got {schedule.schedule!r}")
        if optim.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"mixed_precision must be one of {', '.join(MIXED_PRECISIONS)}, "
                             f"got {optim.mixed_precision!r}")
        if schedule.keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {schedule.keep!r}")
        if optim.batch_size < 1 or optim.accumulate < 1 or schedule.epochs < 1 or schedule.val_every < 1:
            raise ValueError("batch_size, accumulate, epochs and val_every must be positive")
        if data.class_names is not None and len(data.class_names) != data.num_classes:
            raise ValueError(f"{len(data.class_names)} class names for {data.num_classes} classes")
        if (data.val_images is None) != (data.val_labels is None):
            raise ValueError("give both val_images and val_labels, or neither")
        if data.normalise not in NORMALISATIONS:
            raise ValueError(f"normalise must be one of {sorted(NORMALISATIONS)}, got {data.normalise!r}")
        if len(data.scale) != 2 or not 0 < data.scale[0] <= data.scale[1]:
            raise ValueError(f"scale must be (min, max) with 0 < min <= max, got {data.scale}")
        if data.elastic < 0:
            raise ValueError(f"elastic must be a non-negative number of pixels, got {data.elastic}")
        if data.sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {', '.join(SAMPLINGS)}, got {data.sampling!r}")


def _gives_regions(model: str) -> bool:
    """Whether ``model`` is a registered family whose results are unlabelled regions (edge networks)."""
    from .models import get_model_info, list_models

    return model in list_models() and get_model_info(model).task == "regions"
