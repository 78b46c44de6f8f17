"""A job's plan: a method's declared tiling (:mod:`segscope.tiling`) turned into work per tile.

A plan is small and picklable: it travels to every worker. The engine knows the strategies of
:mod:`segscope.tiling`, never a method by name:

* :class:`~segscope.tiling.HistogramThreshold`: one pass sums the tiles' histograms, the method's
  own rule chooses the thresholds once, every tile applies them. Exact.
* :class:`~segscope.tiling.LocalWindow`: tiles read with at least the window's reach. Exact.
* :class:`~segscope.tiling.Components`: pieces joined across seams, sizes filtered once joined.
* :class:`~segscope.tiling.Objects`: tiles read with the overlap, objects named by their first
  pixel and joined across seams; shared parameters decided once for the whole image.
* :class:`~segscope.tiling.Clusters`: one sample drawn tile by tile, one fit.
* Trained models: semantic models blend their windows inside each padded tile (halo: the
  overlap); instance models are objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import MethodInfo, bind_parameters, get_method
from ..tiling import (
    Clusters,
    Components,
    FromHistogram,
    FromTiles,
    GreyHistogram,
    HistogramThreshold,
    LocalWindow,
    Objects,
    Tiling,
    grey,
    grey_histogram,
    value_range,
)

__all__ = ["ModelWindows", "TilePlan", "make_plan"]


@dataclass(frozen=True)
class ModelWindows(Tiling):
    """A semantic model's Gaussian-blended windows, run inside each padded tile."""


@dataclass(frozen=True)
class TilePlan:
    """What a worker needs to segment one tile of a job."""

    method: str
    params: dict[str, Any]
    tiling: Tiling
    kind: str  # semantic | regions | instance
    halo: int
    class_names: tuple[str, ...] = ()
    model_path: str | None = None
    accepts_channel_axis: bool = field(default=False)

    @property
    def stitches(self) -> bool:
        """Whether tiles give objects, to be named, joined across seams and numbered."""
        return isinstance(self.tiling, Objects)

    @property
    def joins_by_touch(self) -> bool:
        return isinstance(self.tiling, Components)

    @property
    def diagonal(self) -> bool:
        return isinstance(self.tiling, Components) and self.tiling.diagonal(self.params)

    @property
    def min_size(self) -> int:
        """The size under which joined objects are dropped (components only)."""
        return int(self.params[self.tiling.min_size]) if isinstance(self.tiling, Components) else 0

    @property
    def needs_histogram(self) -> bool:
        return isinstance(self.tiling, HistogramThreshold) or any(
            isinstance(s, FromHistogram) for s in self._shared)

    @property
    def histogram_bins(self) -> int:
        if isinstance(self.tiling, HistogramThreshold):
            return self.tiling.nbins(self.params)
        return next(s.nbins(self.params) for s in self._shared if isinstance(s, FromHistogram))

    @property
    def tile_measures(self) -> tuple[FromTiles, ...]:
        return tuple(s for s in self._shared if isinstance(s, FromTiles))

    @property
    def _shared(self) -> tuple[Any, ...]:
        return self.tiling.shared if isinstance(self.tiling, Objects) else ()


def make_plan(info: MethodInfo, params: dict[str, Any] | None, *, overlap: int) -> TilePlan:
    """The tiling plan for a registered method (with its options), from its declaration."""
    name = info.name
    bound = bind_parameters(info, dict(params or {}))
    if bound.get("channel_axis") not in (None, -1, 2):
        raise ValueError(f"tiled images are read channels-last; channel_axis={bound['channel_axis']} "
                         "is not supported (leave it out)")
    for p in info.parameters:
        if "ndarray" in p.annotation and bound[p.name] is not None:
            raise ValueError(f"{name}: {p.name} given as an array cannot be tiled; leave it out")
    tiling = info.tiling
    if tiling is None:
        raise ValueError(f"{name} declares no tiling, so it cannot run tile by tile (a method declares "
                         "one with register_method(..., tiling=...), see segscope.tiling)")
    reason = tiling.refuse(bound)
    if reason:
        raise ValueError(f"{name}: {reason}")
    takes_axis = any(p.name == "channel_axis" for p in info.parameters)
    if isinstance(tiling, HistogramThreshold | Clusters):
        return TilePlan(name, bound, tiling, "semantic", 0, tiling.class_names(bound))
    if isinstance(tiling, LocalWindow):
        need = tiling.reach(bound)
        if overlap < need:
            raise ValueError(f"{name} with {tiling.parameter}={bound[tiling.parameter]} looks {need} pixels "
                             f"around each pixel: overlap must be at least {need} (got {overlap})")
        return TilePlan(name, bound, tiling, "semantic", overlap, tiling.class_names(bound),
                        accepts_channel_axis=takes_axis)
    if not isinstance(tiling, Objects) or info.task not in ("regions", "instance"):
        raise ValueError(f"{name} ({info.task}) declares {type(tiling).__name__}, which the tiled engine "
                         "runs for regions and instance methods only")
    names = ("object",) if info.task == "instance" else ()
    halo = 0 if isinstance(tiling, Components) else overlap
    return TilePlan(name, bound, tiling, info.task, halo, names, accepts_channel_axis=takes_axis)


def model_plan(path: Path, params: dict[str, Any], *, overlap: int, task: tuple[str, tuple[str, ...]]
               ) -> TilePlan:
    """The plan for a model file, given its task and class names (see :func:`model_task`)."""
    kind, names = task
    if kind == "semantic":
        return TilePlan(str(path), params, ModelWindows(), "semantic", overlap, names, model_path=str(path))
    # A panoptic model's first class is its stuff (background); Mask R-CNN's are all objects.
    things = names[1:] if kind == "panoptic" else names
    return TilePlan(str(path), params, Objects(), "instance", overlap, things or ("object",),
                    model_path=str(path))


@lru_cache(maxsize=4)
def load_model(path: str) -> Any:
    """A model file's predictor, loaded once per process (each Dask worker keeps its own)."""
    try:
        from ..infer import predictor_for
    except ImportError as exc:
        raise ImportError(f"{path}: running a model needs segscope[deep] (torch, torchvision): {exc}") \
            from exc
    return predictor_for(path).for_tiles()


def model_task(path_text: str) -> tuple[str, tuple[str, ...]]:
    """A model file's task and class names. Tiled jobs ask a worker, so that the process that
    schedules the tiles never loads torch."""
    predictor = load_model(path_text)
    return str(predictor.task), tuple(predictor.class_names)


# ------------------------------------------------------------------------- global statistics
@dataclass(frozen=True)
class TileStatistics:
    """One tile's share of the whole image's grey statistics (first pass)."""

    low: float
    high: float
    dtype: str
    channels: int
    values: tuple[float, ...] | None
    """The tile's distinct grey values when it has at most two (a mask), else None."""
    histogram: GreyHistogram | None
    """Integer images: the histogram over the tile's own range; floats wait for the whole range."""


def tile_statistics(plan: TilePlan, pixels: np.ndarray) -> TileStatistics:
    gray = grey(pixels)
    low, high = value_range(gray)
    values: tuple[float, ...] | None = None
    if not np.count_nonzero((gray != low) & (gray != high)):
        values = tuple(sorted({low, high}))
    histogram = grey_histogram(gray, span=(low, high)) if gray.dtype.kind in "iub" else None
    return TileStatistics(low, high, gray.dtype.str, 1 if pixels.ndim == 2 else int(pixels.shape[-1]),
                          values, histogram)


def tile_histogram(plan: TilePlan, pixels: np.ndarray, span: tuple[float, float]) -> GreyHistogram:
    """A float tile's histogram in the whole image's bins (second pass)."""
    return grey_histogram(grey(pixels), span=span, nbins=plan.histogram_bins)


def merge_statistics(parts: list[TileStatistics]) -> TileStatistics:
    """The whole image's statistics from its tiles' (the histogram is None for float images)."""
    values: set[float] | None = set()
    for p in parts:
        if p.values is None or values is None:
            values = None
            break
        values.update(p.values)
    histogram = None
    if parts[0].histogram is not None:
        histogram = parts[0].histogram
        for p in parts[1:]:
            histogram = histogram + p.histogram  # type: ignore[operator]
    return TileStatistics(min(p.low for p in parts), max(p.high for p in parts), parts[0].dtype,
                          parts[0].channels, tuple(sorted(values)) if values is not None and len(values) <= 2
                          else None, histogram)


def decide_from_histogram(plan: TilePlan, stats: TileStatistics, histogram: GreyHistogram
                          ) -> dict[str, Any]:
    """What every tile shares, chosen once from the whole image's histogram."""
    if isinstance(plan.tiling, HistogramThreshold):
        if not plan.tiling.floats and not histogram.integer:
            raise ValueError(f"{plan.method} needs every pixel of a float image, not its histogram: "
                             "tile an integer image, or use a method whose rule reads the histogram")
        return {"thresholds": [float(t) for t in plan.tiling.choose(histogram, plan.params)]}
    decided: dict[str, Any] = {}
    for shared in plan._shared:
        if isinstance(shared, FromHistogram):
            decided.update(shared.decide(histogram, {**plan.params, **decided}, stats.channels, stats.values))
    return {"params": decided}


def measure_tile(plan: TilePlan, pixels: np.ndarray, core: tuple[slice, slice]) -> list[Any]:
    """Each declared :class:`~segscope.tiling.FromTiles` measure of one padded tile."""
    return [m.measure(pixels, core, plan.params) for m in plan.tile_measures]


def combine_measures(plan: TilePlan, measures: list[list[Any]]) -> dict[str, Any]:
    decided: dict[str, Any] = {}
    for k, m in enumerate(plan.tile_measures):
        decided.update(m.combine([tile[k] for tile in measures], plan.params))
    return decided


def sample_tile(plan: TilePlan, pixels: np.ndarray, *, origin: tuple[int, int], index: int, total: int
                ) -> dict[str, Any]:
    if not isinstance(plan.tiling, Clusters):
        raise TypeError(f"{plan.method} does not cluster")
    return plan.tiling.sample(pixels, plan.params, origin, index, total)


def fit_samples(plan: TilePlan, parts: list[dict[str, Any]], *, height: int, width: int) -> dict[str, Any]:
    if not isinstance(plan.tiling, Clusters):
        raise TypeError(f"{plan.method} does not cluster")
    return plan.tiling.fit(parts, plan.params, (height, width))


# --------------------------------------------------------------------------------- one tile
def segment_tile(plan: TilePlan, pixels: np.ndarray, state: dict[str, Any], *,
                 origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """The labels (or class map) of a padded tile, as the whole image's method would give them.

    ``origin`` is the tile's (row, col) in the whole image.
    """
    tiling = plan.tiling
    if isinstance(tiling, HistogramThreshold):
        return np.asarray(tiling.apply(grey(pixels), state["thresholds"]))
    if isinstance(tiling, Clusters):
        return tiling.assign(pixels, state, plan.params, origin)
    if plan.model_path is not None:
        seg = load_model(plan.model_path).segment(pixels, **plan.params)
    else:
        params = {**plan.params, **state.get("params", {})}
        if isinstance(tiling, Components):
            params[tiling.min_size] = 0  # the size filter waits for the joined sizes
        if isinstance(tiling, Objects):
            share = pixels.shape[0] * pixels.shape[1] / state["image_pixels"]
            for key in tiling.per_image_counts:
                params[key] = max(1, round(params[key] * share))
        if plan.accepts_channel_axis:
            params["channel_axis"] = -1 if pixels.ndim == 3 else None
        seg = get_method(plan.method).function(pixels, **params)
    return seg.class_map() if plan.kind == "semantic" else np.asarray(seg.labels)
