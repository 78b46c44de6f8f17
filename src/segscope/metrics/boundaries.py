"""Boundary metrics: BSDS boundary matching, precision, recall and F-measure, and Boundary IoU.

The BSDS boundary benchmark (Martin, Fowlkes and Malik 2004) thins the machine boundaries and then
matches machine and human boundary pixels one to one: two pixels may correspond when they lie
within ``max_dist`` of the image diagonal, and the correspondence with the most matches and,
among those, the least total distance is chosen. We solve that assignment exactly with SciPy's
sparse linear assignment, on the same integer costs (hundredths of a pixel) as the benchmark.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components, min_weight_full_bipartite_matching
from scipy.spatial import cKDTree

from ._inputs import label_array, same_shape

__all__ = [
    "BoundaryCounts",
    "BoundaryMatch",
    "boundary_counts",
    "boundary_iou",
    "boundary_matches",
    "correspond_pixels",
    "label_boundaries",
]

# The BSDS benchmark's tolerance: 0.75 % of the image diagonal.
BSDS_MAX_DIST = 0.0075


def label_boundaries(labels: Any) -> np.ndarray:
    """Boundary pixels of a label image, exactly as the BSDS benchmark's ``seg2bdry`` draws them.

    A pixel is on a boundary when its label differs from the pixel below or to the right of it,
    or when such a difference meets its lower-right corner, so boundaries are one pixel thick and
    lie on the upper-left side of each edge.

    Examples
    --------
    >>> label_boundaries(np.array([[1, 1, 2], [1, 1, 2], [3, 3, 3]])).astype(int)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 0, 0]])
    """
    seg = label_array(labels, "labels")
    rows, cols = seg.shape
    down = np.zeros((rows, cols), bool)
    right = np.zeros((rows, cols), bool)
    down[:-1] = seg[:-1] != seg[1:]
    right[:, :-1] = seg[:, :-1] != seg[:, 1:]
    # Drawn at doubled resolution (edgels between pixels, corners where edgels meet), the borders
    # copied inwards, then the corner grid sampled: the benchmark's exact construction.
    double = np.zeros((2 * rows + 1, 2 * cols + 1), bool)
    double[2::2, 1::2] = down
    double[1::2, 2::2] = right
    double[2:-1:2, 2:-1:2] = right[:-1, :-1] | right[1:, :-1] | down[:-1, :-1] | down[:-1, 1:]
    double[0] = double[1]
    double[:, 0] = double[:, 1]
    double[-1] = double[-2]
    double[:, -1] = double[:, -2]
    return double[2::2, 2::2]


def correspond_pixels(
    machine: np.ndarray, human: np.ndarray, *, max_dist: float = BSDS_MAX_DIST
) -> tuple[np.ndarray, np.ndarray]:
    """Match boundary pixels of two maps one to one within ``max_dist`` of the image diagonal.

    Returns two boolean maps: the machine pixels that found a partner, and the human pixels that
    did. The matching has the largest possible number of pairs and, among those, the smallest
    total distance (distances rounded to hundredths of a pixel, as in the BSDS benchmark's
    ``correspondPixels``).

    References
    ----------
    .. [1] D. Martin, C. Fowlkes, J. Malik, "Learning to detect natural image boundaries using
           local brightness, color, and texture cues", IEEE TPAMI 26(5), 2004.

    Examples
    --------
    >>> a = np.zeros((5, 5), bool); a[2, :] = True
    >>> b = np.zeros((5, 5), bool); b[3, :3] = True
    >>> m1, m2 = correspond_pixels(a, b, max_dist=0.2)
    >>> int(m1.sum()), int(m2.sum())
    (3, 3)
    """
    machine = np.asarray(machine, bool)
    human = np.asarray(human, bool)
    same_shape(machine, human, "the two boundary maps")
    if not max_dist >= 0:
        raise ValueError(f"max_dist must be non-negative, got {max_dist}")
    rows, cols = machine.shape
    radius = max_dist * float(np.hypot(rows, cols))
    matched1 = np.zeros_like(machine)
    matched2 = np.zeros_like(human)
    p1 = np.argwhere(machine)
    p2 = np.argwhere(human)
    if len(p1) == 0 or len(p2) == 0:
        return matched1, matched2
    pairs = cKDTree(p1).sparse_distance_matrix(cKDTree(p2), radius, output_type="ndarray")
    if len(pairs) == 0:
        return matched1, matched2
    # Integer costs in hundredths of a pixel, as the benchmark's CSA solver uses.
    cost = np.rint(pairs["v"] * 100).astype(np.int64)
    i_pixels, i_index = np.unique(pairs["i"], return_inverse=True)
    j_pixels, j_index = np.unique(pairs["j"], return_inverse=True)
    n1, n2 = len(i_pixels), len(j_pixels)
    # Split the bipartite graph into independent pieces; each is a small assignment problem.
    graph = sparse.coo_matrix((np.ones(len(cost)), (i_index, n1 + j_index)), shape=(n1 + n2, n1 + n2))
    _, component = connected_components(graph, directed=False)
    order = np.argsort(component[i_index], kind="stable")
    edge_component = component[i_index][order]
    bounds = np.flatnonzero(np.diff(edge_component)) + 1
    for block in np.split(order, bounds):
        bi, bj = i_index[block], j_index[block]
        ui, li = np.unique(bi, return_inverse=True)
        uj, lj = np.unique(bj, return_inverse=True)
        pick_i, pick_j = _max_match_min_cost(li, lj, cost[block], len(ui), len(uj))
        a = p1[i_pixels[ui[pick_i]]]
        b = p2[j_pixels[uj[pick_j]]]
        matched1[a[:, 0], a[:, 1]] = True
        matched2[b[:, 0], b[:, 1]] = True
    return matched1, matched2


def _max_match_min_cost(
    i: np.ndarray, j: np.ndarray, cost: np.ndarray, n1: int, n2: int
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-cardinality, then minimum-cost matching, as one perfect assignment.

    Each node may instead take its own "outlier" partner at a cost larger than any saving a real
    pair could bring, so every extra real pair is worth more than any distance. Outlier partners
    of two nodes that could have been matched may pair with each other, which keeps the problem
    perfect-matchable whatever subset of real pairs is chosen.
    """
    if len(cost) == 1:
        return np.array([i[0]]), np.array([j[0]])
    outlier = int(cost.max()) * (n1 + n2) + 1
    # Rows: n1 machine nodes, then n2 outlier rows; columns: n2 human nodes, then n1 outlier columns.
    rows = np.concatenate([i, np.arange(n1), n1 + j, n1 + np.arange(n2)])
    cols = np.concatenate([j, n2 + np.arange(n1), n2 + i, np.arange(n2)])
    # +1 keeps every weight strictly positive (a stored zero would read as no edge); it adds the
    # same constant to every perfect assignment, so the optimum is unchanged.
    weights = np.concatenate([cost + 1, np.full(n1, outlier), np.full(len(i), outlier), np.full(n2, outlier)])
    size = n1 + n2
    matrix = sparse.csr_matrix((weights.astype(np.float64), (rows, cols)), shape=(size, size))
    row_ind, col_ind = min_weight_full_bipartite_matching(matrix)
    real = (row_ind < n1) & (col_ind < n2)
    return row_ind[real], col_ind[real]


@dataclass(frozen=True)
class BoundaryCounts:
    """Counts for boundary precision and recall, pooled over annotators as BSDS does.

    ``matched_truth`` over ``truth_pixels`` is recall (each annotator's pixels count);
    ``matched_machine`` over ``machine_pixels`` is precision (a machine pixel counts as matched if
    it matched any annotator).
    """

    matched_truth: int
    truth_pixels: int
    matched_machine: int
    machine_pixels: int

    @property
    def recall(self) -> float:
        return self.matched_truth / self.truth_pixels if self.truth_pixels else 0.0

    @property
    def precision(self) -> float:
        return self.matched_machine / self.machine_pixels if self.machine_pixels else 0.0

    @property
    def f_measure(self) -> float:
        return f_measure(self.recall, self.precision)


def f_measure(recall: Any, precision: Any) -> Any:
    """Harmonic mean of recall and precision (0 where both are 0), element-wise."""
    r = np.asarray(recall, np.float64)
    p = np.asarray(precision, np.float64)
    total = p + r
    value = 2 * p * r / np.where(total == 0, 1.0, total)
    return float(value) if value.ndim == 0 else value


def boundary_counts(
    machine: np.ndarray,
    truths: Sequence[np.ndarray],
    *,
    max_dist: float = BSDS_MAX_DIST,
    thin: bool = True,
) -> BoundaryCounts:
    """Match a machine boundary map against each human boundary map; count as BSDS does.

    Parameters
    ----------
    machine : (H, W) bool ndarray
        Machine boundaries, for example a soft boundary map thresholded, or
        :func:`label_boundaries` of a segmentation.
    truths : sequence of (H, W) bool ndarray
        One boundary map per annotator.
    max_dist : float
        Matching tolerance as a fraction of the image diagonal.
    thin : bool
        Thin ``machine`` to one-pixel-wide lines first, as the benchmark does.

    Examples
    --------
    >>> b = np.zeros((9, 9), bool); b[4] = True
    >>> boundary_counts(b, [b, b]).recall
    1.0
    """
    return boundary_matches(machine, truths, max_dist=max_dist, thin=thin).counts


@dataclass(frozen=True)
class BoundaryMatch:
    """The counts of :func:`boundary_counts` with the maps they come from (for error pictures)."""

    counts: BoundaryCounts
    machine: np.ndarray  # the (thinned) machine boundaries that were matched
    matched_machine: np.ndarray  # machine pixels that matched any annotator
    matched_truth: np.ndarray  # truth pixels (any annotator) that found a partner
    truth: np.ndarray  # union of the annotators' boundaries


def boundary_matches(
    machine: np.ndarray, truths: Sequence[np.ndarray], *, max_dist: float = BSDS_MAX_DIST, thin: bool = True
) -> BoundaryMatch:
    """:func:`boundary_counts`, keeping the matched pixel maps as well."""
    from skimage.morphology import thin as thin_lines

    machine = np.asarray(machine, bool)
    if thin:
        machine = thin_lines(machine)
    matched_any = np.zeros_like(machine)
    matched_human = np.zeros_like(machine)
    human = np.zeros_like(machine)
    matched_truth = truth_pixels = 0
    for truth in truths:
        truth = np.asarray(truth, bool)
        m1, m2 = correspond_pixels(machine, truth, max_dist=max_dist)
        matched_any |= m1
        matched_human |= m2
        human |= truth
        matched_truth += int(m2.sum())
        truth_pixels += int(truth.sum())
    counts = BoundaryCounts(matched_truth, truth_pixels, int(matched_any.sum()), int(machine.sum()))
    return BoundaryMatch(counts, machine, matched_any, matched_human, human)


def boundary_iou(prediction: Any, truth: Any, *, dilation_ratio: float = 0.02) -> float:
    """Boundary IoU of two binary masks (Cheng et al. 2021).

    The IoU of the two masks restricted to the band within ``d`` pixels of each mask's own contour,
    ``d = dilation_ratio`` times the image diagonal (at least 1 pixel).

    References
    ----------
    .. [1] B. Cheng, R. Girshick, P. Dollar, A. C. Berg, A. Kirillov, "Boundary IoU: Improving
           object-centric image segmentation evaluation", CVPR 2021.

    Examples
    --------
    >>> m = np.zeros((20, 20), bool); m[5:15, 5:15] = True
    >>> boundary_iou(m, m)
    1.0
    """
    import cv2

    a = np.asarray(prediction, bool)
    b = np.asarray(truth, bool)
    same_shape(a, b, "prediction and truth masks")
    d = max(1, round(dilation_ratio * float(np.hypot(*a.shape))))
    band_a = a & ~_eroded(a, d, cv2)
    band_b = b & ~_eroded(b, d, cv2)
    union = (band_a | band_b).sum()
    if union == 0:
        return 1.0 if not a.any() and not b.any() else 0.0
    return float((band_a & band_b).sum() / union)


def _eroded(mask: np.ndarray, d: int, cv2: Any) -> np.ndarray:
    # Padding with zeros makes the image border a contour too, as in the reference implementation.
    padded = cv2.copyMakeBorder(mask.astype(np.uint8), 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    kernel = np.ones((3, 3), np.uint8)
    eroded = cv2.erode(padded, kernel, iterations=d)
    return eroded[1:-1, 1:-1].astype(bool)
