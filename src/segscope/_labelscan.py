"""One compiled pass over a label image (numba): which positive labels it holds."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _present_positive(flat: np.ndarray) -> np.ndarray:
    top = 0
    for v in flat:
        if v > top:
            top = v
    seen = np.zeros(top + 1, np.bool_)
    for v in flat:
        seen[v] = True
    count = 0
    for v in range(1, top + 1):
        if seen[v]:
            count += 1
    out = np.empty(count, np.int32)
    k = 0
    for v in range(1, top + 1):
        if seen[v]:
            out[k] = v
            k += 1
    return out


def present_positive(flat: np.ndarray) -> np.ndarray:
    """Sorted positive values of a flat, non-negative int32 array."""
    return _present_positive(flat)
