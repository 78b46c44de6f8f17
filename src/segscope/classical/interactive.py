"""Prompted segmentation: methods that follow clicks, boxes, scribbles and a previous mask.

Each is registered with the prompt kinds it follows (:func:`segscope.prompting.register_prompted`)
and takes the image (already cut to the window around the prompts) and the encoded
:class:`~segscope.prompting.Seeds`; it returns the objects' labels. :func:`segscope.prompt` runs them.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from scipy import ndimage

from ..prompting import Seeds, register_prompted
from ._common import check_parameter

__all__ = [
    "geodesic_labels",
    "prompted_geodesic",
    "prompted_grabcut",
    "prompted_random_walker",
    "prompted_region_growing",
    "prompted_watershed",
]


def _features(image: np.ndarray) -> np.ndarray:
    """(H, W, C) float32 values scaled to unit spread (each channel by the image's standard
    deviation, taken in float64), so that contrast weights mean the same on any dtype."""
    data = np.asarray(image)
    data = data[..., None] if data.ndim == 2 else data
    spread = data.reshape(-1, data.shape[-1]).std(axis=0, dtype=np.float64)
    scale = (1.0 / np.where(spread > 0, spread, 1.0)).astype(np.float32)
    return np.ascontiguousarray(data.astype(np.float32) * scale)


def _grey(image: np.ndarray) -> np.ndarray:
    data = np.asarray(image, np.float64)
    return data if data.ndim == 2 else data.mean(axis=-1)


# ------------------------------------------------------------------------------- geodesic
@njit(cache=True, inline="always")
def _relax(data, dist, lab, r, c, rr, cc, step, gamma2):  # pragma: no cover - compiled
    total = 0.0
    for k in range(data.shape[2]):
        d = data[r, c, k] - data[rr, cc, k]
        total += d * d
    candidate = dist[rr, cc] + np.sqrt(step * step + gamma2 * total)
    if candidate < dist[r, c]:
        dist[r, c] = candidate
        lab[r, c] = lab[rr, cc]


@njit(cache=True)
def geodesic_labels(
    data: np.ndarray, markers: np.ndarray, gamma: float, passes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each pixel's nearest marker in geodesic distance, and that distance.

    A path's length sums ``sqrt(step**2 + gamma**2 * |dI|**2)`` over its 8-connected steps (Toivanen's
    generalised distance, as in GeoS), so crossing an edge costs as much as a walk ``gamma`` times its
    contrast long. Computed by ``passes`` pairs of forward and backward raster scans, which reach every
    path with at most ``passes`` changes of direction (two suffice for most images).
    """
    height, width = markers.shape
    inf = 1e30
    dist = np.full((height, width), inf)
    lab = markers.copy()
    for r in range(height):
        for c in range(width):
            if markers[r, c] > 0:
                dist[r, c] = 0.0
    gamma2 = gamma * gamma
    diagonal = np.sqrt(2.0)
    for _ in range(passes):
        for r in range(height):
            for c in range(width):
                if r > 0:
                    _relax(data, dist, lab, r, c, r - 1, c, 1.0, gamma2)
                    if c > 0:
                        _relax(data, dist, lab, r, c, r - 1, c - 1, diagonal, gamma2)
                    if c + 1 < width:
                        _relax(data, dist, lab, r, c, r - 1, c + 1, diagonal, gamma2)
                if c > 0:
                    _relax(data, dist, lab, r, c, r, c - 1, 1.0, gamma2)
        for r in range(height - 1, -1, -1):
            for c in range(width - 1, -1, -1):
                if r + 1 < height:
                    _relax(data, dist, lab, r, c, r + 1, c, 1.0, gamma2)
                    if c > 0:
                        _relax(data, dist, lab, r, c, r + 1, c - 1, diagonal, gamma2)
                    if c + 1 < width:
                        _relax(data, dist, lab, r, c, r + 1, c + 1, diagonal, gamma2)
                if c + 1 < width:
                    _relax(data, dist, lab, r, c, r, c + 1, 1.0, gamma2)
    return lab, dist


@register_prompted("geodesic", kinds=("points", "boxes", "scribbles", "mask"))
def prompted_geodesic(
    image: np.ndarray, seeds: Seeds, *, gamma: float = 20.0, smoothing: float = 1.0, passes: int = 2
) -> np.ndarray:
    """Geodesic segmentation: each pixel joins the prompt it reaches by the shortest path that
    crosses the least contrast (Bai and Sapiro 2007; the distance of Criminisi et al.'s GeoS).

    Parameters
    ----------
    gamma : float
        Weight of contrast against distance: a step across one standard deviation of the image
        costs as much as ``gamma`` pixels of walk.
    smoothing : float
        Gaussian sigma applied before (0 for none).
    passes : int
        Pairs of raster scans.

    References
    ----------
    .. [1] X. Bai and G. Sapiro, "A geodesic framework for fast interactive image and video
       segmentation and matting", ICCV 2007.
    .. [2] A. Criminisi, T. Sharp and A. Blake, "GeoS: geodesic image segmentation", ECCV 2008.
    """
    check_parameter("geodesic", "gamma", gamma, low=0)
    check_parameter("geodesic", "smoothing", smoothing, low=0, high=100)
    if passes < 1:
        raise ValueError(f"geodesic: passes must be at least 1, got {passes}")
    data = _features(image)
    if smoothing > 0:
        data = ndimage.gaussian_filter(data, (smoothing, smoothing, 0))
    markers = seeds.markers()
    labels, _ = geodesic_labels(np.ascontiguousarray(data), markers, float(gamma), int(passes))
    return seeds.labels_from_markers(labels)


# -------------------------------------------------------------------------------- grabcut
def _rgb8(image: np.ndarray) -> np.ndarray:
    """An 8-bit RGB view for GrabCut, which only takes that: 8-bit colour as it is, anything else
    stretched from its 0.5th to 99.5th percentile (for the colour models only; no result depends on
    the scale otherwise)."""
    data = np.asarray(image)
    if data.ndim == 3 and data.shape[-1] > 3:
        data = data[..., :3]
    if data.dtype != np.uint8:
        values = data.astype(np.float64)
        low, high = np.percentile(values, [0.5, 99.5])
        data = np.clip((values - low) / max(high - low, 1e-12) * 255, 0, 255).astype(np.uint8)
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=-1)
    elif data.shape[-1] == 1:
        data = np.repeat(data, 3, axis=-1)
    elif data.shape[-1] == 2:
        data = np.concatenate([data, data[..., :1]], axis=-1)
    return np.ascontiguousarray(data)


def _cut(
    rgb: np.ndarray, mask: np.ndarray, background: np.ndarray, seeds: Seeds, obj: int, iterations: int
) -> np.ndarray:
    """Object ``obj`` by GrabCut from ``mask`` (its probable extent already marked): the prompts'
    marks are made sure (the object's own; ``background`` and the other objects' against it), the
    colour models and the cut alternate ``iterations`` times, and the object is what ends sure or
    probable object. With nothing on one side to model, it is its marks and probable extent as given."""
    import cv2

    mask[background | seeds.negative(obj)] = cv2.GC_BGD
    mask[seeds.positive(obj)] = cv2.GC_FGD
    found = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    if found.any() and not found.all():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(rgb, mask, (0, 0, 0, 0), bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        found = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    return found


@register_prompted("grabcut", kinds=("points", "boxes", "scribbles", "mask"))
def prompted_grabcut(
    image: np.ndarray, seeds: Seeds, *, iterations: int = 5, click_reach: float = 0.1
) -> np.ndarray:
    """GrabCut (OpenCV): colour models of object and background, alternated with a graph cut.

    Each object is cut in turn: its box or previous mask is probably object, its clicks and
    scribbles surely object, the background marks and the other objects surely background.
    Objects prompted by clicks alone are probably object within ``click_reach`` of the window's
    side around each positive click.

    Parameters
    ----------
    iterations : int
        Rounds of colour modelling and cutting.
    click_reach : float
        Radius of the probable-object disc around clicks, as a share of the window's longer side.

    References
    ----------
    .. [1] C. Rother, V. Kolmogorov and A. Blake, "GrabCut: interactive foreground extraction
       using iterated graph cuts", SIGGRAPH 2004.
    """
    import cv2

    if iterations < 1:
        raise ValueError(f"grabcut: iterations must be at least 1, got {iterations}")
    check_parameter("grabcut", "click_reach", click_reach, low=0, high=1)
    rgb = _rgb8(image)
    height, width = rgb.shape[:2]
    labels = np.zeros((height, width), np.int32)
    background = seeds.markers() == 1
    reach = max(2, int(click_reach * max(height, width)))
    for obj in seeds.objects:
        mask = np.full((height, width), cv2.GC_PR_BGD, np.uint8)
        likely = seeds.likely == obj
        if likely.any():
            mask[likely] = cv2.GC_PR_FGD
        else:
            near = ndimage.distance_transform_edt(~seeds.positive(obj)) <= reach
            mask[near] = cv2.GC_PR_FGD
        labels[_cut(rgb, mask, background, seeds, obj, iterations) & (labels == 0)] = obj
    return labels


@register_prompted("geodesic_grabcut", kinds=("points", "boxes", "scribbles", "mask"))
def prompted_geodesic_grabcut(
    image: np.ndarray, seeds: Seeds, *, gamma: float = 20.0, iterations: int = 3
) -> np.ndarray:
    """Geodesic segmentation refined by GrabCut's colour models: the geodesic result is each
    object's probable extent (a box or previous mask seeds an object that has no click), the
    prompts' marks are sure, and GrabCut's graph cut settles the boundary (after Gulshan et al.'s
    geodesic star convexity, which keeps GrabCut near what the user pointed at).

    Parameters
    ----------
    gamma : float
        The geodesic distance's weight of contrast (see ``geodesic``).
    iterations : int
        GrabCut's rounds.

    References
    ----------
    .. [1] V. Gulshan, C. Rother, A. Criminisi, A. Blake and A. Zisserman, "Geodesic star
       convexity for interactive image segmentation", CVPR 2010.
    """
    import cv2

    if iterations < 1:
        raise ValueError(f"geodesic_grabcut: iterations must be at least 1, got {iterations}")
    first = prompted_geodesic(image, seeds, gamma=gamma)
    rgb = _rgb8(image)
    background = seeds.markers() == 1
    labels = np.zeros(first.shape, np.int32)
    for obj in seeds.objects:
        mask = np.full(first.shape, cv2.GC_PR_BGD, np.uint8)
        # The clicks' geodesic extent, not a previous mask: a leak the user clicked away stays away.
        mask[first == obj] = cv2.GC_PR_FGD
        labels[_cut(rgb, mask, background, seeds, obj, iterations) & (labels == 0)] = obj
    return labels


# ------------------------------------------------------------------- multi-label seeded methods
@register_prompted("random_walker", kinds=("points", "boxes", "scribbles", "mask"))
def prompted_random_walker(
    image: np.ndarray, seeds: Seeds, *, beta: float = 130.0, tol: float = 1e-3
) -> np.ndarray:
    """The random walker (scikit-image) from the prompts' marks: background, and one label per
    object (an object with a box or mask only is seeded at its centre).

    Parameters
    ----------
    beta : float
        Edge penalty.
    tol : float
        Conjugate-gradient tolerance.
    """
    from .random_walk import random_walker

    markers = seeds.markers()
    result = random_walker(image, markers=markers, beta=beta, tol=tol)
    return seeds.labels_from_markers(result.class_map(void=-1) + 1)


@register_prompted("watershed", kinds=("points", "boxes", "scribbles", "mask"))
def prompted_watershed(image: np.ndarray, seeds: Seeds, *, smoothing: float = 1.0) -> np.ndarray:
    """Marker watershed of the Sobel gradient, flooded from the prompts' marks.

    Parameters
    ----------
    smoothing : float
        Gaussian sigma applied before the gradient (0 for none).
    """
    from skimage import filters, segmentation

    check_parameter("watershed", "smoothing", smoothing, low=0, high=100)
    grey = _grey(image)
    if smoothing > 0:
        grey = filters.gaussian(grey, sigma=smoothing, preserve_range=True)
    return seeds.labels_from_markers(segmentation.watershed(filters.sobel(grey), seeds.markers()))


@register_prompted("region_growing", kinds=("points", "boxes", "scribbles", "mask"))
def prompted_region_growing(image: np.ndarray, seeds: Seeds) -> np.ndarray:
    """Seeded region growing (Adams and Bischof) from the prompts' marks."""
    from ._kernels import seeded_region_growing

    data = np.asarray(image, np.float64)
    data = data[..., None] if data.ndim == 2 else data
    grown = seeded_region_growing(np.ascontiguousarray(data)[None], seeds.markers()[None], -1.0)[0]
    return seeds.labels_from_markers(grown.astype(np.int32))
