"""Regions from a hierarchy: the ultrametric contour map of an image's gradient, cut at a level."""

from __future__ import annotations

import numpy as np

from ..hierarchy import Hierarchy, region_hierarchy
from ..imagecheck import check_image
from ..registry import register_method
from ..result import Segmentation
from ..tiling import Objects
from ._common import check_parameter, check_sigma, regions
from .edges import edge_network

__all__ = ["gradient_boundaries", "image_hierarchy", "ucm"]

GRADIENT_OPERATORS = ("sobel", "prewitt", "scharr")
GRADIENT_LEVEL = 0.28
""":func:`ucm`'s cut over a gradient when no ``level`` is given: the level of the best dataset-wide
covering (ODS) of the Sobel hierarchy on 50 BSDS500 train images (every fourth), chosen by
``python benchmarks/bsds.py --split train --every 4 --regions-only``."""


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
    channel_axis: int | None = None,
) -> Hierarchy:
    """The hierarchy of regions of an image's boundaries: its gradient (:func:`gradient_boundaries`)
    or, for ``operator="learned"``, an edge network's boundary map (``model``: a zoo name or a
    checkpoint), then :func:`segscope.hierarchy.region_hierarchy`."""
    if operator == "learned":
        hierarchy: Hierarchy = edge_network(model).hierarchy(image, channel_axis=channel_axis)
        return hierarchy
    return region_hierarchy(gradient_boundaries(image, operator=operator, sigma=sigma,
                                                channel_axis=channel_axis))


@register_method("ucm", task="regions", tiling=Objects())
def ucm(
    image: np.ndarray,
    *,
    level: float | None = None,
    operator: str = "sobel",
    sigma: float = 1.0,
    model: str = "edges",
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
        gradient is divided by its largest value; a learned map is a probability). Lower keeps
        more regions. None: :data:`GRADIENT_LEVEL` for a gradient, the edge network's own
        ``default_level`` for ``learned``.
    operator : {"sobel", "prewitt", "scharr", "learned"}
        The gradient operator, or ``learned``: the boundary probability of an edge network.
    sigma : float
        Gaussian smoothing of each channel before the gradient.
    model : str
        ``learned``: the edge network, a zoo name (the shipped ``edges``) or a checkpoint file.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes and J. Malik, "Contour detection and hierarchical
       image segmentation", IEEE TPAMI 33(5), 898-916, 2011.

    Examples
    --------
    >>> image = np.zeros((20, 30), np.uint8); image[:, 10:] = 90; image[:, 20:] = 200
    >>> len(ucm(image, level=0.1))
    3
    """
    if level is None:
        level = float(edge_network(model).default_level) if operator == "learned" else GRADIENT_LEVEL
    check_parameter("ucm", "level", level, low=0)
    hierarchy = image_hierarchy(image, operator=operator, sigma=sigma, model=model, channel_axis=channel_axis)
    labels = hierarchy.cut(level=level)
    return regions(labels, method="ucm", details={"finest": hierarchy.finest, "regions": int(labels.max()),
                                                  "level": level})
