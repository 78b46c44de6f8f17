"""Thresholding: a fixed value, thresholds chosen from the histogram, and local (adaptive) ones.

Every method returns a semantic result (classes "background" and "foreground", or k classes for
``multi_otsu``) and records the threshold(s) it chose in ``provenance.details``. Colour input is
converted to luma (ITU-R BT.601, in the input's dtype: :func:`segscope.imagecheck.to_gray`).
Integer images use one histogram bin per value, as scikit-image does; float images use ``nbins``
equal bins between their minimum and maximum.

Every global threshold is a *rule*: a function from the image's grey histogram
(:class:`segscope.tiling.GreyHistogram`) to its thresholds. The method calls it on its image's
histogram, and declares it as its tiling, so that a tiled job calls the same function on the
histogram summed over the tiles: one implementation, exact in both.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from ..imagecheck import as_plane
from ..registry import register_method
from ..result import Segmentation
from ..tiling import GreyHistogram, HistogramThreshold, LocalWindow, grey, grey_histogram, value_range
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


Rule = Callable[[GreyHistogram, Mapping[str, Any]], list[float]]


def _binary_map(gray: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Foreground (1) where the grey value is above the threshold (images and volumes)."""
    if gray.dtype == np.uint8:
        # OpenCV compares 8-bit pixels with floor(value): the same test as gray > value.
        above = cv2.threshold(as_plane(gray), float(thresholds[0]), 1, cv2.THRESH_BINARY)[1]
        return above.reshape(gray.shape)
    return gray > thresholds[0]


def _classes_map(gray: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Class k+1 where the grey value is above threshold k (``right=True``, as :func:`otsu`)."""
    bins = np.asarray(thresholds, np.float64)
    if gray.dtype == np.uint8:
        lut = np.digitize(np.arange(256), bins=bins, right=True).astype(np.uint8)
        return cv2.LUT(as_plane(gray), lut).reshape(gray.shape)
    return np.digitize(gray, bins=bins, right=True).astype(np.uint8)


def _check_nbins(nbins: int) -> None:
    if nbins < 2:
        raise ValueError(f"nbins must be at least 2, got {nbins}")


def _nbins(params: Mapping[str, Any]) -> int:
    return int(params.get("nbins", 256))


def _histogram_method(image: np.ndarray, name: str, tiling: HistogramThreshold, params: Mapping[str, Any],
                      channel_axis: int | None, spacing: Sequence[float] | None) -> Segmentation:
    """A global threshold method: its rule on the image's (or volume's) histogram, applied to every
    pixel."""
    gray = grey(image, channel_axis=channel_axis, spacing=spacing)
    thresholds = tiling.choose(grey_histogram(gray, nbins=tiling.nbins(params)), params)
    names = tiling.class_names(params)
    many = tiling.apply is _classes_map  # multi-level methods report every threshold
    details: dict[str, Any] = ({"thresholds": [float(t) for t in thresholds]} if many
                               else {"threshold": float(thresholds[0])})
    return semantic_from_classes(tiling.apply(gray, thresholds), num_classes=len(names), method=name,
                                 details=details, class_names=names, spacing=spacing)


def _flat_is_background(rule: Rule) -> Rule:
    """A rule that leaves a flat image (one value) all background, as every binary method does."""

    def guarded(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
        if hist.low == hist.high:
            return [hist.low]
        try:
            return rule(hist, params)
        except RuntimeError as exc:  # e.g. "minimum" finds no two-peaked histogram
            name = rule.__name__.removesuffix("_rule")
            raise ValueError(f"{name}: no threshold found for this image ({exc})") from None

    guarded.__name__ = guarded.__qualname__ = rule.__name__
    guarded.__doc__ = rule.__doc__
    return guarded


def _global(rule: Rule, *, floats: bool = True) -> HistogramThreshold:
    return HistogramThreshold(choose=rule, apply=_binary_map, nbins=_nbins, floats=floats)


# ------------------------------------------------------------------------------- the rules
def fixed_rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
    """``value``, or the middle of the dtype's range (integers) or of the values (floats)."""
    value = params.get("value")
    if value is None:
        dtype = np.dtype(hist.dtype)
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            value = (float(info.min) + float(info.max)) / 2
        else:
            value = (hist.low + hist.high) / 2
    return [float(value)]


@_flat_is_background
def otsu_rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
    """Otsu's threshold of the histogram (scikit-image's chooser)."""
    from skimage.filters import threshold_otsu

    return [float(threshold_otsu(hist=(hist.counts, hist.centers)))]


def multi_otsu_rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
    """The ``classes - 1`` multi-level Otsu thresholds (scikit-image's chooser)."""
    from skimage.filters import threshold_multiotsu

    classes = int(params.get("classes", 3))
    if hist.distinct() < classes:
        raise ValueError(f"the image has fewer than {classes} distinct values; cannot make "
                         f"{classes} classes")
    if np.dtype(hist.dtype) == np.uint8:  # 8-bit images: the 256 bins from zero
        found = threshold_multiotsu(hist=(hist.from_zero(), np.arange(256)), classes=classes)
    else:
        # Given an image, scikit-image normalises the histogram before its float32 cast; so do we.
        found = threshold_multiotsu(hist=(hist.counts / hist.counts.sum(), hist.centers), classes=classes)
    return [float(t) for t in found]


@_flat_is_background
def triangle_rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
    """The triangle threshold: OpenCV's rule for 8-bit images, scikit-image's otherwise."""
    if np.dtype(hist.dtype) == np.uint8:
        return [_triangle_opencv(hist.from_zero())]
    return [_triangle_skimage(hist.counts, hist.centers)]


def _triangle_opencv(h: np.ndarray) -> float:
    """OpenCV's ``THRESH_TRIANGLE`` on a 256-bin histogram (its order of ties and its final -1)."""
    n = len(h)
    nonzero = np.flatnonzero(h)
    left, right = int(nonzero[0]), int(nonzero[-1])
    left = left - 1 if left > 0 else left
    right = right + 1 if right < n - 1 else right
    peak = int(np.argmax(h))  # the first index of the maximum
    flipped = peak - left < right - peak
    if flipped:
        h = h[::-1]
        left, peak = n - 1 - right, n - 1 - peak
    a, b = float(h[peak]), float(left - peak)
    thresh = float(left)
    if peak > left:
        i = np.arange(left + 1, peak + 1)
        candidate = a * i + b * h[i].astype(np.float64)
        best = int(np.argmax(candidate))  # the first maximum, as OpenCV's strict comparison
        if candidate[best] > 0:
            thresh = float(i[best])
    thresh -= 1
    return n - 1 - thresh if flipped else thresh


def _triangle_skimage(counts: np.ndarray, centers: np.ndarray) -> float:
    """scikit-image's ``threshold_triangle``, from the histogram (it takes only images)."""
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


@_flat_is_background
def li_rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
    """Li's minimum cross-entropy threshold of an integer histogram (scikit-image's iteration)."""
    if not hist.integer:
        raise ValueError("li iterates over every pixel of a float image, not over its histogram")
    centers, counts = hist.centers, hist.counts
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
    return [float(t_next + low)]


@_flat_is_background
def mean_rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
    """The mean grey value."""
    return [hist.total / hist.pixels]


def _skimage_rule(name: str) -> Rule:
    def rule(hist: GreyHistogram, params: Mapping[str, Any]) -> list[float]:
        import skimage.filters as skf

        return [float(getattr(skf, f"threshold_{name}")(hist=(hist.counts, hist.centers)))]

    rule.__name__ = rule.__qualname__ = f"{name}_rule"
    rule.__doc__ = f"scikit-image's ``threshold_{name}``, from the histogram."
    return _flat_is_background(rule)


yen_rule = _skimage_rule("yen")
isodata_rule = _skimage_rule("isodata")
minimum_rule = _skimage_rule("minimum")

_FIXED = _global(fixed_rule)
_OTSU = _global(otsu_rule)
_MULTI_OTSU = HistogramThreshold(choose=multi_otsu_rule, apply=_classes_map, nbins=_nbins,
                                 class_names=lambda params: tuple(
                                     f"class_{k}" for k in range(int(params.get("classes", 3)))))


@register_method("threshold", task="semantic", tiling=_FIXED)
def threshold(image: np.ndarray, *, value: float | None = None,
              channel_axis: int | None = None, spacing: tuple[float, float, float] | None = None
              ) -> Segmentation:
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
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

    Examples
    --------
    >>> threshold(np.array([[1, 5, 9]], np.uint8), value=4).class_map().tolist()
    [[0, 1, 1]]
    """
    gray = grey(image, channel_axis=channel_axis, spacing=spacing)
    # The rule reads the value range only to take the middle of a float image's values.
    low, high = value_range(gray) if value is None and gray.dtype.kind == "f" else (0.0, 0.0)
    chosen = fixed_rule(GreyHistogram(np.zeros(0, np.int64), low, high, gray.dtype.str), {"value": value})
    return semantic_from_classes(_binary_map(gray, chosen), num_classes=2, method="threshold",
                                 details={"threshold": chosen[0]}, spacing=spacing)


@register_method("otsu", task="semantic", tiling=_OTSU)
def otsu(image: np.ndarray, *, nbins: int = 256, channel_axis: int | None = None,
         spacing: tuple[float, float, float] | None = None) -> Segmentation:
    """Two classes split at Otsu's threshold, which maximises the between-class variance.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    nbins : int
        Histogram bins for float images; integer images use one bin per value.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

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
    return _histogram_method(image, "otsu", _OTSU, {"nbins": nbins}, channel_axis, spacing)


@register_method("multi_otsu", task="semantic", tiling=_MULTI_OTSU)
def multi_otsu(image: np.ndarray, *, classes: int = 3, nbins: int = 256,
               channel_axis: int | None = None, spacing: tuple[float, float, float] | None = None
               ) -> Segmentation:
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
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

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
    if not 2 <= classes <= 5:
        raise ValueError(f"classes must be between 2 and 5, got {classes}")
    _check_nbins(nbins)
    # right=True: a pixel joins class k+1 only when it is *above* threshold k, as in otsu; with
    # classes=2 this equals otsu's split (scikit-image's docs digitize the other way round).
    return _histogram_method(image, "multi_otsu", _MULTI_OTSU, {"classes": classes, "nbins": nbins},
                             channel_axis, spacing)


def _histogram_global(name: str, rule: Rule, summary: str, reference: str, example: str, *,
                      floats: bool = True) -> None:
    """Register a histogram threshold ``name`` made of ``rule``, documented here."""
    tiling = _global(rule, floats=floats)

    def method(image: np.ndarray, *, channel_axis: int | None = None,
               spacing: tuple[float, float, float] | None = None) -> Segmentation:
        if not floats:
            gray = grey(image, channel_axis=channel_axis, spacing=spacing)
            if gray.dtype.kind == "f":  # the rule needs the pixels themselves
                import skimage.filters as skf

                value = float(getattr(skf, f"threshold_{name}")(gray)) if gray.min() < gray.max() \
                    else float(gray.min())
                return semantic_from_classes(_binary_map(gray, [value]), num_classes=2, method=name,
                                             details={"threshold": value}, spacing=spacing)
        return _histogram_method(image, name, tiling, {}, channel_axis, spacing)

    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"""{summary}

    Pixels above the threshold are foreground; the threshold is in ``provenance.details``.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

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
    globals()[name] = register_method(name, task="semantic", tiling=tiling)(method)


_histogram_global("li", li_rule, "Two classes split at Li's minimum cross-entropy threshold.",
                  "C. H. Li and P. K. S. Tam, \"An iterative algorithm for minimum cross entropy "
                  "thresholding\", Pattern Recognition Letters 19(8), 771-776, 1998.",
                  "[[0, 0, 1], [0, 1, 1]]", floats=False)
_histogram_global("yen", yen_rule, "Two classes split at Yen's maximum-correlation threshold.",
                  "J.-C. Yen, F.-J. Chang and S. Chang, \"A new criterion for automatic multilevel "
                  "thresholding\", IEEE Trans. Image Processing 4(3), 370-378, 1995.",
                  "[[0, 0, 1], [0, 1, 1]]")
_histogram_global("triangle", triangle_rule, "Two classes split by the triangle method on the histogram.",
                  "G. W. Zack, W. E. Rogers and S. A. Latt, \"Automatic measurement of sister "
                  "chromatid exchange frequency\", J. Histochem. Cytochem. 25(7), 741-753, 1977.",
                  "[[0, 0, 1], [0, 1, 1]]")
_histogram_global("isodata", isodata_rule, "Two classes split at the ISODATA (Ridler-Calvard) threshold.",
                  "T. W. Ridler and S. Calvard, \"Picture thresholding using an iterative selection "
                  "method\", IEEE Trans. SMC 8(8), 630-632, 1978.",
                  "[[0, 0, 1], [0, 1, 1]]")
_histogram_global("mean", mean_rule, "Two classes split at the mean intensity.",
                  "C. A. Glasbey, \"An analysis of histogram-based thresholding algorithms\", "
                  "CVGIP: Graphical Models and Image Processing 55, 532-537, 1993.",
                  "[[0, 0, 1], [0, 1, 1]]")
_histogram_global("minimum", minimum_rule, "Two classes split at the valley between the histogram's two "
                  "peaks (the histogram is smoothed until it has exactly two).",
                  "C. A. Glasbey, \"An analysis of histogram-based thresholding algorithms\", "
                  "CVGIP: Graphical Models and Image Processing 55, 532-537, 1993.",
                  "[[0, 0, 1], [0, 1, 1]]")


def _check_block(block_size: int, gray: np.ndarray, name: str = "block_size") -> None:
    """An odd window of at least 3 pixels, and no wider than mirroring the image can fill: a
    wider one changes nothing but the memory it takes (``window_size=100001`` wanted 75 GiB)."""
    if block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"{name} must be an odd integer >= 3, got {block_size}")
    widest = 2 * max(gray.shape) + 1
    if block_size > widest:
        raise ValueError(f"{name}={block_size} is wider than this {'x'.join(map(str, gray.shape))} "
                         f"{'image' if gray.ndim == 2 else 'volume'} can use: at most {widest} (twice the "
                         "longest side, plus one)")


def _adaptive(image: np.ndarray, block_size: int, offset: float, channel_axis: int | None,
              method: str, spacing: Sequence[float] | None) -> Segmentation:
    gray = grey(image, channel_axis=channel_axis, spacing=spacing)
    _check_block(block_size, gray)
    if method == "mean" and gray.dtype.kind in "iub":
        above = _above_local_mean(gray, block_size, offset) if spacing is None else \
            _above_box_mean(gray, block_size, offset)
    elif spacing is None and method == "gaussian":
        # scikit-image's threshold_local: scipy's Gaussian (sigma (block - 1) / 6, cut at 4 sigma)
        # with mirrored borders. OpenCV applies the same kernel, in float64 as scipy does (a
        # float32 pass is 5x faster but moves pixels within rounding of their threshold, flat
        # areas above all, so it is not used).
        sigma = (block_size - 1) / 6.0
        side = 2 * _gaussian_reach({"block_size": block_size}) + 1
        kernel = cv2.getGaussianKernel(side, sigma, cv2.CV_64F)
        local = cv2.sepFilter2D(gray.astype(np.float64), cv2.CV_64F, kernel, kernel,
                                borderType=cv2.BORDER_REFLECT)
        np.subtract(local, offset, out=local)
        above = gray > local
    else:  # float images, and volumes (block_size voxels along every axis)
        from skimage.filters import threshold_local

        local = threshold_local(gray.astype(np.float64), block_size, method=method, offset=offset,
                                mode="reflect")
        above = gray > local
    return semantic_from_classes(above, num_classes=2, method=f"adaptive_{method}",
                                 details={"block_size": block_size, "offset": offset}, spacing=spacing)


def window_sums(gray: np.ndarray, size: int, *, squares: bool = False, edge_repeated: bool = True
                ) -> tuple[np.ndarray, np.ndarray | None]:
    """Sums (and sums of squares) of every ``size`` x ``size`` window, borders mirrored, from
    OpenCV's unnormalised box filters. ``edge_repeated``: mirrored with the edge pixel repeated
    (scipy's ``reflect``, ``dcba|abcd``), else around it (NumPy's ``reflect``, ``dcb|abcd``).

    For integer images the sums are exact (int32 for 8-bit windows that cannot overflow it,
    float64 otherwise: every sum is an integer below 2**53), so a pixel's answer depends on its
    window's values alone, not on where the image was cut: a tile read with the window's reach as
    halo gives the same answer as the whole image.
    """
    if gray.dtype not in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        gray = gray.astype(np.float64)  # exact for integers below 2**53
    gray = np.ascontiguousarray(gray)
    border = cv2.BORDER_REFLECT if edge_repeated else cv2.BORDER_REFLECT_101
    depth = cv2.CV_32S if gray.dtype == np.uint8 and size * size * 255 < 2**31 else cv2.CV_64F
    sums = cv2.boxFilter(gray, depth, (size, size), normalize=False, borderType=border)
    square = cv2.sqrBoxFilter(gray, cv2.CV_64F, (size, size), normalize=False, borderType=border) \
        if squares else None
    return sums, square


def _above_local_mean(gray: np.ndarray, block_size: int, offset: float) -> np.ndarray:
    """``gray > mean(block) - offset`` for an integer image, with the block sums counted exactly."""
    from ._pixel_kernels import above_block_mean

    sums, _ = window_sums(gray, block_size)
    n = block_size * block_size
    if sums.dtype == np.int32 and float(offset * n).is_integer():  # all in integers: no rounding
        return above_block_mean(gray, sums, float(n), float(offset * n), True)
    return above_block_mean(gray, sums, float(n), float(offset), False)


def _above_box_mean(gray: np.ndarray, size: int, offset: float) -> np.ndarray:
    """``gray > mean(box) - offset`` for an integer volume (any number of axes), the box sums
    counted exactly from an integral volume (borders mirrored as scipy's ``reflect``), so that a
    voxel's answer depends on its window alone, as :func:`_above_local_mean`'s for images."""
    import itertools

    reach = size // 2
    ndim = gray.ndim
    integral = np.pad(gray.astype(np.int64), reach, mode="symmetric")
    for axis in range(ndim):
        integral = np.cumsum(integral, axis=axis)
    integral = np.pad(integral, [(1, 0)] * ndim)
    sums = np.zeros(gray.shape, np.int64)
    for corner in itertools.product((0, 1), repeat=ndim):
        window = tuple(slice(size, size + n) if high else slice(0, n)
                       for high, n in zip(corner, gray.shape, strict=True))
        sums += (-1) ** (ndim - sum(corner)) * integral[window]
    count = size**ndim
    if float(offset * count).is_integer():  # all in integers: no rounding
        return gray.astype(np.int64) * count > sums - int(offset * count)
    return gray > sums / count - offset


def _above_local_threshold(gray: np.ndarray, size: int, k: float, r: float, *, sauvola: bool
                           ) -> np.ndarray:
    """Niblack's or Sauvola's comparison, from the local mean and standard deviation computed as
    scikit-image's ``threshold_niblack`` and ``threshold_sauvola`` compute them (the same formula
    on the same sums, exact for integers)."""
    from ._pixel_kernels import above_local_deviation

    if gray.dtype == np.uint8 and size * size * 255 * 255 < 2**31:
        # Squares of 8-bit values fit 16 bits, and their window sums int32: exact and fastest.
        border = cv2.BORDER_REFLECT_101
        sums = cv2.boxFilter(gray, cv2.CV_32S, (size, size), normalize=False, borderType=border)
        squares = cv2.boxFilter(cv2.multiply(gray, gray, dtype=cv2.CV_16U), cv2.CV_32S, (size, size),
                                normalize=False, borderType=border)
    else:
        sums, squares = window_sums(gray, size, squares=True, edge_repeated=False)  # type: ignore[assignment]
    return above_local_deviation(np.ascontiguousarray(gray), sums, squares, float(size * size),
                                 float(k), float(r), sauvola)


def _half_window(parameter: str) -> Callable[[Mapping[str, Any]], int]:
    def reach(params: Mapping[str, Any]) -> int:
        return int(params[parameter]) // 2

    return reach


def _gaussian_reach(params: Mapping[str, Any]) -> int:
    sigma = (int(params["block_size"]) - 1) / 6.0
    return int(4.0 * sigma + 0.5)  # scipy's gaussian_filter truncates at 4 sigma


@register_method("adaptive_mean", task="semantic",
                 tiling=LocalWindow(reach=_half_window("block_size"), parameter="block_size"))
def adaptive_mean(image: np.ndarray, *, block_size: int = 35, offset: float = 0.0,
                  channel_axis: int | None = None,
                  spacing: tuple[float, float, float] | None = None) -> Segmentation:
    """Foreground where a pixel exceeds the mean of its ``block_size`` neighbourhood minus ``offset``.

    Integer images sum each neighbourhood exactly (an integral image), so the result does not
    depend on where the image is cut; borders are mirrored (scipy's ``reflect``).

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    block_size : int
        Odd side of the square neighbourhood (of a volume: the cube, in voxels).
    offset : float
        Subtracted from the local mean (in the image's units).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

    References
    ----------
    .. [1] R. C. Gonzalez and R. E. Woods, "Digital Image Processing", 4th ed., section 10.3.

    Examples
    --------
    >>> image = np.tile(np.array([[10, 200]], np.uint8), (5, 5))
    >>> adaptive_mean(image, block_size=3).class_map()[2, :4].tolist()
    [0, 1, 0, 1]
    """
    return _adaptive(image, block_size, offset, channel_axis, "mean", spacing)


@register_method("adaptive_gaussian", task="semantic",
                 tiling=LocalWindow(reach=_gaussian_reach, parameter="block_size"))
def adaptive_gaussian(image: np.ndarray, *, block_size: int = 35, offset: float = 0.0,
                      channel_axis: int | None = None,
                      spacing: tuple[float, float, float] | None = None) -> Segmentation:
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
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

    References
    ----------
    .. [1] R. C. Gonzalez and R. E. Woods, "Digital Image Processing", 4th ed., section 10.3.

    Examples
    --------
    >>> image = np.tile(np.array([[10, 200]], np.uint8), (5, 5))
    >>> adaptive_gaussian(image, block_size=3).class_map()[2, :4].tolist()
    [0, 1, 0, 1]
    """
    return _adaptive(image, block_size, offset, channel_axis, "gaussian", spacing)


@register_method("niblack", task="semantic",
                 tiling=LocalWindow(reach=_half_window("window_size"), parameter="window_size"))
def niblack(image: np.ndarray, *, window_size: int = 25, k: float = 0.2,
            channel_axis: int | None = None, spacing: tuple[float, float, float] | None = None
            ) -> Segmentation:
    """Niblack's local threshold ``T = m - k * s`` from the local mean m and deviation s.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    window_size : int
        Odd side of the local window (of a volume: the cube, in voxels).
    k : float
        Weight of the local standard deviation.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

    References
    ----------
    .. [1] W. Niblack, "An Introduction to Digital Image Processing", Prentice-Hall, 1986.

    Examples
    --------
    >>> image = np.zeros((9, 9), np.uint8); image[3:6, 3:6] = 200
    >>> int(niblack(image, window_size=5).class_map()[4, 4])
    1
    """
    gray = grey(image, channel_axis=channel_axis, spacing=spacing)
    _check_block(window_size, gray, "window_size")
    if spacing is None:
        above = _above_local_threshold(gray, window_size, k, 1.0, sauvola=False)
    else:  # a volume: scikit-image's n-dimensional windows
        from skimage.filters import threshold_niblack

        above = gray > threshold_niblack(gray, window_size=window_size, k=k)
    return semantic_from_classes(above, num_classes=2, method="niblack",
                                 details={"window_size": window_size, "k": k}, spacing=spacing)


@register_method("sauvola", task="semantic",
                 tiling=LocalWindow(reach=_half_window("window_size"), parameter="window_size"))
def sauvola(image: np.ndarray, *, window_size: int = 25, k: float = 0.2, r: float | None = None,
            channel_axis: int | None = None, spacing: tuple[float, float, float] | None = None
            ) -> Segmentation:
    """Sauvola's local threshold ``T = m * (1 + k * (s / r - 1))``, made for documents.

    Parameters
    ----------
    image : ndarray
        Grey or colour image (colour is converted to luma).
    window_size : int
        Odd side of the local window (of a volume: the cube, in voxels).
    k : float
        Weight of the normalised deviation.
    r : float or None
        Dynamic range of the deviation; None uses half the dtype's range (127.5 for uint8; 1 for
        floats), as scikit-image does.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

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
    from skimage.util.dtype import dtype_limits

    gray = grey(image, channel_axis=channel_axis, spacing=spacing)
    _check_block(window_size, gray, "window_size")
    if r is None:  # as scikit-image: half the dtype's range
        low, high = dtype_limits(gray, clip_negative=False)
        r = 0.5 * (high - low)
    if spacing is None:
        above = _above_local_threshold(gray, window_size, k, r, sauvola=True)
    else:  # a volume: scikit-image's n-dimensional windows
        from skimage.filters import threshold_sauvola

        above = gray > threshold_sauvola(gray, window_size=window_size, k=k, r=r)
    return semantic_from_classes(above, num_classes=2, method="sauvola",
                                 details={"window_size": window_size, "k": k}, spacing=spacing)


# The factory above defines these at import time; named here for linters and readers.
li: Callable[..., Segmentation]
yen: Callable[..., Segmentation]
triangle: Callable[..., Segmentation]
isodata: Callable[..., Segmentation]
mean: Callable[..., Segmentation]
minimum: Callable[..., Segmentation]
