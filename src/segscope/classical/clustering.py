"""Clustering: k-means, SLIC superpixels, mean shift; and connected components of a mask."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..imagecheck import as_plane, check_image, check_image_or_volume
from ..registry import register_method
from ..result import Provenance, Segmentation
from ..tiling import Clusters, Components, FromHistogram, GreyHistogram, Objects, grey
from ._common import absorb_small, check_parameter, regions, semantic_from_classes

__all__ = ["connected_components", "kmeans", "mean_shift", "slic"]


def _sample_tile(pixels: np.ndarray, params: Mapping[str, Any], origin: tuple[int, int], index: int,
                 total: int) -> dict[str, Any]:
    """A tile's share of the k-means sample: values and whole-image (row, col), and its value range."""
    data = np.asarray(pixels, np.float32)
    values = data.reshape(-1, 1 if data.ndim == 2 else data.shape[-1])
    share = min(len(values), -(-params["sample_size"] * len(values) // total))  # ceiling
    rng = np.random.default_rng([params["seed"], index])
    chosen = rng.choice(len(values), share, replace=False)
    rows, cols = np.divmod(chosen, data.shape[1])
    return {"values": values[chosen], "rows": rows + origin[0], "cols": cols + origin[1],
            "low": float(values.min()), "high": float(values.max())}


def _fit_samples(parts: list[dict[str, Any]], params: Mapping[str, Any], shape: tuple[int, int]
                 ) -> dict[str, Any]:
    """Centres from the tiles' samples, fitted as :func:`kmeans` fits them on its own sample."""
    values = np.concatenate([p["values"] for p in parts])
    scale = 0.0
    if params["spatial_weight"] > 0:
        span = (max(p["high"] for p in parts) - min(p["low"] for p in parts)) or 1.0
        scale = params["spatial_weight"] * span / max(shape)
    features = values
    if scale > 0:
        rows = np.concatenate([p["rows"] for p in parts]).astype(np.float32)
        cols = np.concatenate([p["cols"] for p in parts]).astype(np.float32)
        features = np.hstack([values, (rows * scale)[:, None], (cols * scale)[:, None]])
    if len(features) > params["sample_size"]:
        rng = np.random.default_rng(params["seed"])
        features = features[rng.choice(len(features), params["sample_size"], replace=False)]
    distinct = len(np.unique(features, axis=0))
    if distinct < params["k"]:
        raise ValueError(f"the image has {distinct} distinct pixel values, fewer than k={params['k']}")
    centres = fit_centres(features, params["k"], seed=params["seed"], bands=values.shape[1])
    return {"centres": centres.tolist(), "scale": scale,
            "cluster_values": centres[:, :values.shape[1]].tolist()}


def _assign_tile(pixels: np.ndarray, state: Mapping[str, Any], params: Mapping[str, Any],
                 origin: tuple[int, int]) -> np.ndarray:
    features = pixel_features(pixels, scale=state["scale"], origin=origin)
    return nearest_centre(features, np.asarray(state["centres"], np.float32)).reshape(pixels.shape[:2])


def _cluster_names(params: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(f"cluster_{j}" for j in range(int(params["k"])))


def _refuse_connected(params: Mapping[str, Any]) -> str | None:
    if params.get("connected"):
        return ("kmeans with connected=True cannot be tiled yet: tile kmeans with connected=False, "
                "then its classes' regions are one class each")
    return None


@register_method("kmeans", task="semantic", tiling=Clusters(
    sample=_sample_tile, fit=_fit_samples, assign=_assign_tile, class_names=_cluster_names,
    refuse=_refuse_connected))
def kmeans(
    image: np.ndarray,
    *,
    k: int = 3,
    spatial_weight: float = 0.0,
    sample_size: int = 20000,
    connected: bool = False,
    seed: int = 0,
    channel_axis: int | None = None,
    spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """k-means clustering of pixel values (optionally with their positions).

    Centres are fitted with OpenCV's k-means++ on a random sample of pixels (all of them when the
    image is smaller), then every pixel goes to its nearest centre. Classes are numbered by
    increasing centre brightness, so results are stable across seeds.

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image.
    k : int
        Number of clusters.
    spatial_weight : float
        Weight of (row, col) in the features, relative to the value range per pixel of image
        extent; 0 clusters on values alone.
    sample_size : int
        Pixels used to fit the centres.
    connected : bool
        Return the connected regions of each cluster (a regions result) instead of k classes.
    seed : int
        Random seed of the sample and of k-means++.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume, and
        positions (with ``spatial_weight``) are physical.

    References
    ----------
    .. [1] S. Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2), 129-137,
       1982.
    .. [2] D. Arthur and S. Vassilvitskii, "k-means++: the advantages of careful seeding",
       SODA 2007.

    Examples
    --------
    >>> image = np.array([[0, 0, 100, 100, 250, 250]], np.uint8)
    >>> kmeans(image, k=3).class_map().tolist()
    [[0, 0, 1, 1, 2, 2]]
    """
    image, spacing = check_image_or_volume(image, channel_axis=channel_axis, spacing=spacing)
    shape = image.shape[:2] if spacing is None else image.shape[:3]
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if sample_size < k:
        raise ValueError(f"sample_size must be at least k={k}, got {sample_size}")
    check_parameter("kmeans", "spatial_weight", spatial_weight, low=0, high=1e6)
    data = image.astype(np.float32)
    scale = 0.0
    if spatial_weight > 0:
        span = float(data.max() - data.min()) or 1.0
        extent = shape if spacing is None else tuple(n * side for n, side in zip(shape, spacing, strict=True))
        scale = spatial_weight * span / max(extent)
    features = pixel_features(data, scale=scale) if spacing is None else \
        _voxel_features(data, scale=scale, spacing=spacing)
    unique_count = len(np.unique(features[: min(len(features), 100000)], axis=0))
    if unique_count < k:
        raise ValueError(f"the image has {unique_count} distinct pixel values, fewer than k={k}")
    rng = np.random.default_rng(seed)
    sample = features if len(features) <= sample_size else \
        features[rng.choice(len(features), sample_size, replace=False)]
    bands = 1 if data.ndim == len(shape) else data.shape[-1]
    centres = fit_centres(sample, k, seed=seed, bands=bands)
    class_map = nearest_centre(features, centres).reshape(shape)
    details = {"centres": centres[:, :bands].tolist()}
    if connected:
        from skimage.measure import label

        return regions(label(class_map + 1, background=0, connectivity=1), method="kmeans",
                       details=details, spacing=spacing)
    return semantic_from_classes(class_map, num_classes=k, method="kmeans", details=details,
                                 class_names=_cluster_names({"k": k}), spacing=spacing)


def _voxel_features(data: np.ndarray, *, scale: float, spacing: tuple[float, ...]) -> np.ndarray:
    """(N, F) float32 features of a volume's voxels: their values, then, when ``scale`` > 0, their
    physical (z, y, x) times ``scale``."""
    shape = data.shape[:3]
    features = data.reshape(-1, 1 if data.ndim == 3 else data.shape[-1]).astype(np.float32)
    if scale > 0:
        grid = np.indices(shape, dtype=np.float32).reshape(3, -1).T
        grid *= np.asarray(spacing, np.float32) * scale
        features = np.hstack([features, grid])
    return np.ascontiguousarray(features)


def pixel_features(data: np.ndarray, *, scale: float, origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """(N, F) float32 features of an image's pixels: their values, then, when ``scale`` > 0, their
    (row, col) times ``scale``, counted from ``origin`` (a tile's place in the whole image)."""
    data = np.asarray(data, np.float32)
    features = data.reshape(-1, 1 if data.ndim == 2 else data.shape[-1])
    if scale > 0:
        height, width = data.shape[:2]
        rows, cols = np.mgrid[origin[0]:origin[0] + height, origin[1]:origin[1] + width].astype(np.float32)
        features = np.hstack([features, (rows.ravel() * scale)[:, None], (cols.ravel() * scale)[:, None]])
    return np.ascontiguousarray(features)


def fit_centres(sample: np.ndarray, k: int, *, seed: int, bands: int) -> np.ndarray:
    """k-means++ centres of a (N, F) float32 sample, ordered by the brightness of their values
    (the first ``bands`` features), so that class numbers are stable."""
    import cv2

    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 100, 1e-4)
    _, _, centres = cv2.kmeans(np.ascontiguousarray(sample, np.float32), k, None, criteria, 3,
                               cv2.KMEANS_PP_CENTERS)  # type: ignore[call-overload]
    return centres[np.argsort(centres[:, :bands].mean(axis=1), kind="stable")]


def nearest_centre(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (squared Euclidean distance) of each (N, F) feature row."""
    distances = np.zeros((len(features), len(centres)), np.float32)
    for j, centre in enumerate(centres):
        distances[:, j] = ((features - centre) ** 2).sum(axis=1)
    return distances.argmin(axis=1)


@register_method("slic", task="regions", tiling=Objects(per_image_counts=("n_segments",)))
def slic(
    image: np.ndarray,
    *,
    n_segments: int = 4,
    compactness: float = 10.0,
    sigma: float = 1.0,
    channel_axis: int | None = None,
    spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """SLIC superpixels: k-means in combined colour (CIELAB for RGB) and image-plane space.

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image.
    n_segments : int
        Approximate number of superpixels. The default, 4, is the setting whose regions best cover
        the human segmentations of BSDS500 train (``benchmarks/bsds_tuning.py``); as a
        pre-processing step (superpixels proper) ask for hundreds, for example 400.
    compactness : float
        Balance of colour against space, 0.001 to 1e6; higher gives squarer superpixels.
    sigma : float
        Gaussian smoothing before clustering.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume, and
        supervoxels are compact in physical units (scikit-image's ``spacing``).

    References
    ----------
    .. [1] R. Achanta et al., "SLIC superpixels compared to state-of-the-art superpixel methods",
       IEEE TPAMI 34(11), 2274-2282, 2012.

    Examples
    --------
    >>> image = np.zeros((40, 40, 3), np.uint8); image[:, 20:] = 200
    >>> 2 <= len(slic(image, n_segments=4)) <= 8
    True
    """
    from skimage import segmentation

    image, spacing = check_image_or_volume(image, channel_axis=channel_axis, spacing=spacing)
    spatial = 2 if spacing is None else 3
    if n_segments < 1:
        raise ValueError(f"n_segments must be at least 1, got {n_segments}")
    # scikit-image weighs space by (step / compactness)**2: a compactness near 0 overflows it, and
    # its Cython loop then writes out of bounds (found by hypothesis: heap corruption at 5e-278).
    check_parameter("slic", "compactness", compactness, low=1e-3, high=1e6)
    check_parameter("slic", "sigma", sigma, low=0, high=max(image.shape[:spatial]))
    data = image.astype(np.uint8) if image.dtype == bool else image
    if data.ndim == spatial:
        # scikit-image's compactness assumes values in [0, 1] for grey input.
        compactness_used = compactness / 100.0
    else:
        compactness_used = compactness
    labels = segmentation.slic(data, n_segments=n_segments, compactness=compactness_used,
                               sigma=sigma, start_label=1,
                               spacing=None if spacing is None else np.asarray(spacing),
                               channel_axis=-1 if data.ndim > spatial else None)
    return regions(labels, method="slic", details={"superpixels": int(labels.max())}, spacing=spacing)


@register_method("mean_shift", task="regions", tiling=Objects())
def mean_shift(
    image: np.ndarray,
    *,
    spatial_radius: float = 12.0,
    color_radius: float = 30.0,
    min_size: int = 1000,
    channel_axis: int | None = None,
) -> Segmentation:
    """Mean-shift segmentation: pixels move to the mode of their joint space-colour density.

    OpenCV's pyramid mean-shift filtering moves each pixel to the colour of its mode. Neighbouring
    pixels whose filtered colours lie within half of ``color_radius`` join one region (modes that
    close are one mode, as in Comaniciu and Meer's grouping step), and regions under ``min_size``
    pixels join their most similar neighbour. Needs 8-bit input (grey or RGB).

    Parameters
    ----------
    image : ndarray
        uint8 grey or RGB image.
    spatial_radius : float
        Spatial window radius, in pixels.
    color_radius : float
        Colour window radius, in 8-bit units.
    min_size : int
        Smallest region, in pixels.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] D. Comaniciu and P. Meer, "Mean shift: a robust approach toward feature space
       analysis", IEEE TPAMI 24(5), 603-619, 2002.

    Examples
    --------
    >>> image = np.zeros((30, 30, 3), np.uint8); image[:, 15:] = 200
    >>> len(mean_shift(image, min_size=100))
    2
    """
    import cv2

    image = check_image(image, channel_axis=channel_axis)
    if image.dtype != np.uint8:
        raise TypeError(f"mean_shift needs uint8 input, got {image.dtype}; convert explicitly "
                        "(for example skimage.util.img_as_ubyte)")
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    rgb = np.ascontiguousarray(rgb[..., :3])
    filtered = cv2.pyrMeanShiftFiltering(rgb, spatial_radius, color_radius)
    labels = _group_close_colours(filtered.astype(np.float64), color_radius / 2)
    if min_size > 1:
        labels = absorb_small(labels, filtered.astype(np.float64), min_size)  # sequential labels
    return regions(labels, method="mean_shift")


def _group_close_colours(colours: np.ndarray, tolerance: float) -> np.ndarray:
    """Label the 4-connected groups of pixels linked by colour steps of at most ``tolerance``."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components as graph_components

    height, width = colours.shape[:2]
    index = np.arange(height * width).reshape(height, width)
    close_h = np.linalg.norm(colours[:, 1:] - colours[:, :-1], axis=-1) <= tolerance
    close_v = np.linalg.norm(colours[1:] - colours[:-1], axis=-1) <= tolerance
    rows = np.concatenate([index[:, :-1][close_h], index[:-1][close_v]])
    cols = np.concatenate([index[:, 1:][close_h], index[1:][close_v]])
    graph = sparse.coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(index.size, index.size))
    _, component = graph_components(graph, directed=False)
    return component.reshape(height, width).astype(np.int32) + 1


def _whole_image_foreground(hist: GreyHistogram, params: Mapping[str, Any], channels: int,
                            values: tuple[float, ...] | None) -> dict[str, Any]:
    """What ``foreground="auto"`` means for the whole image: a grey mask as it is, else Otsu."""
    from .threshold import otsu_rule

    if params["foreground"] != "auto":
        return {}
    if channels == 1 and values is not None:
        return {"foreground": "nonzero"}
    return {"foreground": otsu_rule(hist, {})[0]}


@register_method("connected_components", task="instance", tiling=Components(
    shared=(FromHistogram(decide=_whole_image_foreground),),
    diagonal=lambda params: params["connectivity"] == 2))
def connected_components(
    image: np.ndarray, *, connectivity: int = 2, min_size: int = 0, foreground: str | float = "auto",
    channel_axis: int | None = None, spacing: tuple[float, float, float] | None = None,
) -> Segmentation:
    """Each connected component of a foreground mask becomes one instance.

    Parameters
    ----------
    image : ndarray
        A mask (bool, or numbers with at most two values, non-zero being foreground), or any grey
        or colour image, whose foreground is then found with Otsu's threshold on its luma.
    connectivity : int
        Neighbours that join: 1 for 4-connectivity, 2 for 8-connectivity (scikit-image's
        convention); in a volume 1, 2 or 3 for 6-, 18- or 26-connectivity.
    foreground : "auto", "nonzero" or float
        ``auto``: a grey image with at most two values is a mask (non-zero is foreground), any
        other image is split at Otsu's threshold of its luma. ``nonzero``: non-zero luma. A
        number: luma above it.
    min_size : int
        Components with fewer pixels (voxels) are dropped.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.
    spacing : tuple of float or None
        Voxel size (z, y, x): given, ``image`` is a (Z, Y, X) or (Z, Y, X, C) volume.

    Examples
    --------
    >>> mask = np.array([[1, 0, 1], [1, 0, 0]], bool)
    >>> len(connected_components(mask))
    2
    """
    import cv2

    image, spacing = check_image_or_volume(image, channel_axis=channel_axis, spacing=spacing)
    spatial = 2 if spacing is None else 3
    if connectivity not in range(1, spatial + 1):
        raise ValueError(f"connectivity must be 1 to {spatial} in {spatial}-D, got {connectivity}")
    if isinstance(foreground, str) and foreground not in ("auto", "nonzero"):
        raise ValueError(f"foreground must be 'auto', 'nonzero' or a number, got {foreground!r}")
    if image.dtype == bool and image.ndim == spatial and foreground in ("auto", "nonzero"):
        mask = np.ascontiguousarray(image).view(np.uint8)  # 0/1 already: no copy
    elif foreground == "nonzero" or (foreground == "auto" and image.ndim == spatial
                                     and _at_most_two_values(image)):
        mask = (grey(image, spacing=spacing) != 0).astype(np.uint8)
    else:
        from .threshold import _binary_map, otsu

        if foreground == "auto":
            mask = (otsu(image, spacing=spacing).class_map() == 1).astype(np.uint8)
        else:
            mask = _binary_map(grey(image, spacing=spacing), [float(foreground)]).astype(np.uint8)
    if spacing is None:
        count, labels = cv2.connectedComponents(mask, connectivity=4 if connectivity == 1 else 8,
                                                ltype=cv2.CV_32S)
    else:
        from scipy import ndimage

        labels, found = ndimage.label(mask, structure=ndimage.generate_binary_structure(3, connectivity),
                                      output=np.int32)
        count = int(found) + 1
    if min_size > 0 and count > 1:
        sizes = np.bincount(labels.ravel())
        keep = sizes >= min_size
        keep[0] = False
        lut = np.zeros(count, np.int32)
        lut[keep] = np.arange(1, int(keep.sum()) + 1)
        labels = lut[labels]
        count = int(keep.sum()) + 1
    # OpenCV numbers components 1..count-1 with no gaps, so the ids are known without a scan.
    ids = np.arange(1, count, dtype=np.int32)
    return Segmentation.from_known_ids(
        labels, "instance", ids=ids, categories=np.zeros(len(ids), np.int32), class_names=("object",),
        provenance=Provenance("connected_components"), spacing=spacing,
    )


def _at_most_two_values(image: np.ndarray) -> bool:
    """Whether a grey image is a mask (two values at most); a histogram for 8-bit, else a sort."""
    if image.dtype == np.uint8:
        import cv2

        counts = cv2.calcHist([as_plane(image)], [0], None, [256], [0, 256])
        return int(np.count_nonzero(counts)) <= 2
    return np.unique(image[:4096]).size <= 2 and np.unique(image).size <= 2
