"""Helpers shared by the classical methods."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..result import Provenance, Segmentation


def semantic_from_classes(
    class_map: np.ndarray,
    *,
    num_classes: int,
    method: str,
    details: dict[str, Any],
    class_names: Sequence[str] | None = None,
) -> Segmentation:
    """A semantic result whose provenance records what the method chose (thresholds ...)."""
    if class_names is None:
        class_names = (
            ("background", "foreground") if num_classes == 2
            else tuple(f"class_{k}" for k in range(num_classes))
        )
    provenance = Provenance(method, details=details)
    if class_map.dtype == bool or (class_map.dtype == np.uint8 and num_classes <= 255):
        # The map was made for this result: it is kept as it is, without a copy.
        return Segmentation.from_class_map(
            class_map.view(np.uint8), num_classes=num_classes, class_names=class_names,
            provenance=provenance, copy=False,
        )
    return Segmentation.from_class_map(
        class_map.astype(np.int32, copy=False), num_classes=num_classes, class_names=class_names,
        provenance=provenance,
    )


def regions(labels: np.ndarray, *, method: str, details: dict[str, Any] | None = None
            ) -> Segmentation:
    return Segmentation.from_labels(
        labels.astype(np.int32, copy=False), kind="regions",
        provenance=Provenance(method, details=details or {}),
    )


def absorb_small(labels: np.ndarray, data: np.ndarray, min_size: int) -> np.ndarray:
    """Merge regions smaller than ``min_size`` pixels into their closest-mean neighbour.

    ``data`` is (H, W, C); smallest regions first, repeated until no region below ``min_size``
    has a neighbour left. Returns sequential labels 1..N (int32); label 0 is a region like any other.
    """
    from ._kernels import absorb_small_regions, relabel_sequential

    labels = np.ascontiguousarray(labels, dtype=np.int64)
    if labels.size == 0 or int(labels.max()) < 1:
        return labels.astype(np.int32)
    merged = absorb_small_regions(labels + 1, np.ascontiguousarray(data, dtype=np.float64), int(min_size))
    return relabel_sequential(merged)
