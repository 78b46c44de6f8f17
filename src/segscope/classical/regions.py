"""Region-based methods: seeded region growing, split-and-merge, region merging, graph-based."""

from __future__ import annotations

import math

import numpy as np

from ..imagecheck import check_image, check_image_or_volume, to_gray
from ..registry import register_method
from ..result import Segmentation
from ..tiling import Objects
from ._common import absorb_small, check_parameter, check_sigma, h_minima, regions
from ._kernels import merge_homogeneous, quadtree_leaves, relabel_sequential, seeded_region_growing

__all__ = ["felzenszwalb", "region_growing", "region_merging", "split_and_merge"]


def _features(image: np.ndarray, *, volume: bool = False) -> np.ndarray:
    """(H, W, C) float64 features of an image (the grey value, or every colour band), or
    (Z, Y, X, C) ones of a volume."""
    if image.dtype == bool:
        image = image.astype(np.uint8)
    data = image.astype(np.float64)
    return data[..., None] if data.ndim == (3 if volume else 2) else data


def _auto_seeds(image: np.ndarray, h: float, *, volume: bool = False) -> np.ndarray:
    """Seeds at the h-minima of the smoothed gradient (face-connected minima are one seed)."""
    from scipy import ndimage
    from skimage import filters

    gray = (image if volume and image.ndim == 3 else to_gray(image)).astype(np.float64)
    gradient = filters.sobel(filters.gaussian(gray, sigma=1.0, preserve_range=True))
    span = float(gradient.max() - gradient.min())
    minima = h_minima(gradient, h * span) if span > 0 else \
        np.ones(gray.shape, bool)
    return ndimage.label(minima)[0].astype(np.int32)


@register_method("region_growing", task="regions", tiling=Objects())
def region_growing(
    image: np.ndarray,
    *,
    seeds: np.ndarray | None = None,
    tolerance: float | None = None,
    h: float = 0.05,
    channel_axis: int | None = None,
    spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """Seeded region growing: pixels join regions in order of their distance to the region mean.

    Adams and Bischof's algorithm: every unlabelled pixel next to a region waits in one priority
    queue, keyed by the Euclidean distance between its value (grey or colour) and the current mean
    of the region it touches; the closest pixel joins first and the region's mean is updated.
    Regions stay connected (4-connectivity; 6 in a volume) and each holds its seed.

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image.
    seeds : ndarray or None
        A label image of seeds (0 = none), or (row, col) points as an (N, 2) array or a list of
        pairs (a list is always read as points; (z, row, col) in a volume), one region each. None
        places seeds at the gradient's h-minima.
    tolerance : float or None
        Pixels farther than this from every neighbouring region's mean stay unlabelled (0).
        None grows until the image is covered.
    h : float
        Automatic seeds: minimum gradient basin depth, as a fraction of the gradient's range.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume (the
        growing compares values only, so the spacing is kept in the result).

    References
    ----------
    .. [1] R. Adams and L. Bischof, "Seeded region growing", IEEE TPAMI 16(6), 641-647, 1994.

    Examples
    --------
    >>> image = np.array([[0, 0, 9, 9], [0, 1, 9, 8]], np.uint8)
    >>> region_growing(image, seeds=np.array([[0, 0], [0, 3]])).labels.tolist()
    [[1, 1, 2, 2], [1, 1, 2, 2]]
    """
    from .watershed import _markers

    image, spacing = check_image_or_volume(image, channel_axis=channel_axis, spacing=spacing)
    volume = spacing is not None
    if tolerance is not None and tolerance < 0:
        raise ValueError(f"tolerance must be non-negative or None, got {tolerance}")
    shape = image.shape[:3] if volume else image.shape[:2]
    markers = _markers(seeds, shape)
    if markers is None:
        markers = _auto_seeds(image, h, volume=volume)
    data = _features(image, volume=volume)
    grown = seeded_region_growing(data if volume else data[None], np.ascontiguousarray(
        markers if volume else markers[None], np.int32), -1.0 if tolerance is None else float(tolerance))
    return regions(grown if volume else grown[0], method="region_growing",
                   details={"seeds": int(np.unique(markers[markers > 0]).size)}, spacing=spacing)


def _quadtree(data: np.ndarray, threshold: float, min_size: int) -> np.ndarray:
    """Leaf labels 1..N of the quadtree split: a block is split while its value range (largest over
    bands) exceeds ``threshold`` and it is larger than ``min_size``."""
    height, width = data.shape[:2]
    levels = max(0, int(np.ceil(np.log2(max(height, width, 1)))))
    min_level = max(0, int(np.floor(np.log2(max(min_size, 1)))))
    return quadtree_leaves(np.ascontiguousarray(data, dtype=np.float64), float(threshold), min_level, levels)


@register_method("split_and_merge", task="regions", tiling=Objects())
def split_and_merge(
    image: np.ndarray,
    *,
    threshold: float = 40.0,
    min_block: int = 2,
    min_size: int = 100,
    channel_axis: int | None = None,
) -> Segmentation:
    """Quadtree split until every block is homogeneous, then merge homogeneous neighbours.

    A region is homogeneous when its value range (max - min, the largest over colour bands) is at
    most ``threshold``. Blocks are split into quarters until homogeneous or ``min_size`` pixels on
    a side; adjacent regions are then merged, closest means first, whenever their union is still
    homogeneous. Every final region therefore passes the test (except blocks at ``min_block``),
    unless ``min_size`` then folds small regions into their closest neighbour.

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image.
    threshold : float
        Largest value range allowed inside a region, in the image's units.
    min_block : int
        Smallest block side, in pixels (rounded down to a power of two).
    min_size : int
        Regions with fewer pixels join their closest-mean neighbour after merging (0: none).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] S. L. Horowitz and T. Pavlidis, "Picture segmentation by a tree traversal algorithm",
       Journal of the ACM 23(2), 368-388, 1976.

    Examples
    --------
    >>> image = np.zeros((8, 8), np.uint8); image[:, 5:] = 100
    >>> split_and_merge(image, threshold=10, min_block=1, min_size=0).labels[0].tolist()
    [1, 1, 1, 1, 1, 2, 2, 2]
    """
    image = check_image(image, channel_axis=channel_axis)
    if threshold < 0:
        raise ValueError(f"threshold must be non-negative, got {threshold}")
    if min_block < 1:
        raise ValueError(f"min_block must be at least 1, got {min_block}")
    data = _features(image)
    leaves = _quadtree(data, threshold, min_block)
    merged = merge_homogeneous(leaves, np.ascontiguousarray(data), float(threshold))
    labels = relabel_sequential(merged)
    if min_size > 1:
        labels = absorb_small(labels, data, min_size)
    return regions(labels, method="split_and_merge",
                   details={"blocks": int(leaves.max()), "regions": int(labels.max())})


@register_method("felzenszwalb", task="regions", tiling=Objects())
def felzenszwalb(
    image: np.ndarray,
    *,
    scale: float = 500.0,
    sigma: float = 0.8,
    min_size: int = 200,
    channel_axis: int | None = None,
) -> Segmentation:
    """Felzenszwalb and Huttenlocher's graph-based segmentation (scikit-image's implementation).

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image.
    scale : float
        Higher means larger regions.
    sigma : float
        Gaussian smoothing before the graph is built.
    min_size : int
        Smallest region, in pixels, enforced after the segmentation.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] P. F. Felzenszwalb and D. P. Huttenlocher, "Efficient graph-based image segmentation",
       IJCV 59(2), 167-181, 2004.

    Examples
    --------
    >>> image = np.zeros((20, 20), np.uint8); image[:, 10:] = 200
    >>> len(felzenszwalb(image, min_size=50))
    2
    """
    from skimage import segmentation

    image = check_image(image, channel_axis=channel_axis)
    check_sigma("felzenszwalb", "sigma", sigma, image)
    if not scale > 0 or not math.isfinite(scale) or min_size < 0:
        raise ValueError(f"felzenszwalb needs scale > 0, sigma >= 0 and min_size >= 0; got scale={scale}, "
                         f"sigma={sigma}, min_size={min_size}")
    labels = segmentation.felzenszwalb(image, scale=scale, sigma=sigma, min_size=min_size,
                                       channel_axis=-1 if image.ndim == 3 else None)
    return regions(labels + 1, method="felzenszwalb")


@register_method("region_merging", task="regions", tiling=Objects(per_image_counts=("n_segments",)))
def region_merging(
    image: np.ndarray,
    *,
    n_segments: int = 600,
    threshold: float = 45.0,
    criterion: str = "colour",
    channel_axis: int | None = None,
) -> Segmentation:
    """Agglomerative merging of a SLIC over-segmentation over its region adjacency graph.

    Neighbouring regions are merged hierarchically, most similar first, while their distance is
    below ``threshold``: the difference of mean colours (``colour``), or the mean gradient
    magnitude along their shared boundary (``boundary``).

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image.
    n_segments : int
        Approximate number of SLIC superpixels to start from.
    threshold : float
        Stop merging at this distance (image units for ``colour``; gradient units for
        ``boundary``).
    criterion : {"colour", "boundary"}
        What makes two regions similar.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] A. Tremeau and P. Colantoni, "Regions adjacency graph applied to color image
       segmentation", IEEE Trans. Image Processing 9(4), 735-744, 2000.

    Examples
    --------
    >>> image = np.zeros((30, 30, 3), np.uint8); image[:, 15:] = 200
    >>> len(region_merging(image, n_segments=20, threshold=60))
    2
    """
    from skimage import filters, graph, segmentation

    if criterion not in ("colour", "boundary"):
        raise ValueError(f"criterion must be 'colour' or 'boundary', got {criterion!r}")
    image = check_image(image, channel_axis=channel_axis)
    data = _features(image)
    if data.shape[-1] == 4:
        data = data[..., :3]  # RGBA: alpha carries no colour
    if data.shape[-1] not in (1, 3):
        raise ValueError(f"region_merging supports 1 or 3 bands (RGBA alpha dropped), got "
                         f"{data.shape[-1]}")
    check_parameter("region_merging", "n_segments", n_segments, low=1)
    check_parameter("region_merging", "threshold", threshold, low=0)
    initial = segmentation.slic(data, n_segments=n_segments, compactness=10.0 if data.shape[-1]
                                > 1 else 0.1, start_label=1, channel_axis=-1,
                                convert2lab=False, enforce_connectivity=True)
    if int(initial.max()) <= 1:  # one superpixel (a tiny or flat image): nothing to merge
        return regions(np.ones(initial.shape, np.int32), method="region_merging",
                       details={"superpixels": 1})
    if criterion == "colour":
        rag = graph.rag_mean_color(data, initial)

        def weight(g, src, dst, n):
            diff = g.nodes[dst]["mean color"] - g.nodes[n]["mean color"]
            return {"weight": float(np.linalg.norm(diff))}

        def merge(g, src, dst):
            g.nodes[dst]["total color"] += g.nodes[src]["total color"]
            g.nodes[dst]["pixel count"] += g.nodes[src]["pixel count"]
            g.nodes[dst]["mean color"] = g.nodes[dst]["total color"] / g.nodes[dst]["pixel count"]

        labels = graph.merge_hierarchical(initial, rag, thresh=threshold, rag_copy=False,
                                          in_place_merge=True, merge_func=merge,
                                          weight_func=weight)
    else:
        edge_map = filters.sobel(to_gray(image).astype(np.float64))
        rag = graph.rag_boundary(initial, edge_map)

        def weight_b(g, src, dst, n):
            default = {"weight": 0.0, "count": 0}
            count_src = g[src].get(n, default)["count"]
            count_dst = g[dst].get(n, default)["count"]
            weight_src = g[src].get(n, default)["weight"]
            weight_dst = g[dst].get(n, default)["weight"]
            count = count_src + count_dst
            return {"count": count,
                    "weight": (count_src * weight_src + count_dst * weight_dst) / max(count, 1)}

        labels = graph.merge_hierarchical(initial, rag, thresh=threshold, rag_copy=False,
                                          in_place_merge=True, merge_func=lambda g, s, d: None,
                                          weight_func=weight_b)
    labels = segmentation.relabel_sequential(np.asarray(labels) + 1)[0]
    return regions(labels, method="region_merging",
                   details={"superpixels": int(initial.max()), "regions": int(labels.max())})
