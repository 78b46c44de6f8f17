"""Compiled loops (numba) for the methods no library provides.

Compiled on first use and cached on disk, so only the very first call in a fresh environment pays
for compilation.
"""

from __future__ import annotations

import heapq

import numpy as np
from numba import njit


@njit(cache=True)
def _distance(values: np.ndarray, sums: np.ndarray, count: float) -> float:
    total = 0.0
    for k in range(values.shape[0]):
        d = values[k] - sums[k] / count
        total += d * d
    return np.sqrt(total)


@njit(cache=True)
def _push_free_neighbours(heap, order, labels, data, sums, counts, r, c, lab):
    """Queue the unlabelled 4-neighbours of (r, c) by their distance to region ``lab``'s mean."""
    height, width = labels.shape
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        rr, cc = r + dr, c + dc
        if 0 <= rr < height and 0 <= cc < width and labels[rr, cc] == 0:
            d = _distance(data[rr, cc], sums[lab], counts[lab])
            heapq.heappush(heap, (d, order, rr * width + cc, lab))
            order += 1
    return order


@njit(cache=True)
def seeded_region_growing(data: np.ndarray, seeds: np.ndarray, tolerance: float) -> np.ndarray:
    """Adams-Bischof seeded region growing on (H, W, C) float data; tolerance < 0 means none."""
    height, width, bands = data.shape
    labels = seeds.astype(np.int64)
    n_labels = labels.max() + 1
    sums = np.zeros((n_labels, bands))
    counts = np.zeros(n_labels)
    for r in range(height):
        for c in range(width):
            lab = labels[r, c]
            if lab > 0:
                counts[lab] += 1.0
                for k in range(bands):
                    sums[lab, k] += data[r, c, k]
    heap = [(0.0, 0, 0, 0)]
    heap.pop()
    order = 0  # insertion order breaks ties, so equal distances pop first-in, first-out
    for r in range(height):
        for c in range(width):
            lab = labels[r, c]
            if lab > 0:
                order = _push_free_neighbours(heap, order, labels, data, sums, counts, r, c, lab)
    while len(heap) > 0:
        d, _, index, lab = heapq.heappop(heap)
        r, c = index // width, index % width
        if labels[r, c] != 0:
            continue
        if tolerance >= 0.0 and d > tolerance:
            continue
        labels[r, c] = lab
        counts[lab] += 1.0
        for k in range(bands):
            sums[lab, k] += data[r, c, k]
        order = _push_free_neighbours(heap, order, labels, data, sums, counts, r, c, lab)
    return labels


@njit(cache=True)
def _find(parent: np.ndarray, x: int) -> int:
    root = x
    while parent[root] != root:
        root = parent[root]
    while parent[x] != root:
        nxt = parent[x]
        parent[x] = root
        x = nxt
    return root


@njit(cache=True)
def merge_homogeneous(leaves: np.ndarray, data: np.ndarray, threshold: float) -> np.ndarray:
    """Merge adjacent regions (closest means first) while the union's range stays <= threshold.

    ``leaves`` holds labels 1..N; returns the merged label image (labels are region roots).
    """
    height, width, bands = data.shape
    n = leaves.max() + 1
    lo = np.full((n, bands), np.inf)
    hi = np.full((n, bands), -np.inf)
    sums = np.zeros((n, bands))
    counts = np.zeros(n)
    for r in range(height):
        for c in range(width):
            lab = leaves[r, c]
            counts[lab] += 1.0
            for k in range(bands):
                v = data[r, c, k]
                sums[lab, k] += v
                if v < lo[lab, k]:
                    lo[lab, k] = v
                if v > hi[lab, k]:
                    hi[lab, k] = v
    # Adjacent pairs (a < b), each once: collect, then sort by the distance of the means.
    pairs_a = np.empty(2 * height * width, np.int64)
    pairs_b = np.empty(2 * height * width, np.int64)
    m = 0
    for r in range(height):
        for c in range(width):
            a = leaves[r, c]
            if c + 1 < width and leaves[r, c + 1] != a:
                b = leaves[r, c + 1]
                pairs_a[m], pairs_b[m] = min(a, b), max(a, b)
                m += 1
            if r + 1 < height and leaves[r + 1, c] != a:
                b = leaves[r + 1, c]
                pairs_a[m], pairs_b[m] = min(a, b), max(a, b)
                m += 1
    keys = pairs_a[:m] * n + pairs_b[:m]
    keys = np.unique(keys)
    pa = keys // n
    pb = keys % n
    dist = np.empty(keys.size)
    for i in range(keys.size):
        total = 0.0
        for k in range(bands):
            d = sums[pa[i], k] / counts[pa[i]] - sums[pb[i], k] / counts[pb[i]]
            total += d * d
        dist[i] = total
    parent = np.arange(n)
    for i in np.argsort(dist, kind="mergesort"):
        ra, rb = _find(parent, pa[i]), _find(parent, pb[i])
        if ra == rb:
            continue
        ok = True
        for k in range(bands):
            if max(hi[ra, k], hi[rb, k]) - min(lo[ra, k], lo[rb, k]) > threshold:
                ok = False
                break
        if ok:
            parent[rb] = ra
            for k in range(bands):
                lo[ra, k] = min(lo[ra, k], lo[rb, k])
                hi[ra, k] = max(hi[ra, k], hi[rb, k])
                sums[ra, k] += sums[rb, k]
            counts[ra] += counts[rb]
    out = np.empty_like(leaves)
    for r in range(height):
        for c in range(width):
            out[r, c] = _find(parent, leaves[r, c])
    return out
