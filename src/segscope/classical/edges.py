"""Edge detection and regions from edges."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..imagecheck import check_image, to_gray
from ..registry import register_method
from ..result import Segmentation
from ..tiling import Objects
from ._common import check_parameter, check_sigma, h_minima, regions

__all__ = ["EDGE_OPERATORS", "edge_regions", "edges", "learned_boundaries"]

EDGE_OPERATORS = ("sobel", "prewitt", "scharr", "roberts", "log", "canny", "learned")


def edges(
    image: np.ndarray,
    *,
    operator: str = "sobel",
    sigma: float = 1.0,
    low_threshold: float | None = None,
    high_threshold: float | None = None,
    model: str = "edges",
    channel_axis: int | None = None,
) -> np.ndarray:
    """Edge map of an image.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma, except for ``learned``).
    operator : {"sobel", "prewitt", "scharr", "roberts", "log", "canny", "learned"}
        ``sobel``, ``prewitt``, ``scharr`` and ``roberts`` give the gradient magnitude (float64);
        ``log`` the magnitude of the Laplacian of Gaussian at ``sigma``; ``canny`` a bool map of
        thin edges (Gaussian ``sigma``, hysteresis between the two thresholds, which default to
        10% and 20% of the dtype's range as in scikit-image); ``learned`` the boundary
        probability of a trained edge network (``model``), thinned to its crests.
    sigma : float
        Gaussian smoothing for ``log`` and ``canny``.
    low_threshold, high_threshold : float or None
        Canny hysteresis thresholds on the gradient magnitude.
    model : str
        ``learned``: the edge network, a zoo name (the shipped ``edges``) or a checkpoint file.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    Returns
    -------
    ndarray
        (H, W) float64 magnitude (a probability in [0, 1] for ``learned``), or bool for ``canny``.

    References
    ----------
    .. [1] J. Canny, "A computational approach to edge detection", IEEE TPAMI 8(6), 679-698, 1986.
    .. [2] D. Marr and E. Hildreth, "Theory of edge detection", Proc. R. Soc. Lond. B 207,
       187-217, 1980.
    .. [3] Y. Liu, M.-M. Cheng, X. Hu, K. Wang and X. Bai, "Richer convolutional features for edge
       detection", CVPR 2017.

    Examples
    --------
    >>> image = np.zeros((8, 8), np.uint8); image[:, 4:] = 100
    >>> bool(edges(image, operator="canny")[:, 3:5].any())
    True
    """
    from skimage import feature, filters

    if operator not in EDGE_OPERATORS:
        raise ValueError(f"operator must be one of {EDGE_OPERATORS}, got {operator!r}")
    if operator == "learned":
        return learned_boundaries(image, model=model, channel_axis=channel_axis)
    gray = to_gray(check_image(image, channel_axis=channel_axis))
    check_sigma("edges", "sigma", sigma, gray)
    if operator == "canny":
        if gray.dtype not in _CANNY_SCALE or sigma == 0:
            # Signed or exotic integers, or no smoothing (where exact ties decide the
            # suppression): scikit-image's own.
            return np.asarray(feature.canny(gray, sigma=sigma, low_threshold=low_threshold,
                                            high_threshold=high_threshold))
        return _canny(gray, sigma, low_threshold, high_threshold)
    data = gray.astype(np.float64)
    if operator == "log":
        from scipy import ndimage

        return np.abs(ndimage.gaussian_laplace(data, sigma=sigma))
    return np.asarray(getattr(filters, operator)(data))


def learned_boundaries(
    image: np.ndarray, *, model: str = "edges", thin: bool = True, channel_axis: int | None = None
) -> np.ndarray:
    """The boundary probability of ``image`` by a trained edge network, in [0, 1].

    ``model`` is a zoo name (the shipped ``edges``) or an edge network's checkpoint file; with
    ``thin`` each edge is suppressed to its crest (:func:`segscope.edgemaps.thin_boundaries`).
    Needs segscope[deep] (torch).
    """
    return np.asarray(edge_network(model).boundaries(image, thin=thin, channel_axis=channel_axis))


def edge_network(model: str) -> Any:
    """The predictor of an edge network (``boundaries``, ``hierarchy``, ``default_level``): a zoo
    name or a checkpoint file, kept open between calls."""
    from ..resolve import ModelFile, model_path

    predictor = ModelFile(model_path(model), label=model).predictor()
    if not hasattr(predictor, "boundaries"):
        raise ValueError(f"{model}: a {predictor.task} model, not an edge network (train one with "
                         "--model rcf, or use the zoo's 'edges')")
    return predictor


# Canny's units: the image as scikit-image's ``img_as_float`` sees it (integers over the dtype's
# maximum), smoothed in float32 where that holds every value exactly, else in float64.
_CANNY_SCALE: dict[np.dtype, tuple[float, type]] = {
    np.dtype(np.uint8): (255.0, np.float32),
    np.dtype(np.uint16): (65535.0, np.float32),
    np.dtype(np.float32): (1.0, np.float32),
    np.dtype(np.float64): (1.0, np.float64),
}


def _canny(gray: np.ndarray, sigma: float, low: float | None, high: float | None) -> np.ndarray:
    """scikit-image's Canny (Gaussian with its bleed-over correction at the borders, Sobel,
    bilinear non-maximum suppression, 8-connected hysteresis) as fused compiled passes."""
    import cv2

    from ._pixel_kernels import hysteresis, sobel_magnitude, suppress_non_maxima

    if not sigma >= 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    dtype_max, float_type = _CANNY_SCALE[gray.dtype]
    low = 0.1 if low is None else low / dtype_max
    high = 0.2 if high is None else high / dtype_max
    if high < low:
        raise ValueError(f"low_threshold ({low * dtype_max}) must not exceed high_threshold "
                         f"({high * dtype_max})")
    depth = cv2.CV_32F if float_type is np.float32 else cv2.CV_64F
    reach = int(4.0 * sigma + 0.5)  # scipy's gaussian_filter truncates at 4 sigma
    kernel = cv2.getGaussianKernel(2 * reach + 1, sigma, cv2.CV_64F) if reach else np.ones((1, 1))
    smoothed = cv2.sepFilter2D(np.ascontiguousarray(gray), depth, (kernel / dtype_max).astype(float_type),
                               kernel.astype(float_type), borderType=cv2.BORDER_CONSTANT)
    if reach:
        # Beyond the image is zero; within ``reach`` of a border the result is divided by the
        # kernel's mass inside the image (1 elsewhere), as scikit-image does.
        def mass(n: int) -> np.ndarray:
            ones = np.ones((n, 1), np.float64)
            return cv2.filter2D(ones, cv2.CV_64F, kernel, borderType=cv2.BORDER_CONSTANT)[:, 0]

        height, width = gray.shape
        rows, cols = mass(height), mass(width)
        eps = np.finfo(float_type).eps
        edge_rows = np.unique(np.r_[0:min(reach, height), max(height - reach, 0):height])
        edge_cols = np.unique(np.r_[0:min(reach, width), max(width - reach, 0):width])
        inner_rows = np.setdiff1d(np.arange(height), edge_rows)
        smoothed[edge_rows] /= (np.outer(rows[edge_rows], cols) + eps).astype(float_type)
        smoothed[np.ix_(inner_rows, edge_cols)] /= (
            np.outer(rows[inner_rows], cols[edge_cols]) + eps).astype(float_type)
    magnitude = sobel_magnitude(smoothed)
    # scikit-image passes the low threshold as a C float, and 0 as 1e-14 (so flat areas stay out).
    low = float(np.float32(low)) if low else 1e-14
    return np.asarray(hysteresis(suppress_non_maxima(smoothed, magnitude, low, float(high))))


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
    if operator not in EDGE_OPERATORS:
        raise ValueError(f"operator must be one of {EDGE_OPERATORS}, got {operator!r}")
    check_sigma("edge_regions", "sigma", sigma, np.asarray(image))
    check_parameter("edge_regions", "h", h, low=0)
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
    elif operator == "learned":
        magnitude = learned_boundaries(image, thin=False, channel_axis=channel_axis)
    else:
        from skimage import filters

        # The gradient of the image smoothed at sigma (canny's own smoothing, with sobel's kernel).
        gray = to_gray(check_image(image, channel_axis=channel_axis)).astype(np.float64)
        if sigma > 0:
            gray = filters.gaussian(gray, sigma=sigma, preserve_range=True)
        magnitude = getattr(filters, "sobel" if operator == "canny" else operator)(gray)
    span = float(magnitude.max() - magnitude.min())
    seeds = h_minima(magnitude, h * span) if span > 0 and h > 0 else \
        morphology.local_minima(magnitude)
    markers, count = ndimage.label(seeds)
    labels = segmentation.watershed(magnitude, markers)
    return regions(labels, method="edge_regions", details={"regions": int(count)})
