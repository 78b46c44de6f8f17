"""Compiled per-pixel passes (numba, parallel over rows) that fuse what NumPy does in several
full-image temporaries: the local thresholds' comparisons and Canny's gradient, non-maximum
suppression and hysteresis.

Each reproduces its reference's floating-point formula operation by operation, so results equal
the NumPy (or scikit-image) expressions they replace; the tests compare them.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True, parallel=True)
def above_block_mean(gray: np.ndarray, sums: np.ndarray, n: float, offset: float,
                     in_integers: bool) -> np.ndarray:
    """``gray > sums / n - offset``: with ``in_integers`` (``n`` and ``offset`` pre-multiplied by
    ``n`` given as whole numbers) as ``gray * n + offset > sums`` in 64-bit integers, exactly;
    otherwise as ``(gray + offset) * n > sums`` in float64."""
    height, width = gray.shape
    out = np.empty((height, width), np.uint8)
    for r in prange(height):
        for c in range(width):
            if in_integers:
                out[r, c] = np.int64(gray[r, c]) * np.int64(n) + np.int64(offset) > np.int64(sums[r, c])
            else:
                out[r, c] = (np.float64(gray[r, c]) + offset) * n > np.float64(sums[r, c])
    return out


@njit(cache=True, parallel=True)
def above_local_deviation(gray: np.ndarray, sums: np.ndarray, squares: np.ndarray, n: float,
                          k: float, r: float, sauvola: bool) -> np.ndarray:
    """Niblack's ``gray > m - k s`` or Sauvola's ``gray > m (1 + k (s / r - 1))``, with the local
    mean ``m = sums / n`` and deviation ``s = sqrt(max(squares / n - m * m, 0))`` as scikit-image
    computes them (the same operations in the same order)."""
    height, width = gray.shape
    out = np.empty((height, width), np.uint8)
    for row in prange(height):
        for c in range(width):
            mean = np.float64(sums[row, c]) / n
            variance = np.float64(squares[row, c]) / n - mean * mean
            std = np.sqrt(variance) if variance > 0 else 0.0
            if sauvola:
                local = mean * (1 + k * ((std / r) - 1))
            else:
                local = mean - k * std
            out[row, c] = np.float64(gray[row, c]) > local
    return out


@njit(cache=True, inline="always")
def _sobel(s: np.ndarray, up: int, x: int, down: int, left: int, y: int, right: int
           ) -> tuple[float, float]:
    """Sobel derivatives along rows and along columns at (x, y), from the given neighbours."""
    di = (s[down, left] - s[up, left]) + 2 * (s[down, y] - s[up, y]) + (s[down, right] - s[up, right])
    dj = (s[up, right] - s[up, left]) + 2 * (s[x, right] - s[x, left]) + (s[down, right] - s[down, left])
    return di, dj


@njit(cache=True, parallel=True)
def sobel_magnitude(smoothed: np.ndarray) -> np.ndarray:
    """``sqrt(i*i + j*j)`` of the Sobel derivatives along rows (i) and columns (j), borders
    mirrored with the edge repeated (scipy's ``reflect``, as ``scipy.ndimage.sobel``)."""
    height, width = smoothed.shape
    magnitude = np.empty((height, width), smoothed.dtype)
    for x in prange(height):
        up = x - 1 if x > 0 else 0
        down = x + 1 if x < height - 1 else height - 1
        for y in (0, width - 1):
            di, dj = _sobel(smoothed, up, x, down, max(y - 1, 0), y, min(y + 1, width - 1))
            magnitude[x, y] = np.sqrt(di * di + dj * dj)
        for y in range(1, width - 1):
            di, dj = _sobel(smoothed, up, x, down, y - 1, y, y + 1)
            magnitude[x, y] = np.sqrt(di * di + dj * dj)
    return magnitude


@njit(cache=True, parallel=True, error_model="numpy")
def suppress_non_maxima(smoothed: np.ndarray, magnitude: np.ndarray, low: float, high: float
                        ) -> np.ndarray:
    """Canny's non-maximum suppression with the neighbours' magnitudes interpolated along the
    gradient (scikit-image's bilinear rule), then the two thresholds: 0 not an edge, 1 weak
    (at least ``low``), 2 strong (at least ``high``). The one-pixel frame is never an edge."""
    height, width = magnitude.shape
    out = np.zeros((height, width), np.uint8)
    for x in prange(1, height - 1):
        for y in range(1, width - 1):
            m = magnitude[x, y]
            if not m >= low:
                continue
            gi, gj = _sobel(smoothed, x - 1, x, x + 1, y - 1, y, y + 1)
            ai = abs(gi)
            aj = abs(gj)
            if (gi > 0) == (gj > 0):  # both positive or both not: the main diagonal
                if ai > aj:
                    w = aj / ai
                    n11, n12 = magnitude[x + 1, y], magnitude[x + 1, y + 1]
                    n21, n22 = magnitude[x - 1, y], magnitude[x - 1, y - 1]
                else:
                    w = ai / aj
                    n11, n12 = magnitude[x, y + 1], magnitude[x + 1, y + 1]
                    n21, n22 = magnitude[x, y - 1], magnitude[x - 1, y - 1]
            else:
                if ai < aj:
                    w = ai / aj
                    n11, n12 = magnitude[x, y + 1], magnitude[x - 1, y + 1]
                    n21, n22 = magnitude[x, y - 1], magnitude[x + 1, y - 1]
                else:
                    w = aj / ai
                    n11, n12 = magnitude[x - 1, y], magnitude[x - 1, y + 1]
                    n21, n22 = magnitude[x + 1, y], magnitude[x + 1, y - 1]
            if n12 * w + n11 * (1.0 - w) <= m and n22 * w + n21 * (1.0 - w) <= m:
                out[x, y] = 2 if m >= high else 1
    return out


@njit(cache=True)
def hysteresis(levels: np.ndarray) -> np.ndarray:
    """Keep the weak pixels 8-connected to a strong one (and the strong ones)."""
    height, width = levels.shape
    flat = levels.ravel()
    out = np.zeros((height, width), np.bool_)
    rows = np.empty(height * width, np.int32)
    cols = np.empty(height * width, np.int32)
    words = flat.size // 8
    packed = flat[: words * 8].view(np.uint64)
    for word in range(words + 1):
        if word < words and packed[word] & 0x0202020202020202 == 0:
            continue  # eight pixels, none strong
        for seed in range(word * 8, min(word * 8 + 8, flat.size)):
            sx, sy = seed // width, seed % width
            if flat[seed] != 2 or out[sx, sy]:
                continue
            out[sx, sy] = True
            rows[0], cols[0] = sx, sy
            top = 1
            while top > 0:
                top -= 1
                px, py = rows[top], cols[top]
                for qx in range(max(px - 1, 0), min(px + 2, height)):
                    for qy in range(max(py - 1, 0), min(py + 2, width)):
                        if levels[qx, qy] != 0 and not out[qx, qy]:
                            out[qx, qy] = True
                            rows[top], cols[top] = qx, qy
                            top += 1
    return out
