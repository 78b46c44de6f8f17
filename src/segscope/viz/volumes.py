"""Pictures of volumes: three orthogonal slices, and a montage of slices, each with a result's
segments overlaid and (optionally) the truth's outlines.

Grey values are windowed once for the whole volume (its 0.5th to 99.5th percentiles), so every
slice is shown on one scale; anisotropic voxels are stretched to their physical size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..io import imwrite
from ..result import Segmentation
from .pictures import label_colors, panel

__all__ = ["orthogonal_slices", "slice_montage"]

TRUTH_COLOUR = (255, 255, 255)
"""The truth's outlines: white, over the result's coloured segments and outlines."""


def _voxels(volume: Any) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """The voxels of an array or a ``Volume``, and its spacing (None for an array)."""
    data = np.asarray(getattr(volume, "data", volume))
    if data.ndim not in (3, 4):
        raise ValueError(f"expected a (Z, Y, X) or (Z, Y, X, C) volume, got shape {data.shape}")
    return data, getattr(volume, "spacing", None)


def _grey(data: np.ndarray) -> np.ndarray:
    """A (Z, Y, X) uint8 view windowed on the whole volume (the first channel, or RGB's luma)."""
    if data.ndim == 4:
        data = data[..., :3].mean(-1) if data.shape[-1] >= 3 else data[..., 0]
    values = data.astype(np.float32)
    finite = values[np.isfinite(values)]
    low, high = np.percentile(finite, [0.5, 99.5]) if finite.size else (0.0, 1.0)
    high = high if high > low else low + 1
    return np.rint(np.clip((np.nan_to_num(values, nan=low) - low) / (high - low), 0, 1) * 255).astype(
        np.uint8
    )


def _label_volume(
    seg: Segmentation | np.ndarray | None, shape: tuple[int, ...], what: str
) -> np.ndarray | None:
    if seg is None:
        return None
    labels = seg.labels if isinstance(seg, Segmentation) else np.asarray(seg)
    if labels.shape != shape:
        raise ValueError(f"{what} {labels.shape} and the volume {shape} differ in shape")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
        raise ValueError(f"{what} must hold integer labels, got {labels.dtype}")
    return labels.astype(np.int64)


def _stretch(plane: np.ndarray, factors: tuple[float, float]) -> np.ndarray:
    """Nearest-neighbour upscaling of a 2-D plane by per-axis factors."""
    rows = np.minimum(
        (np.arange(round(plane.shape[0] * factors[0])) / factors[0]).astype(int), plane.shape[0] - 1
    )
    cols = np.minimum(
        (np.arange(round(plane.shape[1] * factors[1])) / factors[1]).astype(int), plane.shape[1] - 1
    )
    return plane[np.ix_(rows, cols)]


def _picture(
    grey: np.ndarray,
    labels: np.ndarray | None,
    truth: np.ndarray | None,
    factors: tuple[float, float],
    palette: np.ndarray,
    alpha: float,
) -> np.ndarray:
    from skimage.segmentation import find_boundaries

    out = np.repeat(_stretch(grey, factors)[..., None], 3, axis=-1).astype(np.float32)
    if labels is not None:
        big = _stretch(labels, factors)
        colours = palette[big].astype(np.float32)
        inside = big > 0
        out[inside] = (1 - alpha) * out[inside] + alpha * colours[inside]
        edge = find_boundaries(big, mode="inner")
        out[edge] = colours[edge]
    if truth is not None:
        out[find_boundaries(_stretch(truth, factors), mode="inner")] = TRUTH_COLOUR
    return np.rint(out).astype(np.uint8)


def _cut_picture(grey: np.ndarray, labels: np.ndarray | None, true: np.ndarray | None, cut: tuple[Any, ...],
                 factors: tuple[float, float], palette: np.ndarray, alpha: float) -> np.ndarray:
    """:func:`_picture` of one slice (``cut``) of the volume and of its label volumes."""
    return _picture(grey[cut], None if labels is None else labels[cut], None if true is None else true[cut],
                    factors, palette, alpha)


def _planes(spacing: Sequence[float] | None, zoom: float) -> list[tuple[int, tuple[float, float]]]:
    """For each axis cut across, the display factors of the two remaining axes."""
    sizes = np.asarray(spacing if spacing is not None else (1.0, 1.0, 1.0), np.float64)
    sizes = sizes / sizes.min() * zoom
    return [(axis, tuple(float(sizes[a]) for a in range(3) if a != axis)) for axis in range(3)]  # type: ignore[misc]


def orthogonal_slices(
    volume: Any,
    segmentation: Segmentation | np.ndarray | None = None,
    *,
    truth: Segmentation | np.ndarray | None = None,
    position: Sequence[int] | None = None,
    spacing: Sequence[float] | None = None,
    zoom: float = 4.0,
    alpha: float = 0.35,
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """The axial (z), coronal (y) and sagittal (x) slices through ``position``, side by side, with
    the segments overlaid in their colours and the truth's outlines in white.

    Parameters
    ----------
    volume : ndarray or Volume
        (Z, Y, X) or (Z, Y, X, C) voxels.
    segmentation, truth : Segmentation or int ndarray, optional
        Label volumes of the volume's shape.
    position : (z, y, x), optional
        Where the slices cross; default the centre of the truth's (else the segmentation's)
        foreground, or of the volume.
    spacing : (z, y, x), optional
        The voxel size (default the ``Volume``'s, else the segmentation's, else isotropic).
    zoom : float
        Display pixels per smallest voxel side.
    alpha : float
        Opacity of the segments' fill.
    path : path, optional
        Also write the picture there.

    Returns
    -------
    (H, W, 3) uint8 ndarray

    Examples
    --------
    >>> volume = np.random.default_rng(0).random((8, 10, 12))
    >>> labels = np.zeros((8, 10, 12), int); labels[2:6, 3:7, 4:9] = 1
    >>> orthogonal_slices(volume, labels, zoom=2).dtype
    dtype('uint8')
    """
    data, own_spacing = _voxels(volume)
    shape = data.shape[:3]
    labels = _label_volume(segmentation, shape, "the segmentation")
    true = _label_volume(truth, shape, "the truth")
    spacing = (
        spacing or own_spacing or (segmentation.spacing if isinstance(segmentation, Segmentation) else None)
    )
    if position is None:
        reference = true if true is not None and true.any() else labels
        if reference is not None and reference.any():
            position = [round(c.mean()) for c in np.nonzero(reference)]
        else:
            position = [n // 2 for n in shape]
    if len(position) != 3 or not all(0 <= p < n for p, n in zip(position, shape, strict=True)):
        raise ValueError(f"position must be (z, y, x) inside the volume {shape}, got {position}")
    grey = _grey(data)
    top = max(int(labels.max(initial=0)) if labels is not None else 0, 1)
    palette = label_colors(top + 1)
    pictures, titles = [], []
    for axis, factors in _planes(spacing, zoom):
        cut = tuple(position[axis] if a == axis else slice(None) for a in range(3))
        pictures.append(_cut_picture(grey, labels, true, cut, factors, palette, alpha))
        titles.append(f"{'zyx'[axis]} = {position[axis]}")
    out = panel(pictures, titles=titles)
    if path is not None:
        imwrite(path, out)
    return out


def slice_montage(
    volume: Any,
    segmentation: Segmentation | np.ndarray | None = None,
    *,
    truth: Segmentation | np.ndarray | None = None,
    axis: int = 0,
    count: int = 12,
    columns: int = 6,
    spacing: Sequence[float] | None = None,
    zoom: float = 3.0,
    alpha: float = 0.35,
    path: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """``count`` evenly spaced slices across ``axis`` (0: z), each with the segments overlaid and
    the truth's outlines, in rows of ``columns``; each is titled with its index.

    Examples
    --------
    >>> slice_montage(np.zeros((6, 8, 8)), count=3, columns=3, zoom=1).shape[2]
    3
    """
    data, own_spacing = _voxels(volume)
    shape = data.shape[:3]
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0, 1 or 2, got {axis}")
    if count < 1 or columns < 1:
        raise ValueError(f"count and columns must be positive, got {count} and {columns}")
    labels = _label_volume(segmentation, shape, "the segmentation")
    true = _label_volume(truth, shape, "the truth")
    spacing = (
        spacing or own_spacing or (segmentation.spacing if isinstance(segmentation, Segmentation) else None)
    )
    factors = dict(_planes(spacing, zoom))[axis]
    grey = _grey(data)
    palette = label_colors(max(int(labels.max(initial=0)) if labels is not None else 0, 1) + 1)
    indices = sorted(
        set(np.linspace(0, shape[axis] - 1, min(count, shape[axis])).round().astype(int).tolist())
    )
    pictures = []
    for k in indices:
        cut = tuple(k if a == axis else slice(None) for a in range(3))
        pictures.append(_cut_picture(grey, labels, true, cut, factors, palette, alpha))
    out = panel(
        pictures, titles=[f"{'zyx'[axis]} = {k}" for k in indices], columns=min(columns, len(pictures))
    )
    if path is not None:
        imwrite(path, out)
    return out
