"""What every trained model offers as a method: the predictor protocol, and what they share.

A predictor has a ``task``, its ``class_names`` and ``segment(image, **options) -> Segmentation``.
Predictor classes say which checkpoint tasks they run with :func:`predicts`; loading a file picks
the class by the checkpoint's task (:mod:`segscope.infer.loading`), with no list of names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..checkpoint import Checkpoint
from ..imagecheck import check_image
from ..result import Segmentation

__all__ = ["Predictor", "build_network", "normalise_image", "predictor_class", "predicts"]


@runtime_checkable
class Predictor(Protocol):
    """A trained model used like any method."""

    task: str
    """"semantic", "instance" or "panoptic"."""
    class_names: list[str]
    name: str
    """The model file, recorded as the method in each result's provenance."""

    def for_tiles(self) -> Predictor:
        """This predictor as the tiled engine runs it on one tile at a time: the least memory per
        call (the network is shared, not copied)."""
        ...

    @property
    def segment(self) -> Callable[..., Segmentation]:
        """``segment(image, **options)``: the options differ by task (``overlap`` and ``flip`` for
        semantic models, ``score_threshold`` and ``min_area`` for instance models)."""


_BY_TASK: dict[str, Callable[..., Predictor]] = {}


def predicts(*tasks: str) -> Callable[[type], type]:
    """Class decorator: this predictor runs checkpoints of ``tasks``; it is built with
    ``cls.from_checkpoint_data(checkpoint, device=..., tile=..., name=...)``."""

    def register(cls: type) -> type:
        for task in tasks:
            if task in _BY_TASK:
                raise ValueError(f"checkpoints of task {task!r} already run with {_BY_TASK[task]}")
            _BY_TASK[task] = cls
        return cls

    return register


def predictor_class(task: str, *, source: str) -> Callable[..., Predictor]:
    """The predictor class that runs checkpoints of ``task``."""
    try:
        return _BY_TASK[task]
    except KeyError:
        raise ValueError(f"{source}: no predictor runs {task!r} checkpoints; known tasks: "
                         f"{sorted(_BY_TASK)}") from None


def build_network(checkpoint: Checkpoint, *, device: str | None = None) -> tuple[Any, Any]:
    """The checkpoint's network with its weights, in evaluation mode on ``device`` (default: CUDA
    when present), and that device."""
    import torch

    from ..models import get_model

    model = get_model(checkpoint.model, **checkpoint.options)
    model.load_state_dict(checkpoint.state_dict)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(dev).eval()
    return model, dev


def normalise_image(
    image: np.ndarray, mean: np.ndarray, std: np.ndarray, *, channel_axis: int | None = None
) -> np.ndarray:
    """A (C_in, H, W) float32 array normalised with a checkpoint's per-channel ``mean`` and ``std``
    (in the image's own units: no dtype rescaling)."""
    image = check_image(image, channel_axis=channel_axis)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != mean.size:
        raise ValueError(f"the model takes {mean.size} channel(s); the image has {image.shape[-1]}")
    x = (image.astype(np.float32) - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1))
