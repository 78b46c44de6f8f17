"""Thresholding: a fixed value, thresholds chosen from the histogram, and local (adaptive) ones.

Every method returns a semantic result (classes "background" and "foreground", or k classes for
``multi_otsu``) and records the threshold(s) it chose in ``provenance.details``. Colour input is
converted to luma (ITU-R BT.601, in the input's dtype: :func:`segscope.imagecheck.to_gray`).
Integer images use one histogram bin per value, as scikit-image does; float images use ``nbins``
equal bins between their minimum and maximum.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from ..imagecheck import check_image, to_gray
from ..registry import register_method
from ..result import Segmentation
from ._common import semantic_from_classes

__all__ = [
    "adaptive_gaussian",
    "adaptive_mean",
    "isodata",
    "li",
    "mean",
    "minimum",
    "multi_otsu",
    "niblack",
    "otsu",
    "sauvola",
    "threshold",
    "triangle",
    "yen",
]


def _gray(image: np.ndarray, channel_axis: int | None) -> np.ndarray:
    return to_gray(check_image(image, channel_axis=channel_axis))


def _binary(gray: np.ndarray, value: float, method: str) -> Segmentation:
    above: np.ndarray
    if gray.dtype == np.uint8:
        # OpenCV compares 8-bit pixels with floor(value): the same test as gray > value.
        above = cv2.threshold(gray, value, 1, cv2.THRESH_BINARY)[1]
    else:
        above = gray > value
    return semantic_from_classes(above, num_classes=2, method=method, details={"threshold": float(value)})


def _extremes(gray: np.ndarray) -> tuple[float, float]:
    if gray.dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        low, high, _, _ = cv2.minMaxLoc(gray)  # one SIMD pass instead of two reductions
        return float(low), float(high)
    return float(gray.min()), float(gray.max())


Chosen = float | tuple[float, np.ndarray]


def _global(gray: np.ndarray, method: str, chooser: Callable[[np.ndarray], Chosen]) -> Segmentation:
    """Threshold at the value ``chooser`` picks; it may also return the thresholded map it made."""
    low, high = _extremes(gray)
    if low == high:
        return _binary(gray, low, method)  # a flat image is all background
    try:
        chosen = chooser(gray)
    except RuntimeError as exc:  # e.g. "minimum" finds no two-peaked histogram
        raise ValueError(f"{method}: no threshold found for this image ({exc})") from None
    if isinstance(chosen, tuple):
        value, above = chosen
        return semantic_from_classes(above, num_classes=2, method=method,
                                     details={"threshold": float(value)})
    return _binary(gray, float(chosen), method)


def _check_nbins(nbins: int) -> None:
    if nbins < 2:
        raise ValueError(f"nbins must be at least 2, got {nbins}")


@register_method("threshold", task="semantic")
def threshold(image: np.ndarray, *, value: float | None = None,
              channel_axis: int | None = None) -> Segmentation:
    """Two classes split at a fixed value: pixels above ``value`` are foreground.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    value : float or None
        The threshold, in the image's own units (no rescaling). None takes the middle of the
        dtype's range for integer images (127.5 for uint8) and of the values for float images.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    Examples
    --------
    >>> threshold(np.array([[1, 5, 9]], np.uint8), value=4).class_map().tolist()
    [[0, 1, 1]]
    """
    gray = _gray(image, channel_axis)
    if value is None:
        if gray.dtype.kind in "iu":
            info = np.iinfo(gray.dtype)
            value = (float(info.min) + float(info.max)) / 2
        else:
            value = (float(gray.min()) + float(gray.max())) / 2
    return _binary(gray, value, "threshold")


@register_method("otsu", task="semantic")
def otsu(image: np.ndarray, *, nbins: int = 256, channel_axis: int | None = None) -> Segmentation:
    """Two classes split at Otsu's threshold, which maximises the between-class variance.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    nbins : int
        Histogram bins for float images; integer images use one bin per value.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. SMC
       9(1), 62-66, 1979.

    Examples
    --------
    >>> image = np.array([[10, 10, 200], [10, 200, 200]], np.uint8)
    >>> otsu(image).class_map().tolist()
    [[0, 0, 1], [0, 1, 1]]
    """
    _check_nbins(nbins)
    gray = _gray(image, channel_axis)
    if gray.dtype == np.uint8:
        # OpenCV's Otsu is the same criterion on the same 256-bin histogram, 10x faster, and it
        # thresholds in the same pass.
        return _global(gray, "otsu", lambda g: cv2.threshold(g, 0, 1, cv2.THRESH_BINARY | cv2.THRESH_OTSU))
    from skimage.filters import threshold_otsu

    return _global(gray, "otsu", lambda g: threshold_otsu(g, nbins=nbins))


@register_method("multi_otsu", task="semantic")
def multi_otsu(image: np.ndarray, *, classes: int = 3, nbins: int = 256,
               channel_axis: int | None = None) -> Segmentation:
    """``classes`` classes split at the multi-level Otsu thresholds.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    classes : int
        Number of classes (2 to 5; the search grows as nbins ** (classes - 1)).
    nbins : int
        Histogram bins (all dtypes here, as scikit-image's ``threshold_multiotsu``).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] P.-S. Liao, T.-S. Chen and P.-C. Chung, "A fast algorithm for multilevel thresholding",
       J. Inf. Sci. Eng. 17(5), 713-727, 2001.

    Examples
    --------
    >>> image = np.array([[10, 12, 100, 104, 200, 210]], np.uint8)
    >>> multi_otsu(image, classes=3).class_map().tolist()
    [[0, 0, 1, 1, 2, 2]]
    """
    from skimage.filters import threshold_multiotsu

    if not 2 <= classes <= 5:
        raise ValueError(f"classes must be between 2 and 5, got {classes}")
    _check_nbins(nbins)
    gray = _gray(image, channel_axis)
    if gray.dtype == np.uint8:
        # One histogram serves the check and the thresholds; a lookup table assigns the classes.
        counts = cv2.calcHist([np.ascontiguousarray(gray)], [0], None, [256], [0, 256]).ravel()
        distinct = int(np.count_nonzero(counts))
    else:
        distinct = np.unique(gray).size
    if distinct < classes:
        raise ValueError(f"the image has fewer than {classes} distinct values; cannot make "
                         f"{classes} classes")
    if gray.dtype == np.uint8:
        thresholds = threshold_multiotsu(hist=(counts.astype(np.int64), np.arange(256)), classes=classes)
    else:
        thresholds = threshold_multiotsu(gray, classes=classes, nbins=nbins)
    # right=True: a pixel joins class k+1 only when it is *above* threshold k, as in otsu; with
    # classes=2 this equals otsu's split (scikit-image's docs digitize the other way round).
    if gray.dtype == np.uint8:
        lut = np.digitize(np.arange(256), bins=thresholds, right=True).astype(np.uint8)
        class_map = cv2.LUT(np.ascontiguousarray(gray), lut)
    else:
        class_map = np.digitize(gray, bins=thresholds, right=True)
    return semantic_from_classes(class_map, num_classes=classes, method="multi_otsu",
                                 details={"thresholds": [float(t) for t in thresholds]})


def _skimage_global(name: str, summary: str, reference: str, example: str) -> None:
    """Register a scikit-image histogram threshold under ``name``, documented here."""
    import skimage.filters as skf

    chooser = getattr(skf, f"threshold_{name}")

    def method(image: np.ndarray, *, channel_axis: int | None = None) -> Segmentation:
        gray = _gray(image, channel_axis)
        if name == "triangle" and gray.dtype == np.uint8:
            flags = cv2.THRESH_BINARY | cv2.THRESH_TRIANGLE
            return _global(gray, name, lambda g: cv2.threshold(g, 0, 1, flags))
        return _global(gray, name, chooser)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"""{summary}

    Pixels above the threshold are foreground; the threshold is in ``provenance.details``.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] {reference}

    Examples
    --------
    >>> image = np.array([[10, 12, 200], [11, 190, 210]], np.uint8)
    >>> {name}(image).class_map().tolist()
    {example}
    """
    method.__module__ = __name__
    globals()[name] = register_method(name, task="semantic")(method)


_skimage_global("li", "Two classes split at Li's minimum cross-entropy threshold.",
                "C. H. Li and P. K. S. Tam, \"An iterative algorithm for minimum cross entropy "
                "thresholding\", Pattern Recognition Letters 19(8), 771-776, 1998.",
                "[[0, 0, 1], [0, 1, 1]]")
_skimage_global("yen", "Two classes split at Yen's maximum-correlation threshold.",
                "J.-C. Yen, F.-J. Chang and S. Chang, \"A new criterion for automatic multilevel "
                "thresholding\", IEEE Trans. Image Processing 4(3), 370-378, 1995.",
                "[[0, 0, 1], [0, 1, 1]]")
_skimage_global("triangle", "Two classes split by the triangle method on the histogram.",
                "G. W. Zack, W. E. Rogers and S. A. Latt, \"Automatic measurement of sister "
                "chromatid exchange frequency\", J. Histochem. Cytochem. 25(7), 741-753, 1977.",
                "[[0, 0, 1], [0, 1, 1]]")
_skimage_global("isodata", "Two classes split at the ISODATA (Ridler-Calvard) threshold.",
                "T. W. Ridler and S. Calvard, \"Picture thresholding using an iterative selection "
                "method\", IEEE Trans. SMC 8(8), 630-632, 1978.",
                "[[0, 0, 1], [0, 1, 1]]")
_skimage_global("mean", "Two classes split at the mean intensity.",
                "C. A. Glasbey, \"An analysis of histogram-based thresholding algorithms\", "
                "CVGIP: Graphical Models and Image Processing 55, 532-537, 1993.",
                "[[0, 0, 1], [0, 1, 1]]")
_skimage_global("minimum", "Two classes split at the valley between the histogram's two peaks "
                "(the histogram is smoothed until it has exactly two).",
                "C. A. Glasbey, \"An analysis of histogram-based thresholding algorithms\", "
                "CVGIP: Graphical Models and Image Processing 55, 532-537, 1993.",
                "[[0, 0, 1], [0, 1, 1]]")


def _check_block(block_size: int) -> None:
    if block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd integer >= 3, got {block_size}")


def _adaptive(image: np.ndarray, block_size: int, offset: float, channel_axis: int | None,
              method: str) -> Segmentation:
    from skimage.filters import threshold_local

    _check_block(block_size)
    gray = _gray(image, channel_axis)
    local = threshold_local(gray.astype(np.float64), block_size, method=method, offset=offset,
                            mode="reflect")
    return semantic_from_classes(gray > local, num_classes=2, method=f"adaptive_{method}",
                                 details={"block_size": block_size, "offset": offset})


@register_method("adaptive_mean", task="semantic")
def adaptive_mean(image: np.ndarray, *, block_size: int = 35, offset: float = 0.0,
                  channel_axis: int | None = None) -> Segmentation:
    """Foreground where a pixel exceeds the mean of its ``block_size`` neighbourhood minus ``offset``.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    block_size : int
        Odd side of the square neighbourhood.
    offset : float
        Subtracted from the local mean (in the image's units).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] R. C. Gonzalez and R. E. Woods, "Digital Image Processing", 4th ed., section 10.3.

    Examples
    --------
    >>> image = np.tile(np.array([[10, 200]], np.uint8), (5, 5))
    >>> adaptive_mean(image, block_size=3).class_map()[2, :4].tolist()
    [0, 1, 0, 1]
    """
    return _adaptive(image, block_size, offset, channel_axis, "mean")


@register_method("adaptive_gaussian", task="semantic")
def adaptive_gaussian(image: np.ndarray, *, block_size: int = 35, offset: float = 0.0,
                      channel_axis: int | None = None) -> Segmentation:
    """Foreground where a pixel exceeds the Gaussian-weighted local mean minus ``offset``.

    The Gaussian's sigma is ``(block_size - 1) / 6``, as in scikit-image's ``threshold_local``.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    block_size : int
        Odd side of the neighbourhood.
    offset : float
        Subtracted from the local mean (in the image's units).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] R. C. Gonzalez and R. E. Woods, "Digital Image Processing", 4th ed., section 10.3.

    Examples
    --------
    >>> image = np.tile(np.array([[10, 200]], np.uint8), (5, 5))
    >>> adaptive_gaussian(image, block_size=3).class_map()[2, :4].tolist()
    [0, 1, 0, 1]
    """
    return _adaptive(image, block_size, offset, channel_axis, "gaussian")


@register_method("niblack", task="semantic")
def niblack(image: np.ndarray, *, window_size: int = 25, k: float = 0.2,
            channel_axis: int | None = None) -> Segmentation:
    """Niblack's local threshold ``T = m - k * s`` from the local mean m and deviation s.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    window_size : int
        Odd side of the local window.
    k : float
        Weight of the local standard deviation.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] W. Niblack, "An Introduction to Digital Image Processing", Prentice-Hall, 1986.

    Examples
    --------
    >>> image = np.zeros((9, 9), np.uint8); image[3:6, 3:6] = 200
    >>> int(niblack(image, window_size=5).class_map()[4, 4])
    1
    """
    from skimage.filters import threshold_niblack

    _check_block(window_size)
    gray = _gray(image, channel_axis)
    local = threshold_niblack(gray, window_size=window_size, k=k)
    return semantic_from_classes(gray > local, num_classes=2, method="niblack",
                                 details={"window_size": window_size, "k": k})


@register_method("sauvola", task="semantic")
def sauvola(image: np.ndarray, *, window_size: int = 25, k: float = 0.2, r: float | None = None,
            channel_axis: int | None = None) -> Segmentation:
    """Sauvola's local threshold ``T = m * (1 + k * (s / r - 1))``, made for documents.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    window_size : int
        Odd side of the local window.
    k : float
        Weight of the normalised deviation.
    r : float or None
        Dynamic range of the deviation; None uses half the image's value range.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] J. Sauvola and M. Pietikainen, "Adaptive document image binarization", Pattern
       Recognition 33(2), 225-236, 2000.

    Examples
    --------
    >>> image = np.zeros((9, 9), np.uint8); image[3:6, 3:6] = 200
    >>> int(sauvola(image, window_size=5).class_map()[4, 4])
    1
    """
    from skimage.filters import threshold_sauvola

    _check_block(window_size)
    gray = _gray(image, channel_axis)
    local = threshold_sauvola(gray, window_size=window_size, k=k, r=r)
    return semantic_from_classes(gray > local, num_classes=2, method="sauvola",
                                 details={"window_size": window_size, "k": k})


# The factory above defines these at import time; named here for linters and readers.
li: Callable[..., Segmentation]
yen: Callable[..., Segmentation]
triangle: Callable[..., Segmentation]
isodata: Callable[..., Segmentation]
mean: Callable[..., Segmentation]
minimum: Callable[..., Segmentation]


# ------------------------------------------------------------------ thresholds from a histogram
# Tiled processing of an image too large for memory computes a global threshold from the
# histogram summed over tiles. Every method below depends on the image only through that
# histogram, and these functions reproduce, bin for bin, what the method does on the whole image:
# OpenCV's Otsu and triangle for 8-bit images, scikit-image's choosers otherwise.

#: Methods whose threshold is a function of the image's histogram (and so can be tiled exactly).
HISTOGRAM_METHODS = ("threshold", "otsu", "multi_otsu", "li", "yen", "triangle", "isodata", "mean",
                     "minimum")

#: Integer images wider than this range are refused: their histogram would not fit in memory.
MAX_INTEGER_RANGE = 1 << 24


def gray_for_threshold(image: np.ndarray, *, channel_axis: int | None = None) -> np.ndarray:
    """The grey image every threshold method works on (luma of colour, dtype kept)."""
    return _gray(image, channel_axis)


def value_range(gray: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum of a grey image, as the methods compute them."""
    return _extremes(gray)


def value_histogram(gray: np.ndarray, low: float, high: float, *, nbins: int = 256) -> np.ndarray:
    """Counts of ``gray`` in the bins a method uses for an image whose range is ``[low, high]``.

    Integer images get one bin per value from ``low`` to ``high`` (scikit-image ignores ``nbins``
    for them); float images get ``nbins`` equal bins, with the edges ``np.histogram`` would draw
    for the whole image. Summing the counts of the tiles gives the whole image's histogram.
    """
    if gray.dtype.kind in "iub":
        if high - low > MAX_INTEGER_RANGE:
            raise ValueError(f"integer values span {low:g} to {high:g}: too wide a range for a "
                             f"histogram (at most {MAX_INTEGER_RANGE}); convert the image to float")
        shifted = gray.astype(np.int64, copy=False).ravel() - int(low)
        return np.bincount(shifted, minlength=int(high - low) + 1).astype(np.int64)
    kind = gray.dtype.type
    counts, _ = np.histogram(gray, bins=nbins, range=(kind(low), kind(high)))
    return counts.astype(np.int64)


def histogram_centers(dtype: np.dtype, low: float, high: float, *, nbins: int = 256) -> np.ndarray:
    """The value at the centre of each bin of :func:`value_histogram`."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iub":
        return np.arange(int(low), int(high) + 1)
    kind = dtype.type
    edges = np.histogram_bin_edges(np.empty(0, dtype), bins=nbins, range=(kind(low), kind(high)))
    return (edges[:-1] + edges[1:]) / 2.0


def _bins_from_zero(counts: np.ndarray, low: float, high: float) -> np.ndarray:
    """An 8-bit histogram over [low, high] as the 256 bins from 0 that OpenCV's rules use."""
    full = np.zeros(256, np.int64)
    full[int(low):int(high) + 1] = counts
    return full


def _otsu_8bit(counts: np.ndarray) -> float:
    """OpenCV's Otsu threshold for 8-bit images, from the 256-bin histogram, in its own order."""
    scale = 1.0 / float(counts.sum())
    mu = 0.0
    for i in range(256):
        mu += i * float(counts[i])
    mu *= scale
    mu1 = q1 = 0.0
    best_sigma = best = 0.0
    epsilon = float(np.finfo(np.float32).eps)
    for i in range(256):
        p_i = float(counts[i]) * scale
        mu1 *= q1
        q1 += p_i
        q2 = 1.0 - q1
        if min(q1, q2) < epsilon or max(q1, q2) > 1.0 - epsilon:
            continue
        mu1 = (mu1 + i * p_i) / q1
        mu2 = (mu - q1 * mu1) / q2
        sigma = q1 * q2 * (mu2 - mu1) * (mu2 - mu1)
        if sigma > best_sigma:
            best_sigma, best = sigma, float(i)
    return best


def _triangle_8bit(counts: np.ndarray) -> float:
    """OpenCV's triangle threshold for 8-bit images, from the 256-bin histogram."""
    h = [int(c) for c in counts]
    n = 256
    nonzero = [i for i in range(n) if h[i] > 0]
    left, right = nonzero[0], nonzero[-1]
    left = left - 1 if left > 0 else left
    right = right + 1 if right < n - 1 else right
    peak = max(range(n), key=lambda i: (h[i], -i))  # first index of the maximum
    flipped = peak - left < right - peak
    if flipped:
        h.reverse()
        left, peak = n - 1 - right, n - 1 - peak
    a, b = float(h[peak]), float(left - peak)
    thresh, dist = float(left), 0.0
    for i in range(left + 1, peak + 1):
        candidate = a * i + b * h[i]
        if candidate > dist:
            dist, thresh = candidate, float(i)
    thresh -= 1
    return n - 1 - thresh if flipped else thresh


def _triangle(counts: np.ndarray, centers: np.ndarray) -> float:
    """scikit-image's triangle threshold, from the histogram."""
    nbins = len(counts)
    hist = counts.astype(np.float64)
    peak = int(np.argmax(hist))
    height = hist[peak]
    low, high = np.flatnonzero(hist)[[0, -1]]
    flip = peak - low < high - peak
    if flip:
        hist = hist[::-1]
        low, peak = nbins - high - 1, nbins - peak - 1
    width = float(peak - low)
    x = np.arange(peak - low)
    norm = np.sqrt(height ** 2 + width ** 2)
    level = int(np.argmax(height / norm * x - width / norm * hist[x + low])) + low
    return float(centers[nbins - level - 1 if flip else level])


def _li_integer(counts: np.ndarray, centers: np.ndarray) -> float:
    """scikit-image's Li threshold for integer images, from the histogram."""
    low = centers[0]
    values = (centers - low).astype(np.float64)
    weights = counts.astype(np.float32)
    t_next = float((counts * (centers - low)).sum()) / float(counts.sum())
    tolerance = 0.5
    t_curr = -2 * tolerance
    keep = counts > 0
    values, weights = values[keep], weights[keep]
    while abs(t_next - t_curr) > tolerance:
        t_curr = t_next
        fore = values > t_curr
        mean_fore = np.average(values[fore], weights=weights[fore])
        mean_back = np.average(values[~fore], weights=weights[~fore])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return float(t_next + low)


def threshold_from_histogram(method: str, counts: np.ndarray, *, dtype: np.dtype, low: float, high: float,
                             total: float, params: dict | None = None) -> list[float]:
    """The threshold(s) ``method`` picks for an image with this histogram, range and pixel sum.

    ``counts`` comes from :func:`value_histogram` (summed over tiles), ``total`` is the sum of the
    grey values (for ``mean``). Returns one threshold, or ``classes - 1`` for ``multi_otsu``.
    A flat image (``low == high``) gives ``[low]``: everything background, as the methods do.
    """
    import skimage.filters as skf

    params = dict(params or {})
    dtype = np.dtype(dtype)
    nbins = int(params.get("nbins", 256))
    if method not in HISTOGRAM_METHODS:
        raise ValueError(f"{method!r} is not a histogram threshold; those are {list(HISTOGRAM_METHODS)}")
    if method == "threshold":
        value = params.get("value")
        if value is None:
            if dtype.kind in "iu":
                info = np.iinfo(dtype)
                value = (float(info.min) + float(info.max)) / 2
            else:
                value = (float(low) + float(high)) / 2
        return [float(value)]
    if method == "multi_otsu":
        classes = int(params.get("classes", 3))
        if int(np.count_nonzero(counts)) < classes:
            raise ValueError(f"the image has fewer than {classes} distinct values; cannot make "
                             f"{classes} classes")
        if dtype == np.uint8:  # the method's own 8-bit path: 256 bins from zero
            full = _bins_from_zero(counts, low, high)
            return [float(t) for t in skf.threshold_multiotsu(hist=(full, np.arange(256)), classes=classes)]
        # Given an image, scikit-image normalises the histogram before its float32 cast; so do we.
        centers = histogram_centers(dtype, low, high, nbins=nbins)
        probability = counts / counts.sum()
        return [float(t) for t in skf.threshold_multiotsu(hist=(probability, centers), classes=classes)]
    if low == high:
        return [float(low)]
    centers = histogram_centers(dtype, low, high, nbins=nbins)
    if dtype == np.uint8 and method in ("otsu", "triangle"):
        full = _bins_from_zero(counts, low, high)
        return [_otsu_8bit(full) if method == "otsu" else _triangle_8bit(full)]
    if method == "mean":
        return [float(total) / float(counts.sum())]
    if method == "li":
        if dtype.kind not in "iu":
            raise ValueError("li iterates over every pixel of a float image; tiled li takes integer "
                             "images (or use otsu, which needs only the histogram)")
        return [_li_integer(counts, centers)]
    if method == "triangle":
        return [_triangle(counts, centers)]
    chooser = {"otsu": skf.threshold_otsu, "yen": skf.threshold_yen, "isodata": skf.threshold_isodata,
               "minimum": skf.threshold_minimum}[method]
    try:
        return [float(chooser(hist=(counts, centers)))]
    except RuntimeError as exc:
        raise ValueError(f"{method}: no threshold found for this image ({exc})") from None


def apply_thresholds(method: str, gray: np.ndarray, thresholds: list[float]) -> Segmentation:
    """Classify ``gray`` with thresholds chosen elsewhere, as ``method`` would with its own."""
    if method == "multi_otsu":
        class_map = np.digitize(gray, bins=np.asarray(thresholds), right=True).astype(np.uint8)
        return semantic_from_classes(class_map, num_classes=len(thresholds) + 1, method=method,
                                     details={"thresholds": [float(t) for t in thresholds]})
    return _binary(gray, thresholds[0], method)
