"""Thresholding: global thresholds chosen from the histogram."""

from __future__ import annotations

import numpy as np

from ..imagecheck import check_image, to_gray
from ..registry import register_method
from ..result import Segmentation
from ._common import semantic_from_classes

__all__ = ["otsu"]


@register_method("otsu", task="semantic")
def otsu(image: np.ndarray, *, nbins: int = 256, channel_axis: int | None = None) -> Segmentation:
    """Two classes split at Otsu's threshold, which maximises the between-class variance.

    Pixels above the threshold are class 1 ("foreground"), the rest class 0 ("background").
    The threshold is recorded in ``provenance.details["threshold"]``.

    Parameters
    ----------
    image : ndarray
        Grey (H, W) or colour (H, W, C) image. Colour is converted to luma (ITU-R BT.601).
    nbins : int
        Histogram bins for float images; integer images use one bin per value, as scikit-image.
    channel_axis : int or None
        Axis of the colour channels, if not the last of a 3-D image.

    Returns
    -------
    Segmentation
        A semantic result with classes ("background", "foreground").

    References
    ----------
    .. [1] N. Otsu, "A threshold selection method from gray-level histograms", IEEE Trans. Systems,
       Man, and Cybernetics 9(1), 62-66, 1979.

    Examples
    --------
    >>> import numpy as np
    >>> image = np.array([[10, 10, 200], [10, 200, 200]], np.uint8)
    >>> otsu(image).class_map().tolist()
    [[0, 0, 1], [0, 1, 1]]
    """
    from skimage.filters import threshold_otsu

    gray = to_gray(check_image(image, channel_axis=channel_axis))
    if nbins < 2:
        raise ValueError(f"nbins must be at least 2, got {nbins}")
    if gray.min() == gray.max():
        threshold = float(gray.min())  # a flat image is all background
    else:
        threshold = float(threshold_otsu(gray, nbins=nbins))
    return semantic_from_classes(gray > threshold, num_classes=2, method="otsu",
                                 details={"threshold": threshold})
