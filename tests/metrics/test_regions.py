"""Region metrics: hand cases, invariants, and the boundary helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segscope.metrics import (
    adjusted_rand_index,
    boundary_counts,
    boundary_iou,
    correspond_pixels,
    covering,
    evaluate,
    label_boundaries,
    probabilistic_rand_index,
    rand_index,
    variation_of_information,
)

labels = arrays(np.int64, st.tuples(st.integers(1, 10), st.integers(1, 10)), elements=st.integers(0, 5))


@settings(max_examples=60, deadline=None)
@given(labels, st.data())
def test_identity_symmetry_and_relabelling(a, data):
    b = data.draw(arrays(np.int64, a.shape, elements=st.integers(0, 5)))
    perm = np.array(data.draw(st.permutations(range(6)))) + 1
    assert rand_index(a, a) == 1.0
    assert variation_of_information(a, a) == pytest.approx(0.0, abs=1e-12)
    assert rand_index(a, b) == pytest.approx(rand_index(b, a))
    assert variation_of_information(a, b) == pytest.approx(variation_of_information(b, a))
    # Only the partition matters, not the label values.
    assert rand_index(perm[a], b) == pytest.approx(rand_index(a, b))
    assert variation_of_information(perm[a], b) == pytest.approx(variation_of_information(a, b))
    assert 0 <= rand_index(a, b) <= 1
    assert 0 <= covering(a + 1, b + 1) <= 1


def test_hand_cases():
    a = np.array([[1, 1, 2, 2]])
    one = np.ones((1, 4), int)
    # Pairs: 6; a splits 4 of them that `one` keeps together.
    assert rand_index(a, one) == pytest.approx(2 / 6)
    assert variation_of_information(a, one) == pytest.approx(1.0)  # H(a) = 1 bit
    assert probabilistic_rand_index(a, [a, one]) == pytest.approx((1 + 2 / 6) / 2)
    assert adjusted_rand_index(a, np.array([[5, 5, 3, 3]])) == 1.0
    assert covering(a, one) == pytest.approx(0.5)
    assert covering(one, a) == pytest.approx(0.5)


def test_region_report():
    truth = np.array([[1, 1, 2, 2]])
    report = evaluate(np.array([[1, 1, 1, 1]]), [truth, truth], task="regions")
    assert report["covering"] == pytest.approx(0.5)
    assert report["regions"] == 1


def test_label_boundaries_mark_every_label_change():
    seg = np.zeros((6, 6), int)
    seg[:, 3:] = 1
    b = label_boundaries(seg)
    assert b[:, 2].all() and b.sum() == 6


def test_correspond_pixels_is_one_to_one():
    a = np.zeros((20, 20), bool)
    a[10, 2:18] = True
    b = np.zeros((20, 20), bool)
    b[11, 2:10] = True
    m1, m2 = correspond_pixels(a, b, max_dist=0.05)  # 1.4 pixels on this 20x20 image
    assert m1.sum() == m2.sum() == 8  # each human pixel takes one machine pixel
    far = np.zeros((20, 20), bool)
    far[0, 0] = True
    m1, m2 = correspond_pixels(a, far, max_dist=0.05)
    assert m1.sum() == m2.sum() == 0
    counts = boundary_counts(a, [b, b], max_dist=0.05)
    assert counts.recall == 1.0 and counts.precision == pytest.approx(8 / 16)


def test_boundary_iou():
    m = np.zeros((50, 50), bool)
    m[10:40, 10:40] = True
    shifted = np.roll(m, 3, axis=1)
    assert boundary_iou(m, m) == 1.0
    assert 0 < boundary_iou(m, shifted) < 1
    assert boundary_iou(np.zeros_like(m), np.zeros_like(m)) == 1.0
    with pytest.raises(ValueError, match="differ in shape"):
        boundary_iou(m, m[:10])


def test_rand_f_score_hand_cases():
    from segscope.metrics import rand_f_score

    truth = np.array([[1, 1, 1, 1, 0, 2, 2]])
    assert rand_f_score(truth, truth) == 1.0
    # Splitting object 1 in two halves: merge score 1, split score (4 + 4 + 4) / (16 + 4) = 0.6.
    split = np.array([[1, 1, 3, 3, 0, 2, 2]])
    assert rand_f_score(split, truth) == pytest.approx(2 * 0.6 / 1.6)
    # Background outside truth objects is not scored at all.
    assert rand_f_score(np.array([[1, 1, 1, 1, 5, 2, 2]]), truth) == 1.0
