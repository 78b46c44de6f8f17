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
def _push_free_neighbours(heap, order, labels, data, sums, counts, z, r, c, lab):
    """Queue the unlabelled face neighbours of (z, r, c) (4 in a plane, 6 in a volume) by their
    distance to region ``lab``'s mean."""
    depth, height, width = labels.shape
    for dz, dr, dc in ((0, -1, 0), (0, 1, 0), (0, 0, -1), (0, 0, 1), (-1, 0, 0), (1, 0, 0)):
        zz, rr, cc = z + dz, r + dr, c + dc
        if 0 <= zz < depth and 0 <= rr < height and 0 <= cc < width and labels[zz, rr, cc] == 0:
            d = _distance(data[zz, rr, cc], sums[lab], counts[lab])
            heapq.heappush(heap, (d, order, (zz * height + rr) * width + cc, lab))
            order += 1
    return order


@njit(cache=True)
def seeded_region_growing(data: np.ndarray, seeds: np.ndarray, tolerance: float) -> np.ndarray:
    """Adams-Bischof seeded region growing on (Z, H, W, C) float data (Z = 1 for an image), face
    connected; tolerance < 0 means none."""
    depth, height, width, bands = data.shape
    labels = seeds.astype(np.int64)
    n_labels = labels.max() + 1
    sums = np.zeros((n_labels, bands))
    counts = np.zeros(n_labels)
    for z in range(depth):
        for r in range(height):
            for c in range(width):
                lab = labels[z, r, c]
                if lab > 0:
                    counts[lab] += 1.0
                    for k in range(bands):
                        sums[lab, k] += data[z, r, c, k]
    heap = [(0.0, 0, 0, 0)]
    heap.pop()
    order = 0  # insertion order breaks ties, so equal distances pop first-in, first-out
    for z in range(depth):
        for r in range(height):
            for c in range(width):
                lab = labels[z, r, c]
                if lab > 0:
                    order = _push_free_neighbours(heap, order, labels, data, sums, counts, z, r, c, lab)
    while len(heap) > 0:
        d, _, index, lab = heapq.heappop(heap)
        z, rest = index // (height * width), index % (height * width)
        r, c = rest // width, rest % width
        if labels[z, r, c] != 0:
            continue
        if tolerance >= 0.0 and d > tolerance:
            continue
        labels[z, r, c] = lab
        counts[lab] += 1.0
        for k in range(bands):
            sums[lab, k] += data[z, r, c, k]
        order = _push_free_neighbours(heap, order, labels, data, sums, counts, z, r, c, lab)
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
def adjacent_pairs(labels: np.ndarray, n: int) -> np.ndarray:
    """Sorted unique keys ``a * n + b`` (a < b) of the 4-adjacent label pairs of a label image."""
    height, width = labels.shape
    keys = np.empty(2 * height * width, np.int64)
    m = 0
    for r in range(height):
        for c in range(width):
            a = labels[r, c]
            if c + 1 < width and labels[r, c + 1] != a:
                b = labels[r, c + 1]
                keys[m] = min(a, b) * n + max(a, b)
                m += 1
            if r + 1 < height and labels[r + 1, c] != a:
                b = labels[r + 1, c]
                keys[m] = min(a, b) * n + max(a, b)
                m += 1
    return np.unique(keys[:m])


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
    # Adjacent pairs (a < b), each once, sorted by the distance of the means.
    keys = adjacent_pairs(leaves, n)
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


@njit(cache=True)
def quadtree_leaves(data: np.ndarray, threshold: float, min_level: int, levels: int) -> np.ndarray:
    """Leaf labels 1..N of the quadtree split on the power-of-two grid of side ``2**levels``.

    A block (clipped to the image) is a leaf when the range of its values, largest over bands, is
    at most ``threshold``, or when its level is at most ``min_level``. Blocks are visited depth
    first with the four children in row-major order.
    """
    height, width, bands = data.shape
    labels = np.zeros((height, width), np.int64)
    stack = [(levels, 0, 0)]
    next_id = 1
    while len(stack) > 0:
        level, by, bx = stack.pop()
        size = 1 << level
        y0, x0 = by * size, bx * size
        if y0 >= height or x0 >= width:
            continue
        y1, x1 = min(y0 + size, height), min(x0 + size, width)
        leaf = level <= min_level
        if not leaf:
            spread = 0.0
            for k in range(bands):
                lo, hi = np.inf, -np.inf
                for r in range(y0, y1):
                    for c in range(x0, x1):
                        v = data[r, c, k]
                        if v < lo:
                            lo = v
                        if v > hi:
                            hi = v
                if hi - lo > spread:
                    spread = hi - lo
            leaf = spread <= threshold
        if leaf:
            labels[y0:y1, x0:x1] = next_id
            next_id += 1
        else:
            # Pushed in reverse so that the top-left child is visited first.
            stack.append((level - 1, 2 * by + 1, 2 * bx + 1))
            stack.append((level - 1, 2 * by + 1, 2 * bx))
            stack.append((level - 1, 2 * by, 2 * bx + 1))
            stack.append((level - 1, 2 * by, 2 * bx))
    return labels


@njit(cache=True)
def relabel_sequential(labels: np.ndarray) -> np.ndarray:
    """Positive labels renumbered 1..N in increasing order of their values (0 stays 0), as int32."""
    top = 0
    for v in labels.ravel():
        if v > top:
            top = v
    lut = np.zeros(top + 1, np.int64)
    for v in labels.ravel():
        lut[v] = 1
    lut[0] = 0
    count = 0
    for v in range(top + 1):
        if lut[v]:
            count += 1
            lut[v] = count
    out = np.empty(labels.shape, np.int32)
    flat_in = labels.ravel()
    flat_out = out.ravel()
    for i in range(flat_in.size):
        flat_out[i] = lut[flat_in[i]]
    return out


@njit(cache=True)
def absorb_small_regions(labels: np.ndarray, data: np.ndarray, min_size: int) -> np.ndarray:
    """Merge regions smaller than ``min_size`` pixels into their closest-mean neighbour.

    Smallest regions first, repeated until none below ``min_size`` has a neighbour left. A
    merged region's neighbours are those of all its members. Returns root labels (not sequential).
    """
    height, width, bands = data.shape
    n = labels.max() + 1
    sizes = np.zeros(n)
    sums = np.zeros((n, bands))
    for r in range(height):
        for c in range(width):
            lab = labels[r, c]
            sizes[lab] += 1.0
            for k in range(bands):
                sums[lab, k] += data[r, c, k]
    # Adjacency of the original regions in both directions, as sorted unique keys, then CSR.
    once = adjacent_pairs(labels, n)
    keys = np.unique(np.concatenate((once, (once % n) * n + once // n)))
    start = np.zeros(n + 1, np.int64)
    for key in keys:
        start[key // n + 1] += 1
    for i in range(n):
        start[i + 1] += start[i]
    neighbour = keys % n
    # Members of each region, as linked lists, so a merged region sees all its members' neighbours.
    first = np.arange(n)
    last = np.arange(n)
    following = np.full(n, -1)
    parent = np.arange(n)
    changed = True
    while changed:
        changed = False
        for region in np.argsort(sizes, kind="mergesort"):
            if region == 0 or parent[region] != region or sizes[region] >= min_size:
                continue
            best, best_d = -1, np.inf
            member = first[region]
            while member != -1:
                for j in range(start[member], start[member + 1]):
                    root = _find(parent, neighbour[j])
                    if root == region:
                        continue
                    d = 0.0
                    for k in range(bands):
                        diff = sums[root, k] / sizes[root] - sums[region, k] / sizes[region]
                        d += diff * diff
                    if d < best_d or (d == best_d and root < best):
                        best, best_d = root, d
                member = following[member]
            if best < 0:
                continue
            parent[region] = best
            sizes[best] += sizes[region]
            for k in range(bands):
                sums[best, k] += sums[region, k]
            following[last[best]] = first[region]
            last[best] = last[region]
            changed = True
    out = np.empty_like(labels)
    for r in range(height):
        for c in range(width):
            out[r, c] = _find(parent, labels[r, c])
    return out


@njit(cache=True)
def reconstruct_by_dilation(seed: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Grey-level reconstruction by dilation of ``seed`` under ``mask`` (8-connected, 2-D; seed <=
    mask everywhere), by Vincent's hybrid algorithm: a raster and an anti-raster scan, then a
    FIFO queue for what the scans left. It compares values and never computes new ones, so the
    result equals any exact reconstruction (``skimage.morphology.reconstruction``'s), without
    sorting the pixels.

    L. Vincent, "Morphological grayscale reconstruction in image analysis: applications and
    efficient algorithms", IEEE Trans. Image Processing 2(2), 176-201, 1993.
    """
    height, width = seed.shape
    out = seed.copy()
    for r in range(height):
        for c in range(width):
            best = out[r, c]
            for dr, dc in ((-1, -1), (-1, 0), (-1, 1), (0, -1)):
                rr, cc = r + dr, c + dc
                if rr >= 0 and 0 <= cc < width and out[rr, cc] > best:
                    best = out[rr, cc]
            out[r, c] = min(best, mask[r, c])
    capacity = max(height * width, 16)
    queue = np.empty(capacity, np.int64)
    head = 0
    tail = 0
    for r in range(height - 1, -1, -1):
        for c in range(width - 1, -1, -1):
            best = out[r, c]
            for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
                rr, cc = r + dr, c + dc
                if rr < height and 0 <= cc < width and out[rr, cc] > best:
                    best = out[rr, cc]
            value = min(best, mask[r, c])
            out[r, c] = value
            for dr, dc in ((0, 1), (1, -1), (1, 0), (1, 1)):
                rr, cc = r + dr, c + dc
                if rr < height and 0 <= cc < width and out[rr, cc] < value and out[rr, cc] < mask[rr, cc]:
                    queue[tail] = r * width + c
                    tail += 1
                    break
    while head != tail:
        p = queue[head]
        head += 1
        if head == capacity:
            head = 0
        r, c = p // width, p % width
        value = out[r, c]
        for dr in (-1, 0, 1):
            rr = r + dr
            if rr < 0 or rr >= height:
                continue
            for dc in (-1, 0, 1):
                cc = c + dc
                if cc < 0 or cc >= width or (dr == 0 and dc == 0):
                    continue
                if out[rr, cc] < value and mask[rr, cc] != out[rr, cc]:
                    out[rr, cc] = min(value, mask[rr, cc])
                    queue[tail] = rr * width + cc
                    tail += 1
                    if tail == capacity:
                        tail = 0
                    if tail == head:  # full: grow, keeping FIFO order
                        bigger = np.empty(capacity * 2, np.int64)
                        bigger[: capacity - head] = queue[head:]
                        bigger[capacity - head: capacity] = queue[:head]
                        head, tail = 0, capacity
                        queue = bigger
                        capacity *= 2
    return out


@njit(cache=True)
def first_pixels_and_counts(flat: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """For labels 0..n-1 of a flat array: each label's first index (-1 where absent) and count,
    in one pass (``np.unique(..., return_index=True, return_counts=True)`` sorts)."""
    first = np.full(n, -1, np.int64)
    counts = np.zeros(n, np.int64)
    for i in range(flat.size):
        label = flat[i]
        if counts[label] == 0:
            first[label] = i
        counts[label] += 1
    return first, counts
