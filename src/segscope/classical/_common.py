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
    return Segmentation.from_class_map(
        class_map.astype(np.int32, copy=False), num_classes=num_classes, class_names=class_names,
        provenance=Provenance(method, details=details),
    )


def regions(labels: np.ndarray, *, method: str, details: dict[str, Any] | None = None
            ) -> Segmentation:
    return Segmentation.from_labels(
        labels.astype(np.int32, copy=False), kind="regions",
        provenance=Provenance(method, details=details or {}),
    )
