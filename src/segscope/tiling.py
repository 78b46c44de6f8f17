"""How a method is cut into tiles: the declaration a method makes where it is registered.

A method too large for memory is run tile by tile by :mod:`segscope.tiled`. What that needs
depends on the algorithm, not on the engine, so each method says it when it registers::

    @register_method("otsu", task="semantic", tiling=HistogramThreshold(choose=otsu_rule, ...))

The engine holds one strategy per class below and never a method's name:

:class:`HistogramThreshold`
    Thresholds chosen from the whole image's grey histogram by ``choose`` (the very function the
    untiled method calls), applied pixel by pixel. Exact.
:class:`LocalWindow`
    Pixel-wise results that look ``reach(params)`` pixels around each pixel: each tile is read
    with at least that halo and cropped back. Exact.
:class:`Objects`
    Regions or instances made from a neighbourhood: tiles are read with the job's overlap,
    objects are named by their first pixel and joined across seams. ``shared`` states are decided
    once for the whole image and passed to every tile as parameters (a threshold, a gradient
    range); ``per_image_counts`` are parameters that count for the whole image (``n_segments``),
    shared out by tile area.
:class:`Components`
    Connected components: tiles need no halo, pieces that touch across a seam are joined, and the
    size filter waits for the joined sizes. Exact, up to the numbering.
:class:`Clusters`
    One sample drawn tile by tile, one fit, one assignment per tile.

A method without a declaration is refused by the tiled engine with a message that says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .imagecheck import as_plane, check_image, check_volume, to_gray

__all__ = [
    "MAX_INTEGER_RANGE",
    "Clusters",
    "Components",
    "FromHistogram",
    "FromTiles",
    "GreyHistogram",
    "HistogramThreshold",
    "LocalWindow",
    "Objects",
    "Tiling",
    "grey",
    "grey_histogram",
]

Params = Mapping[str, Any]

#: Integer images wider than this range are refused: their histogram would not fit in memory.
MAX_INTEGER_RANGE = 1 << 24


def grey(image: np.ndarray, *, channel_axis: int | None = None,
         spacing: Sequence[float] | None = None) -> np.ndarray:
    """The grey image a threshold works on: the luma of colour, the dtype kept (bool as uint8).
    With a ``spacing``, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume and the grey volume is
    returned."""
    if spacing is not None:
        volume = check_volume(image, spacing=spacing, channel_axis=channel_axis)[0]
        if volume.ndim == 3:  # grey already: (Z, Y, X) is not (H, W, C)
            return volume.astype(np.uint8) if volume.dtype == bool else volume
        return to_gray(volume)
    return to_gray(check_image(image, channel_axis=channel_axis))


# ----------------------------------------------------------------------------- histograms
@dataclass(frozen=True)
class GreyHistogram:
    """A grey image's histogram, in the bins every threshold rule of segscope uses.

    Integer images have one bin per value from ``low`` to ``high`` (scikit-image's convention);
    float images have ``nbins`` equal bins between ``low`` and ``high``, with the edges
    ``np.histogram`` draws. Histograms of tiles in the same bins add up to the whole image's.
    """

    counts: np.ndarray
    low: float
    high: float
    dtype: str
    nbins: int = 256
    total: float = 0.0
    """The sum of the grey values (the ``mean`` rule needs it for float images)."""

    @property
    def integer(self) -> bool:
        return np.dtype(self.dtype).kind in "iub"

    @property
    def pixels(self) -> int:
        return int(self.counts.sum())

    @property
    def centers(self) -> np.ndarray:
        """The value at the centre of each bin."""
        if self.integer:
            return np.arange(int(self.low), int(self.high) + 1)
        kind = np.dtype(self.dtype).type
        edges = np.histogram_bin_edges(np.empty(0, self.dtype), bins=self.nbins,
                                       range=(kind(self.low), kind(self.high)))
        return (edges[:-1] + edges[1:]) / 2.0

    def distinct(self) -> int:
        """Values present (integer images) or bins occupied (float images)."""
        return int(np.count_nonzero(self.counts))

    def count_above(self, value: float) -> int:
        """Pixels in the bins whose centre lies above ``value``."""
        return int(self.counts[self.centers > value].sum())

    def from_zero(self, size: int = 256) -> np.ndarray:
        """The counts of an integer histogram re-based on bins 0..size-1 (OpenCV's 8-bit rules)."""
        full = np.zeros(size, np.int64)
        full[int(self.low):int(self.high) + 1] = self.counts
        return full

    def __add__(self, other: GreyHistogram) -> GreyHistogram:
        """The histogram of two images together (integer images: bins aligned by value)."""
        if self.dtype != other.dtype or (not self.integer and (self.low, self.high, self.nbins)
                                         != (other.low, other.high, other.nbins)):
            raise ValueError("only histograms of one dtype (and, for floats, the same bins) add up")
        if not self.integer:
            return GreyHistogram(self.counts + other.counts, self.low, self.high, self.dtype, self.nbins,
                                 self.total + other.total)
        low, high = min(self.low, other.low), max(self.high, other.high)
        counts = np.zeros(int(high - low) + 1, np.int64)
        for part in (self, other):
            start = int(part.low - low)
            counts[start:start + len(part.counts)] += part.counts
        return GreyHistogram(counts, low, high, self.dtype, self.nbins, self.total + other.total)


def value_range(gray: np.ndarray) -> tuple[float, float]:
    """Minimum and maximum of a grey image, in one pass where OpenCV reads the dtype."""
    if gray.dtype in (np.uint8, np.uint16, np.int16, np.float32, np.float64):
        import cv2

        low, high, _, _ = cv2.minMaxLoc(as_plane(gray))
        return float(low), float(high)
    return float(gray.min()), float(gray.max())


def grey_histogram(gray: np.ndarray, *, span: tuple[float, float] | None = None,
                   nbins: int = 256) -> GreyHistogram:
    """The :class:`GreyHistogram` of a grey image, over ``span`` = (low, high) (default: its own
    range; tiles of a float image are binned over the whole image's).

    Examples
    --------
    >>> h = grey_histogram(np.array([[3, 3, 5]], np.uint8))
    >>> h.counts.tolist(), h.centers.tolist()
    ([2, 0, 1], [3, 4, 5])
    """
    if gray.dtype == bool:
        gray = gray.view(np.uint8)
    low, high = value_range(gray) if span is None else span
    if gray.dtype.kind in "iu":
        if high - low > MAX_INTEGER_RANGE:
            raise ValueError(f"integer values span {low:g} to {high:g}: too wide a range for a "
                             f"histogram (at most {MAX_INTEGER_RANGE}); convert the image to float")
        if gray.dtype == np.uint8 and gray.size < 1 << 24:  # float32 counts are exact below 2**24
            import cv2

            full = cv2.calcHist([as_plane(gray)], [0], None, [256], [0, 256]).ravel()
            counts = full[int(low):int(high) + 1].astype(np.int64)
        else:
            shifted = gray.astype(np.int64, copy=False).ravel() - int(low)
            counts = np.bincount(shifted, minlength=int(high - low) + 1).astype(np.int64)
        total = float(np.dot(counts, np.arange(int(low), int(high) + 1, dtype=np.int64)))
        return GreyHistogram(counts, float(low), float(high), gray.dtype.str, nbins, total)
    kind = gray.dtype.type
    counts, _ = np.histogram(gray, bins=nbins, range=(kind(low), kind(high)))
    return GreyHistogram(counts.astype(np.int64), float(low), float(high), gray.dtype.str, nbins,
                         float(gray.sum(dtype=np.float64)))


# ----------------------------------------------------------------------------- strategies
@dataclass(frozen=True)
class FromHistogram:
    """Parameters decided once from the whole image's grey histogram, given to every tile.

    ``decide(histogram, params, channels, values)`` returns the parameters to set; ``values`` is
    the image's distinct grey values when it has at most two (a mask), else None.
    """

    decide: Callable[[GreyHistogram, Params, int, tuple[float, ...] | None], dict[str, Any]]
    nbins: Callable[[Params], int] = field(default=lambda params: 256)


@dataclass(frozen=True)
class FromTiles:
    """Parameters decided once from a statistic of every tile.

    ``measure(padded_pixels, core, params)`` looks at one tile (read with its halo; ``core`` cuts
    the tile's own pixels out of it) and ``combine(measures, params)`` returns the parameters.
    """

    measure: Callable[[np.ndarray, tuple[slice, slice], Params], Any]
    combine: Callable[[list[Any], Params], dict[str, Any]]


Shared = FromHistogram | FromTiles


@dataclass(frozen=True)
class Tiling:
    """What every strategy may declare: a check of the parameters before any tile runs."""

    refuse: Callable[[Params], str | None] = field(default=lambda params: None, kw_only=True)
    """Returns why these parameters cannot be tiled, or None."""


def _binary(params: Params) -> tuple[str, ...]:
    return ("background", "foreground")


@dataclass(frozen=True)
class HistogramThreshold(Tiling):
    """Thresholds chosen from the whole image's grey histogram, then applied to each pixel.

    ``choose(histogram, params)`` is the function the method itself calls on its image's
    histogram; ``apply(grey, thresholds)`` gives the class map; ``nbins(params)`` the bins of
    float images. ``floats=False``: float images need more than their histogram and are refused.
    """

    choose: Callable[[GreyHistogram, Params], Sequence[float]]
    apply: Callable[[np.ndarray, Sequence[float]], np.ndarray]
    class_names: Callable[[Params], tuple[str, ...]] = _binary
    nbins: Callable[[Params], int] = field(default=lambda params: 256)
    floats: bool = True


@dataclass(frozen=True)
class LocalWindow(Tiling):
    """A pixel-wise result that looks at most ``reach(params)`` pixels around each pixel."""

    reach: Callable[[Params], int]
    parameter: str
    """The option that sets the window, named in the message when the overlap is too small."""
    class_names: Callable[[Params], tuple[str, ...]] = _binary


@dataclass(frozen=True)
class Objects(Tiling):
    """Regions or instances from a neighbourhood: named by first pixel, joined across seams."""

    shared: tuple[Shared, ...] = ()
    per_image_counts: tuple[str, ...] = ()
    """Parameters counting for the whole image, shared out between tiles by area."""


@dataclass(frozen=True)
class Components(Objects):
    """Connected components: pieces touching across a seam are joined; ``min_size`` (the
    parameter named here) is applied to the joined sizes."""

    min_size: str = "min_size"
    diagonal: Callable[[Params], bool] = field(default=lambda params: True)
    """Whether pieces touching only at a corner are one component."""


@dataclass(frozen=True)
class Clusters(Tiling):
    """Clustering fitted once on a sample drawn tile by tile.

    ``sample(core_pixels, params, origin, index, total_pixels)`` draws one tile's share;
    ``fit(samples, params, shape)`` returns the plain-data state every tile needs;
    ``assign(padded_pixels, state, params, origin)`` gives a tile's class map.
    """

    sample: Callable[[np.ndarray, Params, tuple[int, int], int, int], dict[str, Any]]
    fit: Callable[[list[dict[str, Any]], Params, tuple[int, int]], dict[str, Any]]
    assign: Callable[[np.ndarray, Mapping[str, Any], Params, tuple[int, int]], np.ndarray]
    class_names: Callable[[Params], tuple[str, ...]] = _binary
