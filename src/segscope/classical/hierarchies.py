"""Regions from a hierarchy: the ultrametric contour map of an image's gradient, cut at a level."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..hierarchy import Hierarchy, boundary_orientation, region_hierarchy
from ..imagecheck import check_image
from ..registry import register_method
from ..result import Segmentation
from ..tiling import Objects
from ._common import check_parameter, check_sigma, regions
from .edges import edge_network

__all__ = ["gradient_boundaries", "image_hierarchy", "ucm"]

GRADIENT_OPERATORS = ("sobel", "prewitt", "scharr")
GRADIENT_LEVEL = 0.25
""":func:`ucm`'s cut over a gradient when no ``level`` is given: the level of the best dataset-wide
covering (ODS) of the default Sobel hierarchy (oriented, no region under 300 pixels) on 50
BSDS500 train images (every fourth), chosen by ``python benchmarks/bsds.py --split train --every 4
--regions-only``."""
GRADIENT_ORIENTED = True
"""Whether a gradient's hierarchy orients its watershed by default (gPb-owt-ucm's oriented
watershed, :func:`segscope.hierarchy.region_hierarchy`): yes, because on those 50 train images the
Sobel hierarchy's covering, PRI and VOI at ODS are 0.500, 0.769 and 2.081 oriented against 0.495,
0.767 and 2.076 plain (rows ``ucm (sobel; min_size=0)`` and ``ucm (sobel; min_size=0;
oriented=false)`` of the same command)."""
GRADIENT_MIN_SIZE = 300
""":func:`image_hierarchy`'s smallest region over a gradient, in pixels, by default: on those 50
train images the oriented Sobel hierarchy's covering, PRI and VOI are 0.500, 0.769 and 2.081
with every region, 0.504, 0.769 and 2.000 with none under 100 pixels, 0.505, 0.769 and 1.959
under 300 (rows ``ucm (sobel; min_size=100)`` and ``ucm (sobel; min_size=300)``)."""


def gradient_boundaries(
    image: np.ndarray, *, operator: str = "sobel", sigma: float = 1.0, channel_axis: int | None = None
) -> np.ndarray:
    """A boundary map in [0, 1] from an image's gradient: each channel smoothed by a Gaussian of
    ``sigma``, its gradient magnitude by ``operator``, the strongest channel at each pixel, divided
    by the image's largest value (all zeros for a flat image).

    Examples
    --------
    >>> image = np.zeros((6, 8), np.uint8); image[:, 4:] = 100
    >>> float(gradient_boundaries(image, sigma=0)[:, 3:5].min())
    1.0
    """
    from scipy import ndimage
    from skimage import filters

    if operator not in GRADIENT_OPERATORS:
        raise ValueError(f"operator must be one of {GRADIENT_OPERATORS}, got {operator!r}")
    data = check_image(image, channel_axis=channel_axis)
    check_sigma("gradient_boundaries", "sigma", sigma, data)
    channels = data[..., None] if data.ndim == 2 else data
    magnitude = np.zeros(channels.shape[:2])
    for c in range(channels.shape[2]):
        smoothed = ndimage.gaussian_filter(channels[..., c].astype(np.float64), sigma) if sigma else \
            channels[..., c].astype(np.float64)
        np.maximum(magnitude, getattr(filters, operator)(smoothed), out=magnitude)
    top = float(magnitude.max())
    return magnitude / top if top > 0 else magnitude


def image_hierarchy(
    image: np.ndarray, *, operator: str = "sobel", sigma: float = 1.0, model: str = "edges",
    oriented: bool | None = None, min_size: int | None = None, scales: Sequence[float] | None = None,
    flip: bool | None = None, merging: bool | None = None, channel_axis: int | None = None,
) -> Hierarchy:
    """The hierarchy of regions of an image's boundaries: its gradient (:func:`gradient_boundaries`)
    or, for ``operator="learned"``, an edge network's boundary map (``model``: a zoo name or a
    checkpoint) made at ``scales`` and with ``flip`` (None: the network's own), then
    :func:`segscope.hierarchy.region_hierarchy` or, with ``merging`` (None: when the network
    has a merge model), the network's learned merge order
    (:func:`segscope.merging.merged_hierarchy`); the watershed oriented by the map's own
    orientation (:func:`segscope.hierarchy.boundary_orientation`) with ``oriented``, no region
    under ``min_size`` pixels. None: as tuned on BSDS500 train, :data:`GRADIENT_ORIENTED` and
    :data:`GRADIENT_MIN_SIZE` for a gradient, the edge network's own ``oriented`` and
    ``min_size`` for a learned map."""
    if operator == "learned":
        hierarchy: Hierarchy = edge_network(model).hierarchy(
            image, scales=scales, flip=flip, oriented=oriented, min_size=min_size, merging=merging,
            channel_axis=channel_axis)
        return hierarchy
    if scales is not None or flip is not None or merging is not None:
        raise ValueError(f"scales, flip and merging set how an edge network's map is used: "
                         f"operator='learned' only, got operator={operator!r}")
    boundary = gradient_boundaries(image, operator=operator, sigma=sigma, channel_axis=channel_axis)
    orient = GRADIENT_ORIENTED if oriented is None else oriented
    return region_hierarchy(boundary, orientation=boundary_orientation(boundary) if orient else None,
                            min_size=GRADIENT_MIN_SIZE if min_size is None else min_size)


@register_method("ucm", task="regions", tiling=Objects())
def ucm(
    image: np.ndarray,
    *,
    level: float | None = None,
    operator: str = "sobel",
    sigma: float = 1.0,
    model: str = "edges",
    oriented: bool | None = None,
    min_size: int | None = None,
    scales: Sequence[float] | None = None,
    flip: bool | None = None,
    merging: bool | None = None,
    channel_axis: int | None = None,
) -> Segmentation:
    """Regions of an ultrametric contour map: the image's boundaries (its gradient, or a learned
    edge map), their watershed, and the regions merged by the mean strength of their common
    boundary, cut at ``level``.

    Parameters
    ----------
    image : ndarray
        Grey, colour or multi-band image (the strongest channel's gradient counts).
    level : float or None
        Boundaries weaker than this, on average along their length, are removed (0..1: the
        gradient is divided by its largest value; a learned map is a probability; with
        ``merging``, a merge's level is the model's probability that it joins two segments).
        Lower keeps more regions. None: :data:`GRADIENT_LEVEL` for a gradient, the edge
        network's own ``default_level`` for ``learned``.
    operator : {"sobel", "prewitt", "scharr", "learned"}
        The gradient operator, or ``learned``: the boundary probability of an edge network.
    sigma : float
        Gaussian smoothing of each channel before the gradient.
    model : str
        ``learned``: the edge network, a zoo name (the shipped ``edges``) or a checkpoint file.
    oriented : bool or None
        Orient the watershed as gPb-owt-ucm does: along each watershed arc the boundary counts
        as much as the arc follows its direction. None: as tuned on BSDS500 train, yes for a
        gradient (:data:`GRADIENT_ORIENTED`), no for the shipped ``edges`` network.
    min_size : int or None
        No region has fewer pixels (each smaller one is merged into a neighbour). None: as tuned
        on BSDS500 train (:data:`GRADIENT_MIN_SIZE`, or the edge network's ``min_size``).
    scales : sequence of float or None
        ``learned`` only: the scales the edge network runs the image at, its maps averaged.
        None: the network's own (the shipped ``edges``: 0.5, 1 and 1.5).
    flip : bool or None
        ``learned`` only: average each scale's map with its mirror image's. None: the network's
        own default (no, for the shipped ``edges``).
    merging : bool or None
        ``learned`` only: merge the regions in the order the network's merge model learned
        (:func:`segscope.merging.merged_hierarchy`) rather than by mean boundary strength.
        None: when the network has one (the shipped ``edges`` has, since v0.5.0).
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes and J. Malik, "Contour detection and hierarchical
       image segmentation", IEEE TPAMI 33(5), 898-916, 2011.

    Examples
    --------
    >>> image = np.zeros((30, 60), np.uint8); image[:, 20:] = 90; image[:, 40:] = 200
    >>> len(ucm(image, level=0.1))
    3
    """
    if level is None:
        level = float(edge_network(model).default_level) if operator == "learned" else GRADIENT_LEVEL
    check_parameter("ucm", "level", level, low=0)
    hierarchy = image_hierarchy(image, operator=operator, sigma=sigma, model=model, oriented=oriented,
                                min_size=min_size, scales=scales, flip=flip, merging=merging,
                                channel_axis=channel_axis)
    labels = hierarchy.cut(level=level)
    return regions(labels, method="ucm", details={"finest": hierarchy.finest, "regions": int(labels.max()),
                                                  "level": level})
