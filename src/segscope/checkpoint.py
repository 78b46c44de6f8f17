"""The typed checkpoint: everything needed to rebuild, run and resume a trained model.

A checkpoint is written and read here only. On disk it is a ``torch.save`` file of plain data
(strings, numbers, lists, dicts, tensors) read back with ``weights_only=True``, so a hostile file
cannot run code. In memory it is a :class:`Checkpoint`, whose fields say what they hold.

Schema versions: 1 (a flat dict with ``model``, ``normalisation``, ``crop`` ...) is still read;
2 is written, and 3 when weights are stored as int8 (``save_checkpoint(..., precision="int8")``:
each weight tensor of two or more dimensions as int8 with one fp32 scale per slice along its first
axis, the output channel of a convolution; the rest in fp16), so that a segscope that cannot
restore them refuses the file instead of loading integers as weights. Reading restores float32
weights. torch is imported only to save and load.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_bytes

__all__ = ["FORMAT", "PRECISIONS", "SCHEMA_VERSION", "Checkpoint", "InputSpec", "Scores", "TrainingState",
           "load_checkpoint", "percentile_rescale", "save_checkpoint"]

FORMAT = "segscope.checkpoint"
SCHEMA_VERSION = 3
"""The newest schema this module reads; files are written as 2 unless they hold int8 weights."""
_PLAIN_VERSION = 2
_INT8_VERSION = 3
PRECISIONS = ("fp32", "fp16", "int8")
"""How :func:`save_checkpoint` may store floating-point weights, largest first."""
_INT8_MIN_DIMS = 2


@dataclass(frozen=True)
class InputSpec:
    """What the model expects of an image: the training normalisation and the data it saw."""

    mean: tuple[float, ...]
    std: tuple[float, ...]
    """Per input channel, in the images' own units (no dtype rescaling)."""
    dtype: str | None = None
    """The training images' dtype (None in checkpoints older than schema 2)."""
    value_range: tuple[float, float] | None = None
    """The smallest and largest value seen in the training images."""
    crop: int | None = None
    """The training crop, in pixels; sliding windows default to twice it."""
    percentiles: tuple[float, float] | None = None
    """When set, every image is first mapped, channel by channel, from its own low and high
    percentiles to 0 and 1 (as StarDist and Cellpose do), and ``mean`` and ``std`` refer to the
    mapped values; the images' dtype and brightness then no longer matter."""

    @property
    def channels(self) -> int:
        return len(self.mean)

    def rescale(self, image: np.ndarray) -> np.ndarray:
        """``image`` (H, W, C) in the units ``mean`` and ``std`` refer to: as it is, or (with
        :attr:`percentiles`) each channel mapped from its percentiles to 0..1, as float32."""
        if self.percentiles is None:
            return image
        return percentile_rescale(image, self.percentiles)


def percentile_rescale(image: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """Each channel of an (H, W, C) image mapped from its ``percentiles`` (low, high) to 0 and 1.

    Values beyond them go below 0 or above 1 (nothing is clipped); a flat channel becomes 0.

    >>> percentile_rescale(np.arange(11.0).reshape(1, 11, 1), (0, 100))[0, :, 0].tolist()[:3]
    [0.0, 0.10000000149011612, 0.20000000298023224]
    """
    image = np.asarray(image)
    flat = image.reshape(-1, image.shape[-1])
    if image.dtype.kind == "u" and image.dtype.itemsize <= 2 and flat.shape[0]:
        low, high = np.array([_counted_percentiles(flat[:, c], percentiles) for c in range(flat.shape[1])]).T
    else:
        low, high = np.percentile(flat.astype(np.float32), percentiles, axis=0)
    span = np.where(high > low, high - low, 1.0).astype(np.float32)
    return (image.astype(np.float32) - low.astype(np.float32)) / span


def _counted_percentiles(values: np.ndarray, percentiles: tuple[float, float]) -> list[float]:
    """``np.percentile(values, percentiles)`` (linear interpolation) of 8- or 16-bit unsigned
    values, from their histogram instead of a partial sort: about 10 times faster on a 1024x1024
    RGB image (4 ms against 47 ms here)."""
    cumulative = np.cumsum(np.bincount(values))
    last = int(cumulative[-1]) - 1
    found = []
    for q in percentiles:
        position = q / 100 * last
        below = int(np.floor(position))
        # the k-th smallest value (from 0) is the first whose cumulative count exceeds k
        low, high = np.searchsorted(cumulative, [below, min(below + 1, last)], side="right")
        found.append(float(low + (high - low) * (position - below)))
    return found


@dataclass(frozen=True)
class Scores:
    """How training went: the validation figure that picked the best epoch, and every epoch."""

    metric: str | None = None
    best_score: float = -1.0
    best_epoch: int = -1
    history: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class TrainingState:
    """What resuming needs beyond the weights (``last.pt`` only holds it meaningfully)."""

    epoch: int
    step: int
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    scaler: dict[str, Any]
    generator: Any
    rng: dict[str, Any]


@dataclass(frozen=True)
class Checkpoint:
    """A trained model: which network, its weights, its classes and what its inputs must be."""

    task: str
    """"semantic", "instance" or "panoptic"."""
    model: str
    """The registered model name (``segscope.models``)."""
    options: dict[str, Any]
    """The builder's keyword options (num_classes, in_channels ...)."""
    state_dict: dict[str, Any] = field(repr=False)
    class_names: tuple[str, ...]
    inputs: InputSpec
    ignore_index: int | None = None
    label_map: dict[int, int] | None = None
    recipe: dict[str, Any] = field(default_factory=dict)
    """The training configuration that made it."""
    scores: Scores = field(default_factory=Scores)
    training: TrainingState | None = None
    version: int = _PLAIN_VERSION
    decoding: dict[str, float] = field(default_factory=dict)
    """Decoding settings chosen on the validation images once training ended (a star-convex
    model's probability and overlap thresholds), or inference defaults a zoo card sets (test-time
    flips); its predictor declares which it reads (``decoded_by``)."""

    def to_payload(self) -> dict[str, Any]:
        """The plain-data form written to disk (schema 2; :func:`save_checkpoint` makes it 3 when
        it stores int8 weights)."""
        training = None
        if self.training is not None:
            t = self.training
            training = {"epoch": t.epoch, "step": t.step, "optimizer": t.optimizer, "scheduler": t.scheduler,
                        "scaler": t.scaler, "generator": t.generator, "rng": t.rng}
        return {
            "format": FORMAT,
            "version": _PLAIN_VERSION,
            "task": self.task,
            "model": {"name": self.model, "options": dict(self.options)},
            "state_dict": self.state_dict,
            "class_names": list(self.class_names),
            "inputs": {"mean": list(self.inputs.mean), "std": list(self.inputs.std),
                       "dtype": self.inputs.dtype,
                       "value_range": (None if self.inputs.value_range is None
                                       else list(self.inputs.value_range)),
                       "crop": self.inputs.crop,
                       "percentiles": (None if self.inputs.percentiles is None
                                       else list(self.inputs.percentiles))},
            "labels": {"ignore_index": self.ignore_index, "label_map": self.label_map},
            "recipe": dict(self.recipe),
            "scores": {"metric": self.scores.metric, "best_score": self.scores.best_score,
                       "best_epoch": self.scores.best_epoch, "history": list(self.scores.history)},
            "training": training,
            "decoding": dict(self.decoding),
        }

    @classmethod
    def from_payload(cls, data: dict[str, Any], *, source: str = "checkpoint") -> Checkpoint:
        """Read the plain-data form of any schema version (``source`` names it in errors)."""
        version = data.get("version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise ValueError(f"{source}: checkpoint version {version} is newer than this segscope reads")
        try:
            if version < 2:
                return cls._from_version_1(data)
            model, inputs, labels, scores = data["model"], data["inputs"], data["labels"], data["scores"]
            training = data.get("training")
            return cls(
                task=str(data["task"]), model=str(model["name"]), options=dict(model["options"]),
                state_dict=_restored(data["state_dict"], data.get("quantised"), source),
                class_names=tuple(data["class_names"]),
                inputs=InputSpec(tuple(inputs["mean"]), tuple(inputs["std"]), inputs.get("dtype"),
                                 None if inputs.get("value_range") is None else tuple(inputs["value_range"]),
                                 inputs.get("crop"),
                                 None if inputs.get("percentiles") is None else tuple(inputs["percentiles"])),
                ignore_index=labels.get("ignore_index"), label_map=labels.get("label_map"),
                recipe=dict(data.get("recipe") or {}),
                scores=Scores(scores.get("metric"), float(scores.get("best_score", -1.0)),
                              int(scores.get("best_epoch", -1)), tuple(scores.get("history") or ())),
                training=None if training is None else TrainingState(**training),
                decoding={str(k): float(v) for k, v in (data.get("decoding") or {}).items()},
                version=version,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{source}: checkpoint lacks or mangles {exc}") from None

    @classmethod
    def _from_version_1(cls, data: dict[str, Any]) -> Checkpoint:
        options = dict(data["model"])
        name = options.pop("name")
        training = None
        if "optimizer" in data:
            training = TrainingState(data["epoch"], data["step"], data["optimizer"], data["scheduler"],
                                     data["scaler"], data["generator"], data["rng"])
        norm = data["normalisation"]
        return cls(
            task=str(data.get("task", "semantic")), model=str(name), options=options,
            state_dict=data["state_dict"], class_names=tuple(data["class_names"]),
            inputs=InputSpec(tuple(norm["mean"]), tuple(norm["std"]), crop=data.get("crop")),
            ignore_index=data.get("ignore_index"), label_map=data.get("label_map"),
            recipe=dict(data.get("train_config") or {}),
            scores=Scores(data.get("metric"), float(data.get("best_score", -1.0)),
                          int(data.get("best_epoch", -1)), tuple(data.get("history") or ())),
            training=training, version=1,
        )


def save_checkpoint(path: str | os.PathLike[str], checkpoint: Checkpoint, *,
                    precision: str | None = None) -> None:
    """Write a checkpoint atomically (a temporary file, then a rename).

    ``precision`` stores the floating-point weights as ``"fp32"``, ``"fp16"`` or ``"int8"``
    (symmetric, one scale per output channel; biases and normalisation statistics in fp16);
    ``None`` keeps them as they are. Whether a precision loses anything is for the caller to
    measure (``segscope.zoo.build`` scores each against fp32).
    """
    import torch

    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"{path}: save_checkpoint takes a Checkpoint, got {type(checkpoint).__name__}")
    if precision is not None and precision not in PRECISIONS:
        raise ValueError(f"{path}: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    payload = checkpoint.to_payload()
    if precision is not None:
        weights, scales = _stored(checkpoint.state_dict, precision)
        payload["state_dict"] = weights
        if scales:
            payload["quantised"], payload["version"] = scales, _INT8_VERSION
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _stored(state_dict: dict[str, Any], precision: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(weights, int8 scales by name) of ``state_dict`` at ``precision``."""
    import torch

    weights: dict[str, Any] = {}
    scales: dict[str, Any] = {}
    for name, value in state_dict.items():
        if not (isinstance(value, torch.Tensor) and torch.is_floating_point(value)):
            weights[name] = value
            continue
        value = value.detach().float()
        if precision == "int8" and value.ndim >= _INT8_MIN_DIMS and value.numel() > 0:
            largest = value.abs().amax(dim=tuple(range(1, value.ndim)))
            scale = torch.where(largest > 0, largest / 127, torch.ones_like(largest))
            shape = (-1,) + (1,) * (value.ndim - 1)
            weights[name] = (value / scale.view(shape)).round().clamp(-127, 127).to(torch.int8)
            scales[name] = scale
        else:
            weights[name] = value if precision == "fp32" else value.half()
    return weights, scales


def _restored(state_dict: Any, quantised: Any, source: str) -> Any:
    """``state_dict`` with its int8 tensors (``quantised``: their scales) back in float32."""
    import torch

    if not quantised:
        return state_dict
    if not isinstance(quantised, dict) or not isinstance(state_dict, dict):
        raise ValueError(f"{source}: checkpoint's int8 scales are not a table of tensors")
    restored = dict(state_dict)
    for name, scale in quantised.items():
        value = state_dict.get(name)
        if not (isinstance(value, torch.Tensor) and value.dtype == torch.int8 and value.ndim >= 1
                and isinstance(scale, torch.Tensor) and scale.shape == value.shape[:1]):
            raise ValueError(f"{source}: checkpoint's int8 weight {name!r} does not match its scales")
        restored[name] = value.float() * scale.float().view((-1,) + (1,) * (value.ndim - 1))
    return restored


def load_checkpoint(path: str | os.PathLike[str], *, map_location: Any = "cpu") -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``: tensors and plain data only, never code."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        # mmap: tensors stay in the file until used, so reading a checkpoint for inference does
        # not load the optimizer state into memory.
        data = torch.load(path, map_location=map_location, weights_only=True, mmap=True)
    except Exception as exc:  # torch raises many types for a bad or hostile file
        # Not torch's advice to load with weights_only=False: that would run the file's code.
        hostile = "weights only load failed" in str(exc).lower()
        why = "it holds objects other than tensors and plain data, which are never loaded" if hostile \
            else f"{type(exc).__name__}"
        raise ValueError(f"{path}: not a segscope checkpoint ({why}); nothing in it was run") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a segscope checkpoint (no '{FORMAT}' header)")
    return Checkpoint.from_payload(data, source=str(path))
