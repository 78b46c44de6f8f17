"""The one zero-division policy of every metric: an empty denominator makes a figure undefined.

Undefined figures are NaN. Means leave them out; a mean of nothing defined is NaN. Tables show
them as ``-`` and JSON as ``null``. So an image with no objects to find and none found has no
precision or recall, instead of a 0 that would pull a dataset's mean down (or a 1 that would
lift it).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["nanmean", "ratio"]


def ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or NaN when the denominator is zero.

    >>> ratio(1, 4), ratio(0, 0)
    (0.25, nan)
    """
    return float(numerator) / float(denominator) if denominator else float("nan")


def nanmean(values: Iterable[float]) -> float:
    """The mean of the defined (not NaN) values; NaN when there are none.

    >>> nanmean([1.0, float("nan"), 3.0])
    2.0
    """
    array = np.asarray(list(values), np.float64)
    array = array[~np.isnan(array)]
    return float(array.mean()) if array.size else float("nan")
