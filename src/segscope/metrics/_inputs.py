"""Turn what a user passes to a metric (a Segmentation or an array) into the arrays metrics count on."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..result import Segmentation


def label_array(value: Any, name: str) -> np.ndarray:
    """The (H, W) integer label image of a :class:`Segmentation` or an array."""
    if isinstance(value, Segmentation):
        return value.labels
    array = np.asarray(value)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D label image, got shape {array.shape}")
    if array.dtype == bool:
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"{name} must hold integer labels, got dtype {array.dtype}")
    if array.size and int(array.min()) < 0:
        raise ValueError(f"{name} holds negative labels (smallest {int(array.min())})")
    return array


def same_shape(a: np.ndarray, b: np.ndarray, what: str = "prediction and truth") -> None:
    if a.shape != b.shape:
        raise ValueError(f"{what} differ in shape: {a.shape} vs {b.shape}")

