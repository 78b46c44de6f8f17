"""Watershed segmentation with given or automatic markers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..imagecheck import check_image_or_volume, to_gray
from ..registry import register_method
from ..result import Provenance, Segmentation
from ..tiling import FromHistogram, FromTiles, GreyHistogram, Objects, grey, grey_histogram
from ._common import check_parameter, check_sigma, fill_holes, h_maxima, h_minima, regions

__all__ = ["watershed"]


def _tile_gradient_range(pixels: np.ndarray, core: tuple[slice, slice], params: Mapping[str, Any]
                         ) -> tuple[float, float] | None:
    """The range of the surface :func:`watershed` floods over one tile's own pixels."""
    if pixels.dtype == bool or params["markers"] is not None or params["gradient_range"] is not None \
            or params["h"] == 0:  # the range is used only to scale a positive h
        return None
    surface = gradient_surface(pixels, smoothing=params["smoothing"])[core]
    return float(surface.min()), float(surface.max())


def _whole_gradient_range(ranges: list[tuple[float, float] | None], params: Mapping[str, Any]
                          ) -> dict[str, Any]:
    found = [r for r in ranges if r is not None]
    if not found:
        return {}
    return {"gradient_range": (min(r[0] for r in found), max(r[1] for r in found))}


@register_method("watershed", task="regions", tiling=Objects(
    shared=(FromTiles(measure=_tile_gradient_range, combine=_whole_gradient_range),)))
def watershed(
    image: np.ndarray,
    *,
    markers: np.ndarray | None = None,
    h: float = 0.1,
    gradient_range: tuple[float, float] | None = None,
    smoothing: float = 1.0,
    compactness: float = 0.0,
    min_distance: int = 5,
    mask: np.ndarray | None = None,
    channel_axis: int | None = None,
    spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """Watershed flooding of the gradient magnitude (or, for a bool mask, of its distance map).

    Grey and colour images are flooded on their Sobel gradient magnitude from markers given by the
    caller or found automatically as the gradient's h-minima. A bool foreground mask is flooded on
    the negated distance transform from its distance peaks, which splits touching objects apart;
    the background of the mask stays 0. The result is a regions result either way.

    Parameters
    ----------
    image : ndarray
        Grey, colour or bool (foreground mask) image.
    markers : ndarray or None
        A label image of seeds (0 = no seed), or (row, col) seed points as an (N, 2) array or a
        list of pairs (a list is always read as points; (z, row, col) in a volume). None finds
        markers automatically.
    h : float
        Automatic markers: minimum depth of a gradient basin, as a fraction of the gradient's range.
    gradient_range : tuple of float or None
        The (min, max) of the gradient that ``h`` is a fraction of; None takes this image's. A
        tiled job passes the whole image's, so that every tile finds the same markers.
    smoothing : float
        Gaussian sigma applied before the gradient is taken (0 for none); in a volume, in units of
        the finest voxel side.
    compactness : float
        Compact watershed: larger values give more regularly shaped regions.
    min_distance : int
        For bool masks: minimum distance in pixels between two object centres.
    mask : ndarray or None
        Bool mask of the pixels to label; others stay 0.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume; a bool
        volume's distance map is measured in these units.

    Returns
    -------
    Segmentation
        A regions result (0 outside ``mask``, and outside the foreground of a bool image).

    References
    ----------
    .. [1] L. Vincent and P. Soille, "Watersheds in digital spaces: an efficient algorithm based
       on immersion simulations", IEEE TPAMI 13(6), 583-598, 1991.
    .. [2] P. Neubert and P. Protzel, "Compact watershed and preemptive SLIC", ICPR 2014.

    Examples
    --------
    >>> import numpy as np
    >>> yy, xx = np.mgrid[:30, :60]
    >>> touching = ((yy - 15) ** 2 + (xx - 15) ** 2 < 100) | ((yy - 15) ** 2 + (xx - 40) ** 2 < 121)
    >>> len(watershed(touching))
    2
    """
    from scipy import ndimage
    from skimage import segmentation

    image, spacing = check_image_or_volume(image, channel_axis=channel_axis, spacing=spacing)
    spatial = image.shape[:2] if spacing is None else image.shape[:3]
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != spatial:
            raise ValueError(f"mask shape {mask.shape} differs from image shape {spatial}")
    check_parameter("watershed", "h", h, low=0)
    check_sigma("watershed", "smoothing", smoothing, image)
    check_parameter("watershed", "compactness", compactness, low=0)
    foreground = image.dtype == bool and image.ndim == len(spatial)
    if foreground:
        distance = ndimage.distance_transform_edt(image, sampling=spacing)
        surface = -distance
        region_mask = image if mask is None else image & mask
    else:
        surface = gradient_surface(image, smoothing=smoothing, spacing=spacing)
        region_mask = mask

    seeds = _markers(markers, surface.shape)
    if seeds is None:
        if foreground:
            from skimage.feature import peak_local_max

            peaks = peak_local_max(distance, min_distance=max(1, min_distance), labels=image,
                                   exclude_border=False)
            seeds = np.zeros(surface.shape, np.int32)
            seeds[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
            # Objects too small to hold a peak still get a marker.
            comp, n = ndimage.label(image)
            missing = np.setdiff1d(np.arange(1, n + 1), np.unique(comp[seeds > 0]))
            for k, label in enumerate(missing, start=len(peaks) + 1):
                seeds[tuple(np.argwhere(comp == label)[0])] = k
        else:
            low, high = (float(surface.min()), float(surface.max())) if gradient_range is None \
                else gradient_range
            seeds = minima_markers(surface, h * (high - low))
    labels = segmentation.watershed(surface, seeds, mask=region_mask, compactness=compactness)
    details = {"markers": int(np.unique(seeds[seeds > 0]).size)}
    return regions(labels, method="watershed", details=details, spacing=spacing)


def _sigmas(smoothing: float, spacing: tuple[float, ...] | None) -> float | tuple[float, ...]:
    """A Gaussian's sigma per axis: ``smoothing`` in units of the finest voxel side."""
    if spacing is None:
        return smoothing
    finest = min(spacing)
    return tuple(smoothing * finest / side for side in spacing)


def gradient_surface(image: np.ndarray, *, smoothing: float,
                     spacing: tuple[float, ...] | None = None) -> np.ndarray:
    """The surface :func:`watershed` floods for a grey or colour image (or, with ``spacing``, a
    volume): Sobel magnitude of the (Gaussian-smoothed) luma. Each value depends only on a small
    neighbourhood."""
    from skimage import filters

    gray = (image if spacing is not None and image.ndim == 3 else to_gray(image)).astype(np.float64)
    if smoothing > 0:
        gray = filters.gaussian(gray, sigma=_sigmas(smoothing, spacing), preserve_range=True)
    return filters.sobel(gray)


def minima_markers(surface: np.ndarray, depth: float) -> np.ndarray:
    """Markers at the surface's minima at least ``depth`` deep (all regional minima for 0)."""
    from scipy import ndimage
    from skimage import morphology

    minima = h_minima(surface, depth) if depth > 0 else morphology.local_minima(surface)
    return ndimage.label(minima)[0]


def _markers(markers: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Seeds as a label image: from a label image, a bool mask, or points ((row, col) in an image,
    (z, row, col) in a volume).

    An array shaped like the image is a label image; a list or tuple of pairs is always points, so
    points on an image that is itself (N, 2) stay unambiguous.
    """
    if markers is None:
        return None
    given_as_points = isinstance(markers, (list, tuple))
    markers = np.asarray(markers)
    if markers.shape == shape and not given_as_points:
        if not np.issubdtype(markers.dtype, np.integer) and markers.dtype != bool:
            raise TypeError(f"a marker image must hold integers, got dtype {markers.dtype}")
        if markers.dtype == bool:
            from scipy import ndimage

            return ndimage.label(markers)[0]
        return markers.astype(np.int32)
    ndim = len(shape)
    if markers.ndim == 2 and markers.shape[1] == ndim:
        points = markers.astype(np.int64)
        inside = (points >= 0).all(axis=1) & (points < np.asarray(shape)).all(axis=1)
        if not inside.all():
            raise ValueError(f"marker points outside the {'image' if ndim == 2 else 'volume'} {shape}: "
                             f"{points[~inside][:5].tolist()}")
        seeds = np.zeros(shape, np.int32)
        seeds[tuple(points.T)] = np.arange(1, len(points) + 1)
        return seeds
    raise ValueError(
        f"markers must be a label image of shape {shape} or an (N, {ndim}) array of points, "
        f"got shape {markers.shape}"
    )


def foreground_side(hist: GreyHistogram, params: Mapping[str, Any], channels: int = 1,
                    values: tuple[float, ...] | None = None) -> dict[str, Any]:
    """The threshold and the side of it that :func:`watershed_instances` takes as objects,
    from the image's grey histogram (a tiled job: the whole image's)."""
    from .threshold import otsu_rule

    threshold = params.get("threshold")
    if threshold is None:
        threshold = otsu_rule(hist, {})[0]
    side = params.get("foreground", "auto")
    if side == "auto":  # objects are the smaller side of the threshold
        side = "dark" if hist.count_above(threshold) / hist.pixels > 0.5 else "bright"
    return {"threshold": float(threshold), "foreground": side}


@register_method("watershed_instances", task="instance",
                 tiling=Objects(shared=(FromHistogram(decide=foreground_side),)))
def watershed_instances(
    image: np.ndarray,
    *,
    foreground: str = "auto",
    threshold: float | None = None,
    h: float = 1.0,
    smoothing: float = 1.0,
    min_size: int = 20,
    channel_axis: int | None = None,
    spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """Objects as instances: Otsu foreground, touching objects split by watershed on the distance map.

    The classical pipeline for nuclei and cells: threshold the luma with Otsu, fill holes in the
    foreground, then flood its negated, lightly smoothed distance transform from the h-maxima (one
    marker per object centre that stands ``h`` pixels above its surroundings), so that objects
    touching at a neck separate. Smoothing removes the plateaus of the discrete distance map, which
    otherwise split one object into several (on the first 40 DSB2018 images, F1 at IoU 0.5 rises
    from 0.50 to 0.64).

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    foreground : {"auto", "bright", "dark"}
        Which side of the threshold the objects are on. ``auto`` takes the smaller side, as
        objects usually cover less of the image than their background.
    threshold : float or None
        The grey value that splits objects from background; None takes Otsu's.
    h : float
        Marker depth in pixels: distance maxima less than ``h`` above their saddle merge.
    smoothing : float
        Gaussian sigma applied to the distance map (0 for none).
    min_size : int
        Objects with fewer pixels (voxels) are dropped.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume, whose
        distance map is measured in these units (anisotropic stacks split as their physical
        shapes do); ``h`` and ``smoothing`` are then in these units too.

    References
    ----------
    .. [1] S. Beucher and F. Meyer, "The morphological approach to segmentation: the watershed
       transformation", in Mathematical Morphology in Image Processing, 1993.

    Examples
    --------
    >>> yy, xx = np.mgrid[:30, :60]
    >>> blobs = ((yy - 15) ** 2 + (xx - 15) ** 2 < 100) | ((yy - 15) ** 2 + (xx - 33) ** 2 < 100)
    >>> len(watershed_instances(np.where(blobs, 200, 20).astype(np.uint8)))
    2
    """
    from .threshold import _binary_map

    gray = grey(image, channel_axis=channel_axis, spacing=spacing)
    if foreground not in ("auto", "bright", "dark"):
        raise ValueError(f"foreground must be 'auto', 'bright' or 'dark', got {foreground!r}")
    check_parameter("watershed_instances", "h", h, low=0)
    check_sigma("watershed_instances", "smoothing", smoothing, gray)
    if threshold is not None:
        check_parameter("watershed_instances", "threshold", threshold)
    params: dict[str, Any] = {"foreground": foreground, "threshold": threshold}
    if threshold is None or foreground == "auto":
        params = foreground_side(grey_histogram(gray), params)
    side = params["foreground"]
    bright = _binary_map(gray, [float(params["threshold"])]).astype(bool)
    labels, count = split_foreground(~bright if side == "dark" else bright, h=h, smoothing=smoothing,
                                     min_size=min_size, spacing=spacing)
    n = int(labels.max())
    return Segmentation.from_known_ids(
        labels, "instance", ids=np.arange(1, n + 1, dtype=np.int32), categories=np.zeros(n, np.int32),
        class_names=("object",),
        provenance=Provenance("watershed_instances",
                              details={"markers": int(count), "objects": n, "foreground": side,
                                       "threshold": params["threshold"]}),
        spacing=spacing,
    )


def split_foreground(mask: np.ndarray, *, h: float, smoothing: float, min_size: int,
                     spacing: tuple[float, ...] | None = None) -> tuple[np.ndarray, int]:
    """Objects of a foreground mask, as :func:`watershed_instances` makes them once it has the mask.

    Holes are filled, the smoothed distance map is flooded from its h-maxima, and objects under
    ``min_size`` pixels are dropped. Returns the labels (1..n, int32) and the number of markers.
    Every step looks only at an object's own neighbourhood, which is what lets tiled processing
    apply it to one tile at a time once the threshold is known for the whole image.
    """
    import cv2
    from scipy import ndimage
    from skimage import morphology, segmentation

    mask = fill_holes(mask)
    if spacing is None:
        distance = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        if smoothing > 0:
            distance = cv2.GaussianBlur(distance, (0, 0), smoothing)
    else:  # a volume: the exact Euclidean distance in physical units, smoothed in them
        distance = ndimage.distance_transform_edt(mask, sampling=spacing).astype(np.float32)
        if smoothing > 0:
            distance = ndimage.gaussian_filter(distance, [smoothing / side for side in spacing])
    peaks = h_maxima(distance, h) if h > 0 else morphology.local_maxima(distance)
    markers, count = ndimage.label(peaks & mask)
    labels = segmentation.watershed(-distance, markers, mask=mask)
    if min_size > 0 and labels.max() > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        labels[small[labels]] = 0
    return segmentation.relabel_sequential(labels)[0].astype(np.int32), int(count)
