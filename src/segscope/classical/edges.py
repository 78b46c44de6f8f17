"""Edge detection and regions from edges."""

from __future__ import annotations

import numpy as np

from ..imagecheck import check_image, to_gray
from ..registry import register_method
from ..result import Segmentation
from ..tiling import Objects
from ._common import regions

__all__ = ["EDGE_OPERATORS", "edge_regions", "edges"]

EDGE_OPERATORS = ("sobel", "prewitt", "scharr", "roberts", "log", "canny")


def edges(
    image: np.ndarray,
    *,
    operator: str = "sobel",
    sigma: float = 1.0,
    low_threshold: float | None = None,
    high_threshold: float | None = None,
    channel_axis: int | None = None,
) -> np.ndarray:
    """Edge map of an image.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    operator : {"sobel", "prewitt", "scharr", "roberts", "log", "canny"}
        ``sobel``, ``prewitt``, ``scharr`` and ``roberts`` give the gradient magnitude (float64);
        ``log`` the magnitude of the Laplacian of Gaussian at ``sigma``; ``canny`` a bool map of
        thin edges (Gaussian ``sigma``, hysteresis between the two thresholds, which default to
        10% and 20% of the dtype's range as in scikit-image).
    sigma : float
        Gaussian smoothing for ``log`` and ``canny``.
    low_threshold, high_threshold : float or None
        Canny hysteresis thresholds on the gradient magnitude.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    Returns
    -------
    ndarray
        (H, W) float64 magnitude, or bool for ``canny``.

    References
    ----------
    .. [1] J. Canny, "A computational approach to edge detection", IEEE TPAMI 8(6), 679-698, 1986.
    .. [2] D. Marr and E. Hildreth, "Theory of edge detection", Proc. R. Soc. Lond. B 207,
       187-217, 1980.

    Examples
    --------
    >>> image = np.zeros((8, 8), np.uint8); image[:, 4:] = 100
    >>> bool(edges(image, operator="canny")[:, 3:5].any())
    True
    """
    from skimage import feature, filters

    if operator not in EDGE_OPERATORS:
        raise ValueError(f"operator must be one of {EDGE_OPERATORS}, got {operator!r}")
    gray = to_gray(check_image(image, channel_axis=channel_axis))
    if operator == "canny":
        return np.asarray(feature.canny(gray, sigma=sigma, low_threshold=low_threshold,
                                        high_threshold=high_threshold))
    data = gray.astype(np.float64)
    if operator == "log":
        from scipy import ndimage

        return np.abs(ndimage.gaussian_laplace(data, sigma=sigma))
    return np.asarray(getattr(filters, operator)(data))


@register_method("edge_regions", task="regions", tiling=Objects())
def edge_regions(
    image: np.ndarray,
    *,
    operator: str = "sobel",
    mode: str = "watershed",
    sigma: float = 1.0,
    h: float = 0.08,
    channel_axis: int | None = None,
) -> Segmentation:
    """Regions from an edge map: watershed of the edge magnitude, or areas enclosed by edges.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    operator : str
        Edge operator (see :func:`edges`); ``enclosed`` mode uses Canny whatever is given.
    mode : {"watershed", "enclosed"}
        ``watershed`` floods the edge magnitude from its h-minima; ``enclosed`` labels the
        connected areas (4-connectivity) that Canny edges enclose, then gives edge pixels to the
        nearest region.
    sigma : float
        Gaussian smoothing before the edges are taken.
    h : float
        ``watershed`` mode: minimum basin depth, as a fraction of the magnitude's range.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    Examples
    --------
    >>> image = np.zeros((20, 20), np.uint8); image[5:15, 5:15] = 200
    >>> len(edge_regions(image, mode="enclosed"))
    2
    """
    from scipy import ndimage
    from skimage import morphology, segmentation

    if mode not in ("watershed", "enclosed"):
        raise ValueError(f"mode must be 'watershed' or 'enclosed', got {mode!r}")
    if mode == "enclosed":
        edge_map = edges(image, operator="canny", sigma=sigma, channel_axis=channel_axis)
        labels, count = ndimage.label(~edge_map)
        # Edge pixels join the nearest labelled region, so the result partitions the image.
        index = ndimage.distance_transform_edt(labels == 0, return_distances=False,
                                               return_indices=True)
        labels = labels[tuple(index)]
        return regions(labels, method="edge_regions", details={"regions": int(count)})
    if operator == "log":
        magnitude = edges(image, operator="log", sigma=sigma, channel_axis=channel_axis)
    else:
        from skimage import filters

        # The gradient of the image smoothed at sigma (canny's own smoothing, with sobel's kernel).
        gray = to_gray(check_image(image, channel_axis=channel_axis)).astype(np.float64)
        if sigma > 0:
            gray = filters.gaussian(gray, sigma=sigma, preserve_range=True)
        magnitude = getattr(filters, "sobel" if operator == "canny" else operator)(gray)
    span = float(magnitude.max() - magnitude.min())
    seeds = morphology.h_minima(magnitude, h * span) if span > 0 and h > 0 else \
        morphology.local_minima(magnitude)
    markers, count = ndimage.label(seeds)
    labels = segmentation.watershed(magnitude, markers)
    return regions(labels, method="edge_regions", details={"regions": int(count)})
