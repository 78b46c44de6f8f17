"""Surface distances between two masks, in 2-D or 3-D, in physical units: HD95 and ASSD.

The surface of a mask is its border: the voxels of the mask with a neighbour outside it along an
axis (the mask minus its erosion by the axis-neighbour cross), as MONAI's ``get_mask_edges``
takes it. Each border voxel's distance to the other mask's border is read from a Euclidean
distance transform sampled at the voxel ``spacing``, so anisotropic voxels (MRI slices thicker
than their pixels) count at their real size.

Counts first: :func:`surface_distances` gives both directed distance sets; the reductions are
:func:`hausdorff_distance` (a percentile of each direction, the larger of the two) and
:func:`average_surface_distance` (the mean over both sets pooled). A mask with no voxel has no
surface: the distances are undefined (NaN, the suite's one policy, :mod:`._policy`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._inputs import same_shape

__all__ = [
    "SurfaceDistances",
    "average_surface_distance",
    "class_scores",
    "hausdorff_distance",
    "mask_border",
    "mean_over_cases",
    "surface_distances",
]


def mask_border(mask: np.ndarray) -> np.ndarray:
    """The voxels of ``mask`` with an axis neighbour outside it (the image's edge counts as outside).

    Examples
    --------
    >>> square = np.zeros((5, 5), bool); square[1:4, 1:4] = True
    >>> mask_border(square).sum()  # the 3x3 square's 8 outer pixels
    np.int64(8)
    """
    mask = np.asarray(mask, bool)
    eroded = ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(mask.ndim, 1),
                                    border_value=0)
    return mask & ~eroded


def _spacing(spacing: float | Sequence[float] | None, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    if isinstance(spacing, (int, float)):
        values: tuple[float, ...] = (float(spacing),) * ndim
    else:
        values = tuple(float(s) for s in spacing)
    if len(values) != ndim or not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing gives one positive size per axis ({ndim}), got {spacing!r}")
    return values


@dataclass(frozen=True)
class SurfaceDistances:
    """The directed distances between two borders, in the units of the spacing."""

    prediction_to_truth: np.ndarray
    """For each border voxel of the prediction, the distance to the nearest of the truth's."""
    truth_to_prediction: np.ndarray
    """For each border voxel of the truth, the distance to the nearest of the prediction's."""

    @property
    def defined(self) -> bool:
        """Both masks have a surface (else every distance figure is undefined)."""
        return bool(self.prediction_to_truth.size and self.truth_to_prediction.size)


def surface_distances(prediction: np.ndarray, truth: np.ndarray, *,
                      spacing: float | Sequence[float] | None = None) -> SurfaceDistances:
    """Both directed sets of border-to-border distances of two masks of one shape (2-D or 3-D).

    Parameters
    ----------
    prediction, truth : bool ndarray
        The two masks.
    spacing : float or sequence of float, optional
        The voxel size along each axis (one number for all); default 1.

    Examples
    --------
    >>> a = np.zeros((1, 9), bool); a[0, 2:4] = True
    >>> b = np.zeros((1, 9), bool); b[0, 5:7] = True
    >>> surface_distances(a, b, spacing=0.5).prediction_to_truth.tolist()
    [1.5, 1.0]
    """
    prediction = np.asarray(prediction, bool)
    truth = np.asarray(truth, bool)
    same_shape(prediction, truth, "the two masks")
    if prediction.ndim not in (2, 3):
        raise ValueError(f"surface distances are for 2-D or 3-D masks, got shape {prediction.shape}")
    sampling = _spacing(spacing, prediction.ndim)
    border_p, border_t = mask_border(prediction), mask_border(truth)
    if not border_p.any() or not border_t.any():  # no surface to measure from or to
        return SurfaceDistances(np.zeros(0), np.zeros(0))
    to_truth = ndimage.distance_transform_edt(~border_t, sampling=sampling)
    to_prediction = ndimage.distance_transform_edt(~border_p, sampling=sampling)
    return SurfaceDistances(to_truth[border_p], to_prediction[border_t])


def hausdorff_distance(prediction: np.ndarray, truth: np.ndarray, *, percentile: float = 95.0,
                       spacing: float | Sequence[float] | None = None) -> float:
    """The Hausdorff distance at ``percentile`` (HD95 by default; 100 is the classical maximum):
    the larger of the two directions' percentiles, as MONAI computes it. NaN when a mask is empty.

    Examples
    --------
    >>> a = np.zeros((9, 9), bool); a[2:5, 2:5] = True
    >>> hausdorff_distance(a, np.roll(a, 2, axis=1), percentile=100, spacing=(1.0, 0.5))
    1.0
    """
    if not 0 <= percentile <= 100:
        raise ValueError(f"percentile must lie in [0, 100], got {percentile}")
    found = surface_distances(prediction, truth, spacing=spacing)
    if not found.defined:
        return float("nan")
    return float(max(np.percentile(found.prediction_to_truth, percentile),
                     np.percentile(found.truth_to_prediction, percentile)))


def average_surface_distance(prediction: np.ndarray, truth: np.ndarray, *,
                             spacing: float | Sequence[float] | None = None) -> float:
    """The average symmetric surface distance (ASSD): the mean of both directions' distances
    pooled. NaN when a mask is empty.

    Examples
    --------
    >>> a = np.zeros((9, 9), bool); a[2:5, 2:5] = True
    >>> average_surface_distance(a, a)
    0.0
    """
    found = surface_distances(prediction, truth, spacing=spacing)
    if not found.defined:
        return float("nan")
    pooled = np.concatenate([found.prediction_to_truth, found.truth_to_prediction])
    return float(pooled.mean())


def class_scores(prediction: np.ndarray, truth: np.ndarray, *, num_classes: int,
                 spacing: float | Sequence[float] | None = None, ignore_index: int | None = None
                 ) -> dict[int, dict[str, float]]:
    """Dice, IoU, HD95 and ASSD of each foreground class (1 .. num_classes-1) of one class map,
    2-D or 3-D, as medical benchmarks report them per case.

    Dice and IoU are NaN for a class absent from both maps (undefined, left out of means); the
    surface distances are NaN when either map lacks the class. ``ignore_index`` voxels of the
    truth are left out of Dice and IoU.

    Examples
    --------
    >>> truth = np.zeros((4, 6, 6), np.uint8); truth[1:3, 1:4, 1:4] = 1
    >>> scores = class_scores(np.roll(truth, 1, axis=2), truth, num_classes=2)
    >>> round(scores[1]["dice"], 3), scores[1]["hd95"]
    (0.667, 1.0)
    """
    from .semantic import scores_from_counts, semantic_counts

    prediction, truth = np.asarray(prediction), np.asarray(truth)
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction {prediction.shape} and truth {truth.shape} differ in shape")
    per_class = scores_from_counts(semantic_counts(prediction, truth, num_classes=num_classes,
                                                   ignore_index=ignore_index))["per_class"]
    out = {}
    for c in range(1, num_classes):
        predicted, true = prediction == c, truth == c
        out[c] = {"dice": float(per_class["dice"][c]), "iou": float(per_class["iou"][c]),
                  "hd95": hausdorff_distance(predicted, true, spacing=spacing),
                  "assd": average_surface_distance(predicted, true, spacing=spacing)}
    return out


def mean_over_cases(cases: Sequence[dict[int, dict[str, float]]], class_names: Sequence[str], *,
                    metrics: Sequence[str] = ("dice", "hd95")) -> dict[str, float]:
    """Per-case scores of :func:`class_scores` reduced as medical benchmarks report them: each
    metric of each foreground class averaged over the cases where it is defined (NaN left out),
    named ``{metric}_{class}``, then over the classes, ``mean_{metric}``. ``class_names`` name the
    classes 1, 2, ... in order.

    Examples
    --------
    >>> cases = [{1: {"dice": 0.8, "hd95": 2.0}}, {1: {"dice": 0.6, "hd95": float("nan")}}]
    >>> mean_over_cases(cases, ["tumour"])
    {'dice_tumour': 0.7, 'hd95_tumour': 2.0, 'mean_dice': 0.7, 'mean_hd95': 2.0}
    """
    if not cases:
        raise ValueError("no cases to average")
    out: dict[str, float] = {}
    for c, name in enumerate(class_names, start=1):
        for metric in metrics:
            values = np.array([case[c][metric] for case in cases], np.float64)
            defined = values[~np.isnan(values)]
            out[f"{metric}_{name}"] = float(defined.mean()) if defined.size else float("nan")
    for metric in metrics:
        out[f"mean_{metric}"] = float(np.mean([out[f"{metric}_{name}"] for name in class_names]))
    return out
