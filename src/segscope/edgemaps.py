"""Thin soft boundary maps: edge orientation and non-maximum suppression (numba).

A learned or filtered boundary map is blurred across each edge, a few pixels wide. Before a
boundary benchmark or a hierarchy, each edge is thinned to its crest: a pixel is kept only if it is
at least as strong as its neighbours one pixel away on either side, across the edge's direction.
The direction comes from the map itself (its second derivatives after a triangle blur), as in
Dollár and Zitnick's structured edge detector, whose suppression the HED, RCF and PiDiNet papers
use for their benchmark figures.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from scipy import ndimage

__all__ = ["edge_orientation", "suppress_non_maxima", "thin_boundaries"]


def _triangle_blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Separable triangle filter of ``radius`` (weights 1, 2, ..., r+1, ..., 2, 1), edges replicated."""
    if radius < 1:
        return image
    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]).astype(np.float64)
    kernel /= kernel.sum()
    out = ndimage.convolve1d(image, kernel, axis=0, mode="nearest")
    return ndimage.convolve1d(out, kernel, axis=1, mode="nearest")


def edge_orientation(boundary: np.ndarray, *, radius: int = 4) -> np.ndarray:
    """The direction across each edge, in radians in [0, pi), from the map's second derivatives.

    ``cos`` of the angle steps along columns and ``sin`` along rows. The map is blurred by a
    triangle filter of ``radius`` first, so the direction is that of the edge, not of its noise.

    Examples
    --------
    >>> ridge = np.zeros((9, 9)); ridge[:, 4] = 1.0  # a vertical edge: its normal runs along rows
    >>> round(float(edge_orientation(ridge)[4, 4]), 3)
    0.0
    """
    smooth = _triangle_blur(np.asarray(boundary, np.float64), radius)
    oy, ox = np.gradient(smooth)
    oxy, oxx = np.gradient(ox)
    oyy, _ = np.gradient(oy)
    # The sign of the cross derivative picks the diagonal; where it is 0 (an edge along a row or a
    # column) it must not zero the angle, or a horizontal edge would read as vertical.
    angle = np.arctan(oyy * np.where(oxy > 0, -1.0, 1.0) / (oxx + 1e-5))
    return np.mod(angle, np.pi)


@njit(cache=True)
def _bilinear(image: np.ndarray, row: float, col: float) -> float:
    h, w = image.shape
    row = min(max(row, 0.0), h - 1.001)
    col = min(max(col, 0.0), w - 1.001)
    r0, c0 = int(row), int(col)
    dr, dc = row - r0, col - c0
    r1, c1 = min(r0 + 1, h - 1), min(c0 + 1, w - 1)
    return ((1 - dr) * ((1 - dc) * image[r0, c0] + dc * image[r0, c1])
            + dr * ((1 - dc) * image[r1, c0] + dc * image[r1, c1]))


@njit(cache=True)
def _suppress(boundary: np.ndarray, orientation: np.ndarray, radius: int, multiplier: float) -> np.ndarray:
    h, w = boundary.shape
    out = boundary.copy()
    for r in range(h):
        for c in range(w):
            value = boundary[r, c]
            if value == 0:
                continue
            value *= multiplier
            cos_o, sin_o = math.cos(orientation[r, c]), math.sin(orientation[r, c])
            for d in range(-radius, radius + 1):
                if d != 0 and value < _bilinear(boundary, r + d * sin_o, c + d * cos_o):
                    out[r, c] = 0.0
                    break
    return out


def suppress_non_maxima(
    boundary: np.ndarray, orientation: np.ndarray, *, radius: int = 1, border: int = 5,
    multiplier: float = 1.01,
) -> np.ndarray:
    """Keep each pixel only where it is the crest of its edge across ``orientation``.

    Parameters
    ----------
    boundary : (H, W) ndarray
        Soft boundary strengths, at least 0.
    orientation : (H, W) ndarray
        The direction across each edge (:func:`edge_orientation`).
    radius : int
        Neighbours compared on each side, in pixels.
    border : int
        Responses within this many pixels of the image's sides fade linearly to 0 there (networks
        answer the padding with false edges).
    multiplier : float
        A pixel survives a neighbour up to this factor stronger (so a flat crest keeps a line).

    Returns
    -------
    (H, W) float64 ndarray
    """
    data = np.ascontiguousarray(boundary, np.float64)
    if data.ndim != 2 or np.shape(orientation) != data.shape:
        raise ValueError(f"boundary and orientation are 2-D maps of one shape, got {data.shape} and "
                         f"{np.shape(orientation)}")
    if radius < 1 or border < 0 or multiplier < 1:
        raise ValueError(f"radius >= 1, border >= 0 and multiplier >= 1, got {radius}, {border}, "
                         f"{multiplier}")
    out = _suppress(data, np.ascontiguousarray(orientation, np.float64), radius, multiplier)
    s = min(border, data.shape[0] // 2, data.shape[1] // 2)
    if s > 0:
        ramp = np.arange(s, dtype=np.float64) / s
        out[:s] *= ramp[:, None]
        out[-s:] *= ramp[::-1, None]
        out[:, :s] *= ramp[None, :]
        out[:, -s:] *= ramp[None, ::-1]
    return out


def thin_boundaries(boundary: np.ndarray, *, radius: int = 1, border: int = 5) -> np.ndarray:
    """:func:`suppress_non_maxima` across the map's own :func:`edge_orientation`.

    Examples
    --------
    >>> blurred = np.zeros((12, 12)); blurred[:, 5] = 0.5; blurred[:, 6] = 1.0; blurred[:, 7] = 0.5
    >>> thin = thin_boundaries(blurred, border=0)
    >>> sorted(set(np.nonzero(thin)[1].tolist()))
    [6]
    >>> sorted(set(np.nonzero(thin_boundaries(blurred.T, border=0))[0].tolist()))
    [6]
    """
    return suppress_non_maxima(boundary, edge_orientation(boundary), radius=radius, border=border)
