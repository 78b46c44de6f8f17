"""Region metrics for unsupervised partitions: Rand index, variation of information, covering.

Each metric counts first (the contingency table of two label images) and then reduces. The
definitions follow the BSDS500 benchmark (Arbelaez et al. 2011) so that figures agree with
published ones: label 0 is an ordinary label for the Rand index and the variation of
information, and covering ignores regions labelled 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ._inputs import label_array, same_shape
from ._policy import ratio

__all__ = [
    "adjusted_rand_index",
    "contingency_table",
    "covering",
    "probabilistic_rand_index",
    "rand_f_score",
    "rand_index",
    "variation_of_information",
]


def contingency_table(a: Any, b: Any) -> np.ndarray:
    """Pixel counts ``n[i, j]`` of label ``i`` in ``a`` and label ``j`` in ``b``.

    Rows and columns run over the label values ``0..max`` of each image, so ``n[k]`` is label ``k``
    (rows of absent labels are zero).

    Examples
    --------
    >>> contingency_table(np.array([[0, 1], [1, 1]]), np.array([[2, 2], [0, 2]]))
    array([[0, 0, 1],
           [1, 0, 2]])
    """
    a = label_array(a, "a")
    b = label_array(b, "b")
    same_shape(a, b, "the two label images")
    rows = int(a.max(initial=0)) + 1
    cols = int(b.max(initial=0)) + 1
    if rows * cols <= max(8 * a.size, 1 << 20):
        codes = a.ravel().astype(np.int64) * cols + b.ravel()
        return np.bincount(codes, minlength=rows * cols).reshape(rows, cols)
    # Sparse labels (huge ids): count only the pairs present.
    pairs, counts = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1, return_counts=True)
    table = np.zeros((rows, cols), np.int64)
    table[pairs[0], pairs[1]] = counts
    return table


def _rand_from_table(n: np.ndarray) -> float:
    n = n.astype(np.float64)
    total = n.sum()
    pairs = total * (total - 1) / 2
    if pairs == 0:
        return 1.0
    disagree = ((n.sum(1) ** 2).sum() / 2 + (n.sum(0) ** 2).sum() / 2 - (n**2).sum()) / pairs
    return float(1.0 - disagree)


def rand_index(a: Any, b: Any) -> float:
    """Rand index: the fraction of pixel pairs on which two partitions agree (same or different).

    References
    ----------
    .. [1] W. M. Rand, "Objective criteria for the evaluation of clustering methods", JASA 66, 1971.

    Examples
    --------
    >>> rand_index(np.array([[1, 1], [2, 2]]), np.array([[5, 5], [7, 7]]))
    1.0
    """
    return _rand_from_table(contingency_table(a, b))


def probabilistic_rand_index(segmentation: Any, truths: Sequence[Any]) -> float:
    """Probabilistic Rand index: the Rand index averaged over several human partitions.

    References
    ----------
    .. [1] R. Unnikrishnan, C. Pantofaru, M. Hebert, "Toward objective evaluation of image
           segmentation algorithms", IEEE TPAMI 29(6), 2007.

    Examples
    --------
    >>> seg = np.array([[1, 1], [2, 2]])
    >>> probabilistic_rand_index(seg, [seg, np.ones((2, 2), int)])
    0.6666666666666667
    """
    if len(truths) == 0:
        raise ValueError("probabilistic_rand_index needs at least one truth partition")
    return float(np.mean([rand_index(segmentation, t) for t in truths]))


def _voi_from_table(n: np.ndarray) -> float:
    joint = n.astype(np.float64) / n.sum()
    pa = joint.sum(1)
    pb = joint.sum(0)
    ha = -np.sum(pa[pa > 0] * np.log2(pa[pa > 0]))
    hb = -np.sum(pb[pb > 0] * np.log2(pb[pb > 0]))
    rows, cols = np.nonzero(joint)
    p = joint[rows, cols]
    mutual = np.sum(p * np.log2(p / (pa[rows] * pb[cols])))
    return float(max(ha + hb - 2 * mutual, 0.0))


def variation_of_information(a: Any, b: Any) -> float:
    """Variation of information ``H(A|B) + H(B|A)`` in bits (0 for identical partitions).

    References
    ----------
    .. [1] M. Meila, "Comparing clusterings: an axiomatic view", ICML 2005.

    Examples
    --------
    >>> variation_of_information(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 1]]))
    1.0
    """
    return _voi_from_table(contingency_table(a, b))


def adjusted_rand_index(a: Any, b: Any) -> float:
    """Rand index corrected for chance (Hubert and Arabie): 0 for random labels, 1 for identical.

    References
    ----------
    .. [1] L. Hubert, P. Arabie, "Comparing partitions", Journal of Classification 2, 1985.

    Examples
    --------
    >>> adjusted_rand_index(np.array([[0, 0, 1, 1]]), np.array([[1, 1, 0, 0]]))
    1.0
    """
    n = contingency_table(a, b).astype(np.float64)

    def comb2(x: np.ndarray | float) -> Any:
        return x * (x - 1) / 2

    index = comb2(n).sum()
    rows = comb2(n.sum(1)).sum()
    cols = comb2(n.sum(0)).sum()
    total = comb2(n.sum())
    expected = rows * cols / total if total else 0.0
    best = (rows + cols) / 2
    if best == expected:
        return 1.0
    return float((index - expected) / (best - expected))


def overlap_matrix(segmentation: Any, truth: Any) -> np.ndarray:
    """IoU of every region of ``segmentation`` (rows) with every region of ``truth`` (columns).

    Rows and columns are labels ``1..max``; label 0 is not a region, but its pixels still count in
    the union, as in the BSDS benchmark.
    """
    return _iou_from_table(contingency_table(segmentation, truth))


def _iou_from_table(n: np.ndarray) -> np.ndarray:
    n = n.astype(np.float64)
    union = n.sum(1)[:, None] + n.sum(0)[None, :] - n
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, n / union, 0.0)
    return iou[1:, 1:]


def covering(segmentation: Any, truths: Any | Sequence[Any]) -> float:
    """Segmentation covering of the truth by ``segmentation``: area-weighted best IoU.

    Each truth region finds the predicted region that overlaps it best; the covering is the mean of
    those IoUs weighted by the truth regions' areas, pooled over all truth partitions.

    References
    ----------
    .. [1] P. Arbelaez, M. Maire, C. Fowlkes, J. Malik, "Contour detection and hierarchical image
           segmentation", IEEE TPAMI 33(5), 2011.

    Examples
    --------
    >>> covering(np.array([[1, 1, 2, 2]]), np.array([[1, 1, 1, 1]]))
    0.5
    """
    if isinstance(truths, (list, tuple)):
        truth_list = list(truths)
    else:
        truth_list = [truths]
    covered = area = 0.0
    for truth in truth_list:
        counts = region_cover_counts(segmentation, truth)
        covered += counts[0]
        area += counts[1]
    return ratio(covered, area)


def region_cover_counts(segmentation: Any, truth: Any) -> tuple[float, float, np.ndarray]:
    """``(sum of area x best IoU, total area, best IoU per truth region)`` of one truth partition."""
    truth_labels = label_array(truth, "truth")
    iou = overlap_matrix(segmentation, truth_labels)
    areas = np.bincount(truth_labels.ravel().astype(np.intp))[1:].astype(np.float64)
    best = iou.max(axis=0) if iou.shape[0] else np.zeros(iou.shape[1])
    return float((areas * best).sum()), float(areas.sum()), best


def rand_f_score(segmentation: Any, truth: Any) -> float:
    """Foreground-restricted Rand F-score (SNEMI3D and ISBI 2012's V_rand, without border thinning).

    Only pixels inside truth objects (truth label > 0) count. The score is the F-measure of the
    Rand split score (pairs of pixels together in the segmentation that the truth keeps together)
    and the Rand merge score; segmentation pixels labelled 0 count as their own singletons, so a
    predicted boundary inside an object costs a little and never merges. 1 is perfect;
    1 - score is the "adapted Rand error".

    References
    ----------
    .. [1] I. Arganda-Carreras et al., "Crowdsourcing the creation of image segmentation algorithms
           for connectomics", Frontiers in Neuroanatomy 9, 2015.

    Examples
    --------
    >>> truth = np.array([[1, 1, 0, 2, 2]])
    >>> rand_f_score(truth, truth)
    1.0
    >>> round(rand_f_score(np.array([[1, 1, 0, 1, 1]]), truth), 3)  # the two objects merged
    0.667
    """
    n = contingency_table(segmentation, truth).astype(np.float64)
    total = n.sum()
    if total == 0:
        return 1.0
    inside = n[:, 1:]  # truth foreground only
    both = inside[1:, :]  # and segmented foreground
    singles = inside[0, :].sum() / total  # segmentation background inside truth objects
    sum_truth = float((inside.sum(0) ** 2).sum())
    sum_seg = float((both.sum(1) ** 2).sum()) + singles
    sum_both = float((both**2).sum()) + singles
    if sum_truth == 0 or sum_seg == 0:
        return float("nan")  # no foreground to agree on: undefined (see metrics._policy)
    precision, recall = sum_both / sum_seg, sum_both / sum_truth
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0
