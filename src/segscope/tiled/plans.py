"""How each method is cut into tiles: what context it needs and what it needs from the whole image.

A plan is small and picklable: it travels to every worker. Six styles cover every method:

``histogram``
    Thresholds chosen from the whole image's histogram (``otsu``, ``li`` ...): one pass sums the
    tiles' histograms, the threshold is chosen once, a second pass applies it. Exact.
``local``
    Pixel-wise methods that look at a window (``adaptive_*``, ``niblack``, ``sauvola``): each tile
    is read with a halo at least as wide as the window's reach and cropped back. Exact.
``components``
    ``connected_components``: each tile's components are joined across tile seams (union-find),
    and ``min_size`` is applied to the joined sizes. Exact, up to the numbering.
``objects``
    Everything that makes regions or instances from a neighbourhood (watersheds, graph-based and
    region methods, instance models): each tile is read with the overlap as halo, and an object
    whose extent lies inside the padded tile is named after its first pixel in raster order, so the
    tiles that all see it whole give it the same name. Objects larger than the overlap are cut by
    the halo; their pieces are joined across seams by mutual best contact. Equal to the untiled
    result for objects smaller than the overlap; ``watershed_instances`` and the deep models use the
    whole image's threshold or weights, so their tiles agree.
``clusters``
    ``kmeans``: one pass draws each tile's share of the sample, the centres are fitted once, each
    tile assigns its pixels to the nearest centre. The same algorithm as untiled, on a sample
    drawn tile by tile, so classes agree across tiles.
``model``
    Semantic models (``.pt``/``.onnx``): overlapping windows, Gaussian-blended inside each padded
    tile. Instance models run as ``objects``.

Counts meant for the whole image (``n_segments`` of ``slic`` and ``region_merging``) are shared
out: each tile asks for its area's share, so segments keep the size they would have untiled.
"""

from __future__ import annotations

import copy
import importlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..api import MODEL_SUFFIXES
from ..registry import bind_parameters, get_method

__all__ = ["TilePlan", "make_plan"]

_threshold = importlib.import_module("segscope.classical.threshold")

_LOCAL_WINDOWS = {"adaptive_mean": "block_size", "adaptive_gaussian": "block_size",
                  "niblack": "window_size", "sauvola": "window_size"}
_PER_IMAGE_COUNTS = {"slic": "n_segments", "region_merging": "n_segments"}


@dataclass(frozen=True)
class TilePlan:
    """What a worker needs to segment one tile of a job."""

    method: str
    params: dict[str, Any]
    style: str  # histogram | local | components | objects | model
    kind: str  # semantic | regions | instance
    halo: int
    class_names: tuple[str, ...] = ()
    needs_histogram: bool = False
    needs_surface_range: bool = False
    needs_sample: bool = False
    connectivity: int = 1
    model_path: str | None = None

    @property
    def stitches(self) -> bool:
        return self.style in ("components", "objects")


def _required_halo(method: str, params: dict[str, Any]) -> int:
    """How far a local method looks from a pixel: the halo a tile needs for an exact core."""
    size = int(params[_LOCAL_WINDOWS[method]])
    if method == "adaptive_gaussian":
        sigma = (size - 1) / 6.0
        return int(4.0 * sigma + 0.5)  # scipy's gaussian_filter truncates at 4 sigma
    return size // 2


def make_plan(method: str | os.PathLike[str], params: dict[str, Any] | None, *, overlap: int) -> TilePlan:
    """The tiling plan for a registered method (with its options) or a model file."""
    params = dict(params or {})
    if is_model_file(method):
        path = Path(method)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such checkpoint or ONNX model")
        return model_plan(path, params, overlap=overlap, task=model_task(str(path)))
    name = str(method)
    info = get_method(name)
    bound = bind_parameters(info, params)
    if bound.get("channel_axis") not in (None, -1, 2):
        raise ValueError(f"tiled images are read channels-last; channel_axis={bound['channel_axis']} "
                         "is not supported (leave it out)")
    for key in ("markers", "mask", "seeds"):
        if bound.get(key) is not None:
            raise ValueError(f"{name}: {key} given as an array cannot be tiled; leave it out")
    if name in _threshold.HISTOGRAM_METHODS:
        return TilePlan(name, bound, "histogram", "semantic", 0, ("background", "foreground")
                        if name != "multi_otsu" else tuple(f"class {k}" for k in range(bound["classes"])),
                        needs_histogram=True)
    if name in _LOCAL_WINDOWS:
        need = _required_halo(name, bound)
        if overlap < need:
            raise ValueError(f"{name} with {_LOCAL_WINDOWS[name]}={bound[_LOCAL_WINDOWS[name]]} looks "
                             f"{need} pixels around each pixel: overlap must be at least {need} "
                             f"(got {overlap})")
        return TilePlan(name, bound, "local", "semantic", overlap, ("background", "foreground"))
    if name == "kmeans":
        if bound["connected"]:
            raise ValueError("kmeans with connected=True cannot be tiled yet: tile kmeans with "
                             "connected=False, then its classes' regions are one class each")
        return TilePlan(name, bound, "clusters", "semantic", 0,
                        tuple(f"cluster_{j}" for j in range(bound["k"])), needs_sample=True)
    if name == "connected_components":
        return TilePlan(name, bound, "components", "instance", 0, ("object",), needs_histogram=True,
                        connectivity=int(bound["connectivity"]))
    if info.task not in ("regions", "instance"):
        raise ValueError(f"{name} ({info.task}) has no tiling plan")
    # watershed's marker depth is a fraction of the whole image's gradient range.
    return TilePlan(name, bound, "objects", info.task, overlap,
                    ("object",) if info.task == "instance" else (),
                    needs_histogram=name == "watershed_instances",
                    needs_surface_range=name == "watershed" and bound["h"] > 0)


def is_model_file(method: str | os.PathLike[str]) -> bool:
    return isinstance(method, Path) or str(method).endswith(MODEL_SUFFIXES)


def model_plan(path: Path, params: dict[str, Any], *, overlap: int, task: tuple[str, tuple[str, ...]]
               ) -> TilePlan:
    """The plan for a model file, given its task and class names (see :func:`model_task`)."""
    kind, names = task
    if kind == "semantic":
        return TilePlan(str(path), params, "model", "semantic", overlap, names, model_path=str(path))
    # A panoptic model's first class is its stuff (background); Mask R-CNN's are all objects.
    things = names[1:] if kind == "panoptic" else names
    return TilePlan(str(path), params, "objects", "instance", overlap, things or ("object",),
                    model_path=str(path))


@lru_cache(maxsize=4)
def load_model(path: str) -> Any:
    """A checkpoint's segmenter, loaded once per process (each Dask worker keeps its own)."""
    try:
        from ..infer import segmenter_for
    except ImportError as exc:
        raise ImportError(f"{path}: running a model needs segscope[deep] (torch, torchvision): {exc}") \
            from exc
    segmenter = segmenter_for(path)
    if hasattr(segmenter, "batch_size"):
        # Tiles already bound the work per call; one window per forward pass bounds the memory.
        # A shallow copy shares the network and leaves segscope.segment's segmenter as it was.
        segmenter = copy.copy(segmenter)
        segmenter.batch_size = 1
    return segmenter


def model_task(path_text: str) -> tuple[str, tuple[str, ...]]:
    """A model file's task and class names. Tiled jobs ask a worker, so that the process that
    schedules the tiles never loads torch."""
    path = Path(path_text)
    if path.suffix == ".onnx":
        return "semantic", tuple(load_model(str(path)).class_names)  # ONNX exports are semantic
    try:
        from ..train.checkpoint import load_checkpoint
    except ImportError as exc:
        raise ImportError(f"{path}: running a model needs segscope[deep] (torch, torchvision): {exc}") \
            from exc
    data = load_checkpoint(path)
    return str(data.get("task", "semantic")), tuple(data["class_names"])


# ------------------------------------------------------------------------- global statistics
def tile_statistics(plan: TilePlan, pixels: np.ndarray, low_high: tuple[float, float] | None
                    ) -> dict[str, Any]:
    """One tile's share of the whole image's statistics (range, histogram, sum).

    With ``low_high`` None this is the first pass: range, and for integer images the histogram
    too, over the tile's own range. Float images need a second pass with the global range.
    """
    gray = _threshold.gray_for_threshold(pixels, channel_axis=_channel_axis(pixels))
    nbins = int(plan.params.get("nbins", 256))
    if low_high is None:
        low, high = _threshold.value_range(gray)
        stats: dict[str, Any] = {"low": low, "high": high, "dtype": gray.dtype.str,
                                 "total": float(gray.sum(dtype=np.float64)), "pixels": int(gray.size),
                                 "two_values": _two_values(gray, low, high),
                                 "channels": 1 if pixels.ndim == 2 else int(pixels.shape[-1])}
        if gray.dtype.kind in "iub":
            stats["counts"] = _threshold.value_histogram(gray, low, high)
        return stats
    return {"counts": _threshold.value_histogram(gray, low_high[0], low_high[1], nbins=nbins)}


def _two_values(gray: np.ndarray, low: float, high: float) -> list[float] | None:
    """The tile's values if it has at most two (a mask), else None."""
    if np.count_nonzero((gray != low) & (gray != high)):
        return None
    return sorted({float(low), float(high)})


def merge_first_pass(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Range, pixel sum and (integer images) histogram of the whole image from its tiles."""
    low = min(p["low"] for p in parts)
    high = max(p["high"] for p in parts)
    merged: dict[str, Any] = {"low": low, "high": high, "dtype": parts[0]["dtype"],
                              "channels": parts[0]["channels"],
                              "total": float(sum(p["total"] for p in parts)),
                              "pixels": sum(p["pixels"] for p in parts)}
    values: set[float] | None = set()
    for p in parts:
        if p["two_values"] is None or values is None:
            values = None
            break
        values.update(p["two_values"])
    merged["two_values"] = sorted(values) if values is not None and len(values) <= 2 else None
    if "counts" in parts[0]:
        counts = np.zeros(int(high - low) + 1, np.int64)
        for p in parts:
            start = int(p["low"] - low)
            counts[start:start + len(p["counts"])] += p["counts"]
        merged["counts"] = counts
    return merged


def is_mask(plan: TilePlan, stats: dict[str, Any]) -> bool:
    """Whether connected_components reads this image as a mask (grey, two values at most), and so
    needs no threshold."""
    return plan.style == "components" and stats["channels"] == 1 and stats["two_values"] is not None


def choose_state(plan: TilePlan, stats: dict[str, Any]) -> dict[str, Any]:
    """What every tile must share, chosen once from the whole image's statistics."""
    dtype = np.dtype(stats["dtype"])
    if is_mask(plan, stats):
        return {"foreground": "nonzero"}  # a mask already, as connected_components reads it
    method = plan.method if plan.style == "histogram" else "otsu"
    params = plan.params if plan.style == "histogram" else {}
    thresholds = _threshold.threshold_from_histogram(
        method, stats["counts"], dtype=dtype, low=stats["low"], high=stats["high"], total=stats["total"],
        params=params)
    state: dict[str, Any] = {"thresholds": thresholds, "foreground": "above"}
    if plan.method == "watershed_instances":
        choice = plan.params["foreground"]
        if choice == "auto":
            # as the method: objects are the smaller side of the threshold
            above = _count_above(stats, thresholds[0])
            choice = "dark" if above / stats["pixels"] > 0.5 else "bright"
        state["foreground"] = "below" if choice == "dark" else "above"
        state["side"] = choice
    return state


def _count_above(stats: dict[str, Any], value: float) -> int:
    if "above" in stats:  # float images: counted in a pass of their own
        return int(stats["above"])
    centers = np.arange(int(stats["low"]), int(stats["high"]) + 1)
    return int(stats["counts"][centers > value].sum())


def surface_range(plan: TilePlan, pixels: np.ndarray, core: tuple[slice, slice]) -> tuple[float, float]:
    """Minimum and maximum of watershed's gradient surface over a tile's core (read padded)."""
    from ..classical.watershed import gradient_surface

    surface = gradient_surface(pixels, smoothing=plan.params["smoothing"])[core]
    return float(surface.min()), float(surface.max())


def sample_pixels(plan: TilePlan, pixels: np.ndarray, *, origin: tuple[int, int], index: int,
                  total: int) -> dict[str, Any]:
    """A tile's share of the k-means sample: values and global (row, col), and its value range."""
    data = np.asarray(pixels, np.float32)
    values = data.reshape(-1, 1 if data.ndim == 2 else data.shape[-1])
    share = min(len(values), -(-plan.params["sample_size"] * len(values) // total))  # ceiling
    rng = np.random.default_rng([plan.params["seed"], index])
    chosen = rng.choice(len(values), share, replace=False)
    rows, cols = np.divmod(chosen, data.shape[1])
    return {"values": values[chosen], "rows": rows + origin[0], "cols": cols + origin[1],
            "low": float(values.min()), "high": float(values.max())}


def fit_clusters(plan: TilePlan, parts: list[dict[str, Any]], *, height: int, width: int) -> dict[str, Any]:
    """k-means centres from the tiles' samples, as the method fits them on its own sample."""
    from ..classical.clustering import fit_centres

    params = plan.params
    values = np.concatenate([p["values"] for p in parts])
    scale = 0.0
    if params["spatial_weight"] > 0:
        span = (max(p["high"] for p in parts) - min(p["low"] for p in parts)) or 1.0
        scale = params["spatial_weight"] * span / max(height, width)
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


def count_above(plan: TilePlan, pixels: np.ndarray, value: float) -> int:
    """Pixels of a tile above ``value`` (for watershed_instances' side choice on float images)."""
    gray = _threshold.gray_for_threshold(pixels, channel_axis=_channel_axis(pixels))
    return int(np.count_nonzero(gray > value))


# --------------------------------------------------------------------------------- one tile
def _channel_axis(pixels: np.ndarray) -> int | None:
    return -1 if pixels.ndim == 3 else None


def segment_tile(plan: TilePlan, pixels: np.ndarray, state: dict[str, Any], *,
                 origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The labels (or class map) of a padded tile, as the whole image's method would give them.

    ``origin`` is the tile's (row, col) in the whole image.
    """
    axis = _channel_axis(pixels)
    if plan.style == "clusters":
        from ..classical.clustering import nearest_centre, pixel_features

        features = pixel_features(pixels, scale=state["scale"], origin=origin)
        return nearest_centre(features, np.asarray(state["centres"], np.float32)).reshape(pixels.shape[:2])
    if plan.style == "histogram":
        gray = _threshold.gray_for_threshold(pixels, channel_axis=axis)
        return _threshold.apply_thresholds(plan.method, gray, state["thresholds"]).class_map()
    if plan.style == "components":
        import cv2

        # min_size waits for the joined sizes; here every piece is kept.
        _, labels = cv2.connectedComponents(_foreground(pixels, state).astype(np.uint8),
                                            connectivity=4 if plan.connectivity == 1 else 8,
                                            ltype=cv2.CV_32S)
        return labels
    if plan.method == "watershed_instances":
        from ..classical.watershed import split_foreground

        labels, _ = split_foreground(_foreground(pixels, state), h=plan.params["h"],
                                     smoothing=plan.params["smoothing"], min_size=plan.params["min_size"])
        return labels
    if plan.needs_surface_range and pixels.dtype != bool:
        from skimage.segmentation import watershed

        from ..classical.watershed import gradient_surface, minima_markers

        surface = gradient_surface(pixels, smoothing=plan.params["smoothing"])
        depth = plan.params["h"] * (state["surface_high"] - state["surface_low"])
        return watershed(surface, minima_markers(surface, depth), compactness=plan.params["compactness"])
    if plan.model_path is not None:
        seg = load_model(plan.model_path).segment(pixels, **plan.params)
        return seg.class_map() if plan.kind == "semantic" else np.asarray(seg.labels)
    params = {k: v for k, v in plan.params.items() if k != "channel_axis"}
    if plan.method in _PER_IMAGE_COUNTS:
        key = _PER_IMAGE_COUNTS[plan.method]
        share = pixels.shape[0] * pixels.shape[1] / state["image_pixels"]
        params[key] = max(1, round(params[key] * share))
    seg = get_method(plan.method).function(pixels, channel_axis=axis, **params)
    return seg.class_map() if plan.kind == "semantic" else np.asarray(seg.labels)


def _foreground(pixels: np.ndarray, state: dict[str, Any]) -> np.ndarray:
    if state["foreground"] == "nonzero":
        gray = pixels if pixels.ndim == 2 else pixels.any(axis=-1)
        return np.asarray(gray != 0)
    gray = _threshold.gray_for_threshold(pixels, channel_axis=_channel_axis(pixels))
    above = _threshold.apply_thresholds("otsu", gray, state["thresholds"]).class_map() == 1
    return above if state["foreground"] == "above" else ~above
