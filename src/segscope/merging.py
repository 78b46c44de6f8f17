"""Learned region merging: a hierarchy whose merges are ordered by a model of the regions' pairs.

:func:`segscope.hierarchy.region_hierarchy` merges the two neighbouring regions whose common
boundary is weakest on average, as gPb-owt-ucm does. Here the merge order is learned instead, in
the line of ISCRA [1]_ and MCG [2]_: starting from the same finest regions (the boundary map's
watershed, no region under ``min_size`` pixels), the pair merged next is the one a logistic model
finds least likely to be two different segments, given what is known of the two regions at that
moment: their common boundary's mean strength, how far apart their colours are (CIELAB means and
histograms), their sizes, how much of their outline they share and how much boundary lies inside
them. After each merge the new region's features are those of the union, so a large region that
gathered many small ones is judged by its whole colour, not by its first seed's.

The model is fitted on annotated images (:func:`merge_samples`, :func:`fit_merge_model`): at each
merge of a hierarchy, the target is the share of the two regions' pixel pairs an annotator puts in
different segments, averaged over the annotators and weighted by the pairs' number, so the model
learns what the Rand index counts. A merge's level is the model's probability (made no lower than
its children's, so the result is an ultrametric and cutting at 0.5 keeps the pairs more likely
apart than together).

References
----------
.. [1] Z. Ren and G. Shakhnarovich, "Image segmentation by cascaded region agglomeration", CVPR
       2013. :doi:`10.1109/CVPR.2013.270`
.. [2] J. Pont-Tuset, P. Arbelaez, J. T. Barron, F. Marques and J. Malik, "Multiscale
       combinatorial grouping for image segmentation and object proposal generation", IEEE TPAMI
       39(1), 128-140, 2017. :doi:`10.1109/TPAMI.2016.2537320`
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .hierarchy import Hierarchy, region_hierarchy

__all__ = ["MERGE_FEATURES", "MergeModel", "MergeSamples", "fit_merge_model", "merge_samples",
           "merged_hierarchy"]

MERGE_FEATURES = ("bias", "boundary", "boundary_squared", "colour_distance", "colour_histogram",
                  "log_smaller_area", "log_larger_area", "log_shared_length", "shared_outline",
                  "inner_boundary")
"""What :class:`MergeModel` weighs for two neighbouring regions: a constant; their common
boundary's mean strength and its square; the distance between their mean CIELAB colours (divided
by 50) and the chi-squared distance between their CIELAB histograms (16 bins a channel); the
logarithms of the smaller and larger area (divided by 10) and of the common boundary's length
(divided by 5); the common boundary's share of the shorter outline; the larger of the two
regions' mean boundary strength inside them."""

_BINS = 16
_LAB_RANGES = ((0.0, 100.0), (-80.0, 80.0), (-80.0, 80.0))


@dataclass(frozen=True)
class MergeModel:
    """A logistic model of whether two neighbouring regions are different segments: one weight per
    :data:`MERGE_FEATURES` entry.

    Examples
    --------
    >>> model = MergeModel.from_decoding({"merge_bias": -1.0, "merge_boundary": 4.0})
    >>> round(float(model.probability(np.array([[1.0, 0.5] + [0.0] * 8]))[0]), 3)
    0.731
    >>> model.to_decoding()["merge_boundary"]
    4.0
    """

    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        weights = tuple(float(w) for w in self.weights)
        if len(weights) != len(MERGE_FEATURES):
            raise ValueError(f"a merge model has {len(MERGE_FEATURES)} weights "
                             f"({', '.join(MERGE_FEATURES)}), got {len(weights)}")
        if not all(np.isfinite(weights)):
            raise ValueError(f"merge weights must be finite, got {weights}")
        object.__setattr__(self, "weights", weights)

    def probability(self, features: np.ndarray) -> np.ndarray:
        """(N,) probabilities that each pair is two segments, from (N, features) rows."""
        return _logistic(np.asarray(features, np.float64) @ np.asarray(self.weights))

    def to_decoding(self) -> dict[str, float]:
        """The weights as a checkpoint's ``decoding`` stores settings: ``merge_<feature>`` numbers."""
        return {f"merge_{name}": w for name, w in zip(MERGE_FEATURES, self.weights, strict=True)}

    @classmethod
    def from_decoding(cls, decoding: Mapping[str, float]) -> MergeModel:
        """The model in a decoding's ``merge_<feature>`` entries (a missing one weighs 0)."""
        unknown = sorted(k for k in decoding if k.startswith("merge_") and k[6:] not in MERGE_FEATURES)
        if unknown:
            raise ValueError(f"unknown merge features {unknown}; known: {', '.join(MERGE_FEATURES)}")
        return cls(tuple(float(decoding.get(f"merge_{name}", 0.0)) for name in MERGE_FEATURES))


def _logistic(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


@dataclass
class _Regions:
    """The finest regions of a hierarchy and what merging them needs."""

    base: Hierarchy
    graph: Any  # the finest regions' adjacency graph (higra)
    labels: np.ndarray  # (H, W) finest region of each pixel, as the graph numbers them
    sources: np.ndarray
    targets: np.ndarray
    boundary_sum: np.ndarray
    boundary_length: np.ndarray
    area: np.ndarray
    colour_sum: np.ndarray
    histogram: np.ndarray
    inner: np.ndarray


def _finest_regions(boundary: np.ndarray, image: np.ndarray,
                    min_size: int) -> tuple[Hierarchy, _Regions | None]:
    """The plain hierarchy (:func:`segscope.hierarchy.region_hierarchy`), whose finest cut the
    learned order starts from, and those regions' statistics (None: the map has one region)."""
    import higra as hg
    from skimage.color import rgb2lab

    from .imagecheck import check_image

    boundary, image = np.asarray(boundary, np.float64), check_image(image)
    if image.shape[:2] != boundary.shape:
        raise ValueError(f"the image is {image.shape[:2]}, its boundary map {boundary.shape}")
    base = region_hierarchy(boundary, min_size=min_size)
    if base.tree is None:
        return base, None
    graph = hg.make_region_adjacency_graph_from_labelisation(base.graph, base.cut(level=0).ravel())
    labels = np.asarray(hg.CptRegionAdjacencyGraph.get_vertex_map(graph), np.intp)
    weights = hg.weight_graph(base.graph, np.asarray(boundary, np.float64), hg.WeightFunction.max)
    sources, targets = (np.asarray(a, np.intp) for a in graph.edge_list())
    n = int(labels.max()) + 1
    rgb = np.asarray(image)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise ValueError(f"learned merging reads the colours of an RGB or grey image, got shape {rgb.shape}")
    lab = rgb2lab(rgb[..., :3]).reshape(-1, 3)
    histogram = np.zeros((n, 3 * _BINS))
    for c, (low, high) in enumerate(_LAB_RANGES):
        bins = np.clip(((lab[:, c] - low) / (high - low) * _BINS).astype(np.intp), 0, _BINS - 1)
        histogram[:, c * _BINS:(c + 1) * _BINS] = np.bincount(labels * _BINS + bins,
                                                              minlength=n * _BINS).reshape(n, _BINS)
    return base, _Regions(
        base, graph, labels.reshape(boundary.shape), sources, targets,
        np.asarray(hg.rag_accumulate_on_edges(graph, hg.Accumulators.sum, weights), np.float64),
        np.asarray(hg.rag_accumulate_on_edges(graph, hg.Accumulators.counter, weights), np.float64),
        np.bincount(labels, minlength=n).astype(np.float64),
        np.stack([np.bincount(labels, lab[:, c], minlength=n) for c in range(3)], axis=1),
        histogram,
        np.bincount(labels, boundary.ravel(), minlength=n),
    )


def _agglomerate(regions: _Regions, score: Callable[[np.ndarray], np.ndarray],
                 record: list[tuple[np.ndarray, int, int]] | None = None) -> Hierarchy:
    """Merge the pair ``score`` finds least likely apart, again and again; ``record`` collects
    each merge's features and its two nodes (finest regions are 0..n-1, the k-th merge makes
    node n + k)."""
    import higra as hg

    n = len(regions.area)
    nodes = 2 * n - 1
    adjacency: list[dict[int, list[float]]] = [{} for _ in range(nodes)]
    for u, v, total, length in zip(regions.sources, regions.targets, regions.boundary_sum,
                                   regions.boundary_length, strict=True):
        adjacency[u][v] = adjacency[v][u] = [float(total), float(length)]
    area = np.zeros(nodes)
    area[:n] = regions.area
    colour = np.zeros((nodes, 3))
    colour[:n] = regions.colour_sum
    histogram = np.zeros((nodes, regions.histogram.shape[1]))
    histogram[:n] = regions.histogram
    inner = np.zeros(nodes)
    inner[:n] = regions.inner
    outline = np.zeros(nodes)
    outline[:n] = [sum(edge[1] for edge in adjacency[u].values()) for u in range(n)]
    alive = np.zeros(nodes, bool)
    alive[:n] = True
    parents = np.arange(nodes)
    altitudes = np.zeros(nodes)

    def features(u: int, v: int) -> np.ndarray:
        total, length = adjacency[u][v]
        mean = total / length
        hu, hv = histogram[u] / area[u], histogram[v] / area[v]
        chi2 = 0.5 * float(np.sum((hu - hv) ** 2 / (hu + hv + 1e-12))) / 3.0
        smaller, larger = sorted((area[u], area[v]))
        return np.array([1.0, mean, mean * mean,
                         float(np.linalg.norm(colour[u] / area[u] - colour[v] / area[v])) / 50.0, chi2,
                         np.log(smaller) / 10.0, np.log(larger) / 10.0, np.log(length) / 5.0,
                         length / min(outline[u], outline[v]), max(inner[u] / area[u], inner[v] / area[v])])

    heap: list[tuple[float, int, int]] = []

    def push(pairs: list[tuple[int, int]]) -> None:
        if pairs:
            for (u, v), p in zip(pairs, score(np.stack([features(u, v) for u, v in pairs])), strict=True):
                heapq.heappush(heap, (float(p), u, v))

    push([(u, v) for u in range(n) for v in adjacency[u] if u < v])
    new = n
    while heap and new < nodes:
        p, u, v = heapq.heappop(heap)
        if not (alive[u] and alive[v]):
            continue  # a pair whose side has merged since: its new pairs are in the heap
        if record is not None:
            record.append((features(u, v), u, v))
        w, new = new, new + 1
        parents[u] = parents[v] = w
        altitudes[w] = max(p, altitudes[u], altitudes[v])
        alive[u] = alive[v] = False
        alive[w] = True
        area[w], colour[w] = area[u] + area[v], colour[u] + colour[v]
        histogram[w] = histogram[u] + histogram[v]
        shared = adjacency[u][v]
        inner[w] = inner[u] + inner[v] + shared[0]
        outline[w] = outline[u] + outline[v] - 2 * shared[1]
        for side in (u, v):
            for other, (total, length) in adjacency[side].items():
                if other in (u, v):
                    continue
                if other in adjacency[w]:
                    adjacency[w][other][0] += total
                    adjacency[w][other][1] += length
                else:
                    adjacency[w][other] = adjacency[other][w] = [total, length]
                del adjacency[other][side]
            adjacency[side] = {}
        push([(w, other) for other in adjacency[w]])
    if new < nodes:  # regions that touch no other (a disconnected map): joined above every merge
        top = max(1.0, float(altitudes.max()))
        roots = [r for r in range(new) if alive[r]]
        for r in roots[1:]:
            parents[roots[0]] = parents[r] = new
            altitudes[new] = top
            roots[0], new = new, new + 1
    parents[-1] = nodes - 1
    return Hierarchy(regions.base.shape, regions.base.graph, regions.graph, hg.Tree(parents), altitudes)


def merged_hierarchy(boundary: np.ndarray, image: np.ndarray, model: MergeModel, *,
                     min_size: int = 300) -> Hierarchy:
    """The hierarchy of regions of a boundary map, merged in the order ``model`` learned.

    Parameters
    ----------
    boundary : (H, W) ndarray
        Boundary strength in [0, 1] at each pixel (a learned edge map's probability).
    image : (H, W, 3) or (H, W) ndarray
        The image the map is of (RGB, or grey), for the regions' colours, read as scikit-image
        reads them (integers over their type's range, floats in [0, 1]); further channels after
        the first three are not used.
    model : MergeModel
        The merge model (a trained edge network carries its own in its checkpoint's decoding).
    min_size : int
        The finest regions are the map's watershed with no region under ``min_size`` pixels, as
        :func:`segscope.hierarchy.region_hierarchy` makes them.

    Returns
    -------
    Hierarchy
        Levels are the model's probabilities that a merge joins two segments (non-decreasing
        upwards): a cut at 0.5 keeps the pairs more likely apart than together.

    Examples
    --------
    >>> image = np.zeros((20, 30, 3), np.uint8); image[:, 10:] = 200; image[:, 20:, 0] = 0
    >>> boundary = np.zeros((20, 30)); boundary[:, [9, 19]] = 0.5
    >>> colour_only = MergeModel((-1.0, 0, 0, 2.0, 0, 0, 0, 0, 0, 0))
    >>> hierarchy = merged_hierarchy(boundary, image, colour_only, min_size=0)
    >>> [int(hierarchy.cut(level=t).max()) for t in (0.5, 0.8, 0.95)]
    [3, 2, 1]
    >>> hierarchy.cut(level=0.8)[0, [0, 15, 25]].tolist()  # grey and cyan, the closer colours, first
    [1, 2, 2]
    """
    base, regions = _finest_regions(boundary, image, min_size)
    if regions is None:
        return base  # one region: nothing to merge
    return _agglomerate(regions, model.probability)


@dataclass(frozen=True)
class MergeSamples:
    """Merges seen on annotated images: each merge's features, the share of its pixel pairs the
    annotators put apart (the target) and the pairs' share of the image's (the weight)."""

    features: np.ndarray
    apart: np.ndarray
    weight: np.ndarray

    def __add__(self, other: MergeSamples) -> MergeSamples:
        return MergeSamples(np.concatenate([self.features, other.features]),
                            np.concatenate([self.apart, other.apart]),
                            np.concatenate([self.weight, other.weight]))


def merge_samples(boundary: np.ndarray, image: np.ndarray, truths: Sequence[np.ndarray], *,
                  model: MergeModel | None = None, min_size: int = 300) -> MergeSamples:
    """Every merge of one image's hierarchy (in ``model``'s order; None: by mean boundary
    strength), with how its annotators' segmentations ``truths`` (label arrays) part its two sides."""
    _, regions = _finest_regions(boundary, image, min_size)
    if regions is None:
        return MergeSamples(np.zeros((0, len(MERGE_FEATURES))), np.zeros(0), np.zeros(0))
    n = len(regions.area)
    tables = []  # per annotator: (nodes, segments) pixel counts, finest regions first
    for truth in truths:
        truth = np.asarray(truth)
        if truth.shape != regions.labels.shape:
            raise ValueError(f"a segmentation is {truth.shape}, the image {regions.labels.shape}")
        _, segment = np.unique(truth, return_inverse=True)
        count = int(segment.max()) + 1
        table = np.zeros((2 * n - 1, count))
        table[:n] = np.bincount(regions.labels.ravel() * count + segment.ravel(),
                                minlength=n * count).reshape(n, count)
        tables.append(table)
    record: list[tuple[np.ndarray, int, int]] = []
    _agglomerate(regions, model.probability if model is not None else (lambda f: f[:, 1]), record)
    area = np.concatenate([regions.area, np.zeros(n - 1)])
    pixels = float(regions.area.sum())
    rows, apart, weight = [], [], []
    for k, (features, u, v) in enumerate(record):
        together = []
        for table in tables:
            table[n + k] = table[u] + table[v]
            together.append(float(table[u] @ table[v]) / (area[u] * area[v]))
        area[n + k] = area[u] + area[v]
        rows.append(features)
        apart.append(1.0 - float(np.mean(together)))
        weight.append(area[u] * area[v] / pixels ** 2)
    return MergeSamples(np.array(rows).reshape(-1, len(MERGE_FEATURES)), np.array(apart), np.array(weight))


def fit_merge_model(samples: MergeSamples, *, ridge: float = 1e-4, iterations: int = 50) -> MergeModel:
    """The logistic model of ``samples.apart`` from their features, the samples weighted by
    ``samples.weight`` (normalised to mean 1), with an L2 penalty ``ridge`` on every weight but
    the constant: Newton's method on the cross-entropy, which is convex."""
    x, y = np.asarray(samples.features, np.float64), np.asarray(samples.apart, np.float64)
    if len(y) < len(MERGE_FEATURES):
        raise ValueError(f"{len(y)} merges are too few to fit {len(MERGE_FEATURES)} weights")
    sample_weight = np.asarray(samples.weight, np.float64)
    sample_weight = sample_weight / sample_weight.mean()
    penalty = np.full(len(MERGE_FEATURES), ridge)
    penalty[0] = 0.0
    weights = np.zeros(len(MERGE_FEATURES))
    for _ in range(iterations):
        p = _logistic(x @ weights)
        gradient = x.T @ (sample_weight * (p - y)) / len(y) + 2 * penalty * weights
        hessian = (x * (sample_weight * p * (1 - p))[:, None]).T @ x / len(y) + np.diag(2 * penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        weights -= step
        if np.abs(step).max() < 1e-9:
            break
    return MergeModel(tuple(weights))
