"""Classical segmentation methods, each registered with :func:`segscope.segment`.

Importing this package registers the methods; it never imports torch.

The scale defaults of the region methods (felzenszwalb, slic, watershed, region_merging,
mean_shift, kmeans) were chosen on BSDS500 train, as the setting whose regions best cover the
human segmentations; ``benchmarks/bsds_tuning.py`` reproduces the choice and scores it on val.
"""

from .clustering import connected_components, kmeans, mean_shift, slic
from .edges import EDGE_OPERATORS, edge_regions, edges
from .hierarchies import gradient_boundaries, image_hierarchy, ucm
from .histogram import Histogram, histogram, plot_histogram
from .interactive import prompted_geodesic, prompted_grabcut  # noqa: F401  (registers the prompted methods)
from .random_walk import random_walker
from .regions import felzenszwalb, region_growing, region_merging, split_and_merge
from .threshold import (
    adaptive_gaussian,
    adaptive_mean,
    isodata,
    li,
    mean,
    minimum,
    multi_otsu,
    niblack,
    otsu,
    sauvola,
    threshold,
    triangle,
    yen,
)
from .watershed import watershed, watershed_instances

__all__ = [
    "EDGE_OPERATORS",
    "Histogram",
    "adaptive_gaussian",
    "adaptive_mean",
    "connected_components",
    "edge_regions",
    "edges",
    "felzenszwalb",
    "gradient_boundaries",
    "histogram",
    "image_hierarchy",
    "isodata",
    "kmeans",
    "li",
    "mean",
    "mean_shift",
    "minimum",
    "multi_otsu",
    "niblack",
    "otsu",
    "plot_histogram",
    "random_walker",
    "region_growing",
    "region_merging",
    "sauvola",
    "slic",
    "split_and_merge",
    "threshold",
    "triangle",
    "ucm",
    "watershed",
    "watershed_instances",
    "yen",
]
