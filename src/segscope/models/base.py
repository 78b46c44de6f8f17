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
    "fuse_batch_norms",
    "get_model",
    "get_model_info",
    "list_models",
    "on_device",
    "register_model",
]


class SegmentationModel(nn.Module):
    """A network that maps (N, C_in, *spatial) inputs to (N, num_classes, *spatial) logits, for any
    spatial size: (H, W) images, or (D, H, W) volumes when ``spatial_dims`` is 3.

    Subclasses implement :meth:`forward_padded`, which may assume every spatial side is a multiple
    of ``size_divisor``; :meth:`forward` pads the input (reflection, so borders look natural) and
    crops the logits back, so no input size is refused. The output is the same tensor type in
    training and evaluation mode; losses are computed outside the model.
    """

    size_divisor: int = 32
    spatial_dims: int = 2
    memory_format: torch.memory_format = torch.channels_last
    """How the weights lie in memory, in training and inference (:func:`on_device` places a
    network so; its inputs may stay contiguous). Channels last runs 2-D convolutions faster on
    CPU (PyTorch 2.14, 2 cores): inference 1.3 to 1.8 times for every 2-D zoo network (1.79x for
    ``nuclei`` at 1024x1024), a training step 1.2 to 1.6 times (rcf, stardist, unet, swiftnet),
    for the same logits up to float rounding."""

    def __init__(self, *, num_classes: int, in_channels: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be at least 1, got {in_channels}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.config: dict[str, Any] = {}

    @property
    def export_divisor(self) -> int:
        """The multiple each side of a fixed-size (ONNX) input must be: ``size_divisor``, unless
        the network averages its features over fixed grids, which must then divide them."""
        return self.size_divisor

    def pad(self, images: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """``images`` checked and padded to multiples of ``size_divisor``, and their spatial size."""
        if images.ndim != 2 + self.spatial_dims or images.shape[1] != self.in_channels:
            axes = "H, W" if self.spatial_dims == 2 else "D, H, W"
            raise ValueError(f"expected inputs of shape (N, {self.in_channels}, {axes}), got "
                             f"{tuple(images.shape)}")
        size = tuple(int(n) for n in images.shape[2:])
        d = self.size_divisor
        pads = [(-n) % d for n in size]
        if any(pads):
            # Reflection needs the pad to be smaller than the side; replicate covers tiny inputs.
            mode = "reflect" if all(p < n for p, n in zip(pads, size, strict=True)) else "replicate"
            images = F.pad(images, [v for p in reversed(pads) for v in (0, p)], mode=mode)
        return images, size

    def forward(self, images: torch.Tensor) -> Any:
        padded, size = self.pad(images)
        output = self.forward_padded(padded)
        crop = (Ellipsis, *(slice(0, n) for n in size))
        if isinstance(output, torch.Tensor):
            return output[crop]
        # A named tuple of dense maps (Panoptic-DeepLab's heads): crop each one.
        return type(output)(*(t[crop] for t in output))

    def forward_padded(self, images: torch.Tensor) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


def fuse_batch_norms(model: nn.Module) -> nn.Module:
    """``model`` (in evaluation mode) with every batch normalisation that directly follows a
    convolution in a ``nn.Sequential`` folded into that convolution's weights and bias, in
    place: the same outputs to float rounding, one pass over the activations fewer. Predictors
    run their networks so; a network in training mode is refused (its statistics still move).

    >>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU()).eval()
    >>> type(fuse_batch_norms(net)[1]).__name__
    'Identity'
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fuse_batch_norms needs a network in evaluation mode (model.eval())")
    convolutions = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
    for sequence in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for k in range(len(sequence) - 1):
            conv, norm = sequence[k], sequence[k + 1]
            if (isinstance(conv, convolutions) and isinstance(norm, norms) and norm.track_running_stats
                    and norm.running_mean is not None and conv.out_channels == norm.num_features):
                sequence[k] = fuse_conv_bn_eval(conv, norm)
                sequence[k + 1] = nn.Identity()
    return model


def on_device(model: Any, device: Any) -> Any:
    """``model`` moved to ``device`` in the memory layout its family declares (``memory_format``):
    how every trainer and predictor places a network."""
    return model.to(device, memory_format=model.memory_format)


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
