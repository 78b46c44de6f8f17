"""Opening a model file as a predictor: the checkpoint's model family picks the class, a small
cache keeps the last few open."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..checkpoint import load_checkpoint
from .boundaries import BoundaryPredictor  # noqa: F401  (registers the edge-network predictor)
from .clicks import ClickPredictor  # noqa: F401  (registers the click-model predictor)
from .instances import InstanceSegmenter  # noqa: F401  (registers the instance predictors)
from .predictor import Predictor, predictor_of
from .segmenter import Segmenter
from .star import StarPredictor  # noqa: F401  (registers the star-convex polygon predictor)
from .volumes import VolumeSegmenter  # noqa: F401  (registers the 3-D predictor)

__all__ = ["CACHE_SIZE", "load_predictor", "predictor_for"]

CACHE_SIZE = 4
"""Model files kept open by :func:`predictor_for` (least recently used goes first)."""

_CACHE: OrderedDict[tuple[str, int, int], Predictor] = OrderedDict()


def load_predictor(
    path: str | os.PathLike[str], *, device: str | None = None, tile: int | str | None = "auto"
) -> Predictor:
    """The predictor of a checkpoint (``.pt``) or an exported ONNX model, as the file says.

    ``tile`` is a semantic model's sliding window (see :meth:`Segmenter.from_checkpoint`).
    """
    path = Path(path)
    if path.suffix == ".onnx":
        return Segmenter.from_onnx(path)
    checkpoint = load_checkpoint(path)
    cls: Any = predictor_of(checkpoint, source=str(path))
    predictor: Predictor = cls.from_checkpoint_data(checkpoint, device=device, tile=tile, name=str(path))
    return predictor


def predictor_for(path: str | os.PathLike[str]) -> Predictor:
    """A cached :func:`load_predictor` (reloaded when the file changes; at most
    :data:`CACHE_SIZE` files kept)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint or ONNX model")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    predictor = load_predictor(path)
    _CACHE[key] = predictor
    while len(_CACHE) > CACHE_SIZE:
        _CACHE.popitem(last=False)
    return predictor
