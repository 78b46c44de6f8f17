"""Surface distances (HD95, ASSD) in 2-D and 3-D with voxel spacing: known shapes, a brute-force
reference, and MONAI where it is installed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import cdist

from segscope.metrics.surface import (
    average_surface_distance,
    hausdorff_distance,
    mask_border,
    surface_distances,
)


def _ball(shape: tuple[int, ...], centre: tuple[float, ...], radius: float) -> np.ndarray:
    grids = np.indices(shape)
    return sum((g - c) ** 2 for g, c in zip(grids, centre, strict=True)) <= radius**2


def test_concentric_spheres_are_their_radii_apart():
    outer = _ball((40, 40, 40), (20, 20, 20), 12)
    inner = _ball((40, 40, 40), (20, 20, 20), 8)
    # Voxel borders of digital spheres lie within a voxel of the true spheres.
    assert hausdorff_distance(inner, outer, percentile=100) == pytest.approx(4, abs=1.0)
    assert average_surface_distance(inner, outer) == pytest.approx(4, abs=0.5)


def test_a_shifted_cube_is_the_shift_apart_in_physical_units():
    cube = np.zeros((20, 20, 24), bool)
    cube[5:15, 5:15, 5:15] = True
    shifted = np.roll(cube, 3, axis=2)
    spacing = (2.0, 1.0, 0.5)
    # The farthest border voxels are the faces across the shift: 3 voxels of 0.5.
    assert hausdorff_distance(shifted, cube, percentile=100, spacing=spacing) == pytest.approx(1.5)
    assert hausdorff_distance(cube, cube, spacing=spacing) == 0.0
    found = surface_distances(shifted, cube, spacing=spacing)
    assert found.prediction_to_truth.max() == pytest.approx(1.5)
    assert found.truth_to_prediction.max() == pytest.approx(1.5)


def test_an_empty_mask_has_no_surface_distance():
    cube = np.zeros((6, 6, 6), bool)
    cube[2:4, 2:4, 2:4] = True
    empty = np.zeros_like(cube)
    assert np.isnan(hausdorff_distance(cube, empty)) and np.isnan(average_surface_distance(empty, cube))
    assert not surface_distances(empty, empty).defined


def test_bad_spacing_and_shapes_are_refused():
    mask = np.ones((4, 4), bool)
    with pytest.raises(ValueError, match="one positive size per axis"):
        hausdorff_distance(mask, mask, spacing=(1.0, 0.0))
    with pytest.raises(ValueError, match="one positive size per axis"):
        hausdorff_distance(mask, mask, spacing=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        hausdorff_distance(np.ones(4, bool), np.ones(4, bool))


def _brute_force(a: np.ndarray, b: np.ndarray, spacing: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Directed border distances by comparing every pair of border voxels (an independent path:
    no distance transform)."""
    pa = np.argwhere(mask_border(a)) * np.asarray(spacing)
    pb = np.argwhere(mask_border(b)) * np.asarray(spacing)
    d = cdist(pa, pb)
    return d.min(axis=1), d.min(axis=0)


@settings(max_examples=40, deadline=None)
@given(data=st.data(), ndim=st.sampled_from([2, 3]))
def test_distances_equal_a_brute_force_reference(data, ndim):
    shape = (7, 8, 6)[:ndim] if ndim == 3 else (12, 13)
    a = data.draw(hnp.arrays(bool, shape))
    b = data.draw(hnp.arrays(bool, shape))
    spacing = tuple(data.draw(st.sampled_from([0.5, 1.0, 2.5])) for _ in range(ndim))
    if not a.any() or not b.any():
        assert np.isnan(hausdorff_distance(a, b, spacing=spacing))
        return
    ab, ba = _brute_force(a, b, spacing)
    found = surface_distances(a, b, spacing=spacing)
    assert np.allclose(np.sort(found.prediction_to_truth), np.sort(ab))
    assert np.allclose(np.sort(found.truth_to_prediction), np.sort(ba))
    assert hausdorff_distance(a, b, spacing=spacing) == pytest.approx(
        max(np.percentile(ab, 95), np.percentile(ba, 95)))
    assert average_surface_distance(a, b, spacing=spacing) == pytest.approx(
        np.concatenate([ab, ba]).mean())


def test_figures_equal_monai_where_it_is_installed():
    monai_metrics = pytest.importorskip("monai.metrics", reason="MONAI is in the [bench] extra")
    import torch

    rng = np.random.default_rng(0)
    truth = _ball((24, 28, 20), (12, 14, 10), 7)
    prediction = _ball((24, 28, 20), (13, 12, 10), 6) | (rng.random((24, 28, 20)) > 0.995)
    spacing = (1.5, 1.0, 0.8)

    def batch(mask: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([~mask, mask]))[None].float()

    hd = monai_metrics.compute_hausdorff_distance(batch(prediction), batch(truth), percentile=95,
                                                  spacing=spacing)
    assd = monai_metrics.compute_average_surface_distance(batch(prediction), batch(truth), symmetric=True,
                                                          spacing=spacing)
    assert hausdorff_distance(prediction, truth, spacing=spacing) == pytest.approx(float(hd[0, 0]), rel=1e-5)
    assert average_surface_distance(prediction, truth, spacing=spacing) == pytest.approx(
        float(assd[0, 0]), rel=1e-5)


def test_dice_and_iou_per_class_count_voxels_in_volumes():
    from segscope.metrics import Evaluator

    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, (6, 7, 8))
    prediction = np.where(rng.random(truth.shape) < 0.8, truth, rng.integers(0, 3, truth.shape))
    evaluator = Evaluator(task="semantic", num_classes=3)
    evaluator.update(prediction, truth)
    report = evaluator.compute()
    for k in range(3):
        tp = np.sum((prediction == k) & (truth == k))
        both = np.sum(prediction == k) + np.sum(truth == k)
        assert report.per_class[str(k)]["dice"] == pytest.approx(2 * tp / both)
        assert report.per_class[str(k)]["iou"] == pytest.approx(tp / (both - tp))


def test_per_case_scores_average_over_cases_then_classes():
    from segscope.metrics import class_scores, mean_over_cases

    rng = np.random.default_rng(5)
    truths = [rng.integers(0, 3, (5, 6, 7)) for _ in range(3)]
    truths[2][truths[2] == 2] = 0  # class 2 absent from one case: its HD95 there is undefined
    predictions = [np.where(rng.random(t.shape) < 0.7, t, rng.integers(0, 3, t.shape)) for t in truths]
    cases = [class_scores(p, t, num_classes=3, spacing=(2.0, 1.0, 1.0))
             for p, t in zip(predictions, truths, strict=True)]
    out = mean_over_cases(cases, ["a", "b"])
    assert list(out) == ["dice_a", "hd95_a", "dice_b", "hd95_b", "mean_dice", "mean_hd95"]
    for c, name in ((1, "a"), (2, "b")):
        dice = [2 * np.sum((p == c) & (t == c)) / (np.sum(p == c) + np.sum(t == c))
                for p, t in zip(predictions, truths, strict=True)]
        assert out[f"dice_{name}"] == pytest.approx(np.mean(dice))
        hd = [h for h in (case[c]["hd95"] for case in cases) if not np.isnan(h)]
        assert out[f"hd95_{name}"] == pytest.approx(np.mean(hd))
    assert len([case[2]["hd95"] for case in cases if not np.isnan(case[2]["hd95"])]) == 2
    assert out["mean_dice"] == pytest.approx((out["dice_a"] + out["dice_b"]) / 2)
    with pytest.raises(ValueError, match="no cases"):
        mean_over_cases([], ["a"])
