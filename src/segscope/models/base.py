"""What every segscope network shares: padding to the size it needs, and a model registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..result import KINDS

__all__ = [
    "ModelInfo",
    "SegmentationModel",
    "get_model",
    "get_model_info",
    "list_models",
    "register_model",
]


class SegmentationModel(nn.Module):
    """A network that maps (N, C_in, H, W) images to (N, num_classes, H, W) logits, for any H, W.

    Subclasses implement :meth:`forward_padded`, which may assume both sides are multiples of
    ``size_divisor``; :meth:`forward` pads the input (reflection, so borders look natural) and crops
    the logits back, so no input size is refused. The output is the same tensor type in training and
    evaluation mode; losses are computed outside the model.
    """

    size_divisor: int = 32

    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.config: dict[str, Any] = {}

    def forward(self, images: torch.Tensor) -> Any:
        if images.ndim != 4 or images.shape[1] != self.in_channels:
            raise ValueError(
                f"expected images of shape (N, {self.in_channels}, H, W), got {tuple(images.shape)}"
            )
        height, width = images.shape[-2:]
        d = self.size_divisor
        pad_h, pad_w = (-height) % d, (-width) % d
        if pad_h or pad_w:
            # Reflection needs the pad to be smaller than the side; replicate covers tiny inputs.
            mode = "reflect" if pad_h < height and pad_w < width else "replicate"
            images = F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
        output = self.forward_padded(images)
        if isinstance(output, torch.Tensor):
            return output[..., :height, :width]
        # A named tuple of dense maps (Panoptic-DeepLab's heads): crop each one.
        return type(output)(*(t[..., :height, :width] for t in output))

    def forward_padded(self, images: torch.Tensor) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class ModelInfo:
    """A registered model: its builder and what it is."""

    name: str
    builder: Callable[..., nn.Module]
    summary: str
    task: str = "semantic"
    """What the model's results are: "semantic", "instance", "panoptic" or "regions"."""
    adapter: str = "semantic"
    """The task adapter that trains it (:mod:`segscope.train.adapters`): its data, loss and validation."""
    defaults: dict[str, Any] = field(default_factory=dict)
    predictor: str = "semantic"
    """What decodes its output (:func:`segscope.infer.predictor.predicts`): its task's usual
    predictor, or a family's own."""


_MODELS: dict[str, ModelInfo] = {}


Builder = Callable[..., nn.Module]
TASKS = KINDS
"""What a network can be trained for: every kind of result (an edge network gives unlabelled
regions through its hierarchy)."""


def register_model(name: str, *, task: str = "semantic", adapter: str | None = None,
                   predictor: str | None = None) -> Callable[[Builder], Builder]:
    """Register a lowercase builder ``fn(*, num_classes, in_channels=3, **options)`` under ``name``.

    ``adapter`` names the task adapter that trains it (default: ``task``'s own, "semantic" for
    semantic models); a new family with its own loss registers its adapter under a new name.
    ``predictor`` names what decodes its output (default: ``task``'s predictor); a family whose
    output needs its own decoding registers a predictor under a new name.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def decorate(builder: Builder) -> Builder:
        if name in _MODELS:
            raise ValueError(f"a model named {name!r} is already registered")
        doc = (builder.__doc__ or "").strip().splitlines()
        _MODELS[name] = ModelInfo(name, builder, doc[0] if doc else "", task, adapter or task,
                                  predictor=predictor or task)
        return builder

    return decorate


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_MODELS)


def get_model_info(name: str) -> ModelInfo:
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]


def get_model(name: str, **config: Any) -> nn.Module:
    """Build a registered model: ``get_model("unet", num_classes=2, in_channels=1)``.

    The keyword options are the builder's; the model remembers them in ``model.config`` so that a
    checkpoint can rebuild it.
    """
    info = get_model_info(name)
    try:
        model = info.builder(**config)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    model.config = {"name": name, **config}
    return model
