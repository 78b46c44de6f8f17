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
        return Segmentation._from_byte_class_map(
            class_map.view(np.uint8), num_classes=num_classes, class_names=class_names,
            provenance=provenance,
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

    ``data`` is (H, W, C); repeated until no region below ``min_size`` has a neighbour left.
    """
    labels = np.asarray(labels)
    n = int(labels.max()) + 1
    if n <= 2:
        return labels
    flat = labels.ravel()
    sizes = np.bincount(flat, minlength=n).astype(np.float64)
    sums = np.stack([np.bincount(flat, weights=data[..., c].ravel(), minlength=n)
                     for c in range(data.shape[-1])], axis=1)
    pairs = np.concatenate([
        np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
        np.stack([labels[:-1, :].ravel(), labels[1:, :].ravel()], 1),
    ])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, axis=1), axis=0)
    neighbours: dict[int, set[int]] = {}
    for a, b in pairs.tolist():
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    parent = np.arange(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    changed = True
    while changed:
        changed = False
        for region in np.argsort(sizes, kind="stable").tolist():
            if region == 0 or parent[region] != region or sizes[region] >= min_size:
                continue
            mean = sums[region] / max(sizes[region], 1.0)
            best, best_d = -1, np.inf
            for nb in neighbours.get(region, ()):
                r = root(nb)
                if r == region:
                    continue
                d = float(((sums[r] / sizes[r] - mean) ** 2).sum())
                if d < best_d:
                    best, best_d = r, d
            if best < 0:
                continue
            parent[region] = best
            sizes[best] += sizes[region]
            sums[best] += sums[region]
            neighbours.setdefault(best, set()).update(neighbours.pop(region, set()))
            changed = True
    lut = np.array([root(i) for i in range(n)])
    return lut[labels]
