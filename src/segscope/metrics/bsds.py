"""The BSDS500 benchmark protocol: boundaries and regions over a sweep of thresholds or scales.

A method is scored over a *sweep*: a soft boundary map at several thresholds, an ultrametric
contour map (UCM) cut at several levels, or several segmentations (for example one per scale
parameter). For each image and each step the benchmark counts, then pools:

* ODS (optimal dataset scale): one step for the whole dataset, chosen on the pooled counts;
* OIS (optimal image scale): each image at its own best step;
* AP: area under the pooled precision-recall curve (boundaries).

Counting and reduction follow the official benchmark code (Arbelaez et al. 2011) step for step,
including its linear interpolation between thresholds when it picks the best F-measure, so the
figures reproduce the benchmark's own known-answer files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from ..groundtruth import BsdsGroundTruth
from ._inputs import label_array
from .boundaries import BSDS_MAX_DIST, boundary_counts, f_measure, label_boundaries
from .regions import _iou_from_table, _rand_from_table, _voi_from_table, contingency_table

__all__ = [
    "BsdsImageCounts",
    "BsdsSummary",
    "SweepStep",
    "bsds_image",
    "bsds_summary",
    "sweep_segmentations",
    "sweep_soft_boundaries",
    "sweep_ucm",
]


@dataclass(frozen=True)
class SweepStep:
    """One step of a sweep: its threshold (or scale), its boundary map and its partition."""

    threshold: float
    boundaries: np.ndarray | None
    labels: np.ndarray | None


def _thresholds(count: int) -> np.ndarray:
    if count < 1:
        raise ValueError(f"a sweep needs at least one threshold, got {count}")
    # The benchmark's thresholds: evenly spaced strictly inside (0, 1).
    return np.linspace(1 / (count + 1), 1 - 1 / (count + 1), count)


def sweep_soft_boundaries(soft: np.ndarray, thresholds: int = 99) -> list[SweepStep]:
    """Threshold a soft boundary map in [0, 1] at ``thresholds`` evenly spaced levels."""
    soft = np.asarray(soft, np.float64)
    return [SweepStep(float(t), soft >= t, None) for t in _thresholds(thresholds)]


def sweep_ucm(ucm2: np.ndarray, thresholds: int = 99) -> list[SweepStep]:
    """Cut an ultrametric contour map at doubled resolution (BSDS ``ucm2``) at several levels.

    Regions are the 8-connected components of ``ucm2 <= t`` sampled at the pixel centres; the soft
    boundary map is ``ucm2[2::2, 2::2]``.
    """
    ucm2 = np.asarray(ucm2, np.float64)
    if ucm2.ndim != 2 or ucm2.shape[0] % 2 == 0 or ucm2.shape[1] % 2 == 0:
        raise ValueError(f"a ucm2 map has odd sides (2H+1, 2W+1), got shape {ucm2.shape}")
    soft = ucm2[2::2, 2::2]
    steps = []
    eight = np.ones((3, 3), bool)
    for t in _thresholds(thresholds):
        labels, _ = ndimage.label(ucm2 <= t, structure=eight)
        steps.append(SweepStep(float(t), soft >= t, labels[1::2, 1::2].astype(np.int32)))
    return steps


def sweep_segmentations(segmentations: Sequence[Any]) -> list[SweepStep]:
    """One step per segmentation (label images or results), numbered 1, 2, ... as in the benchmark."""
    steps = []
    for k, seg in enumerate(segmentations, start=1):
        labels = label_array(seg, f"segmentation {k}")
        steps.append(SweepStep(float(k), label_boundaries(labels), labels))
    return steps


@dataclass
class BsdsImageCounts:
    """Per-step counts of one image (arrays have one entry per sweep step)."""

    thresholds: np.ndarray
    # Boundaries: matched truth pixels, truth pixels, matched machine pixels, machine pixels.
    boundary: np.ndarray | None = None
    # Covering: covered truth area, truth area, covered machine area, machine area.
    cover: np.ndarray | None = None
    # Best IoU of each truth region over all steps, weighted by area (covering at its best step).
    cover_best: float = 0.0
    rand_index: np.ndarray | None = None
    variation_of_information: np.ndarray | None = None


def bsds_image(
    steps: Sequence[SweepStep],
    truth: BsdsGroundTruth,
    *,
    boundaries: bool = True,
    regions: bool = True,
    max_dist: float = BSDS_MAX_DIST,
) -> BsdsImageCounts:
    """Count one image's sweep against its annotators (``evaluation_bdry_image`` and ``_reg_image``)."""
    if not steps:
        raise ValueError("the sweep is empty")
    truth_labels = [s.labels for s in truth.segmentations]
    result = BsdsImageCounts(np.array([s.threshold for s in steps]))
    if boundaries:
        counts = np.zeros((len(steps), 4), np.int64)
        for k, step in enumerate(steps):
            if step.boundaries is None:
                raise ValueError(f"sweep step {k + 1} has no boundary map")
            c = boundary_counts(step.boundaries, truth.boundaries, max_dist=max_dist)
            counts[k] = (c.matched_truth, c.truth_pixels, c.matched_machine, c.machine_pixels)
        result.boundary = counts
    if regions:
        cover = np.zeros((len(steps), 4))
        ri = np.zeros(len(steps))
        voi = np.zeros(len(steps))
        truth_areas = np.concatenate(
            [np.bincount(t.ravel().astype(np.intp))[1:] for t in truth_labels]
        ).astype(np.float64)
        best_truth = np.zeros(len(truth_areas))
        for k, step in enumerate(steps):
            if step.labels is None:
                raise ValueError(f"sweep step {k + 1} has no partition")
            seg = step.labels
            # One contingency table per annotator serves all three measures.
            tables = [contingency_table(seg, t) for t in truth_labels]
            ri[k] = np.mean([_rand_from_table(n) for n in tables])
            voi[k] = np.mean([_voi_from_table(n) for n in tables])
            iou = np.concatenate([_iou_from_table(n) for n in tables], axis=1)
            best_seg = iou.max(axis=1) if iou.shape[1] else np.zeros(iou.shape[0])
            best_gt = iou.max(axis=0) if iou.shape[0] else np.zeros(iou.shape[1])
            seg_areas = np.bincount(seg.ravel().astype(np.intp))[1:].astype(np.float64)
            cover[k] = (
                (truth_areas * best_gt).sum(),
                truth_areas.sum(),
                (seg_areas * best_seg).sum(),
                seg_areas.sum(),
            )
            best_truth = np.maximum(best_truth, best_gt)
        result.cover = cover
        result.cover_best = float((truth_areas * best_truth).sum())
        result.rand_index = ri
        result.variation_of_information = voi
    return result


@dataclass
class BsdsSummary:
    """Dataset figures of the BSDS protocol, with the per-threshold curves they come from."""

    thresholds: np.ndarray
    boundary: dict[str, float] = field(default_factory=dict)
    boundary_curve: np.ndarray | None = None  # per step: recall, precision, F
    boundary_per_image: np.ndarray | None = None  # per image: best threshold, R, P, F
    covering: dict[str, float] = field(default_factory=dict)
    covering_curve: np.ndarray | None = None
    covering_per_image: np.ndarray | None = None  # per image: best threshold, covering, reverse covering
    rand_voi: dict[str, float] = field(default_factory=dict)
    rand_voi_curve: np.ndarray | None = None  # per step: PRI, VOI

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.boundary:
            out["boundary"] = dict(self.boundary)
        if self.covering:
            out["covering"] = dict(self.covering)
        if self.rand_voi:
            out["rand_voi"] = dict(self.rand_voi)
        return out


def _best_f(thresholds: np.ndarray, r: np.ndarray, p: np.ndarray) -> tuple[float, float, float, float]:
    """The benchmark's ``maxF``: the best F on the curve, interpolating 100 points between steps."""
    best = (float(thresholds[0]), float(r[0]), float(p[0]), float(f_measure(r[0], p[0])))
    d = np.linspace(0, 1, 100)
    for k in range(1, len(thresholds)):
        t = thresholds[k] * d + thresholds[k - 1] * (1 - d)
        rr = r[k] * d + r[k - 1] * (1 - d)
        pp = p[k] * d + p[k - 1] * (1 - d)
        f = f_measure(rr, pp)
        top = int(np.argmax(f))
        if f[top] > best[3]:
            best = (float(t[top]), float(rr[top]), float(pp[top]), float(f[top]))
    return best


def _ratio(count: np.ndarray, total: np.ndarray) -> np.ndarray:
    return count / np.where(total == 0, 1, total)


def bsds_summary(images: Sequence[BsdsImageCounts]) -> BsdsSummary:
    """Pool per-image counts into ODS, OIS and AP, as ``collect_eval_bdry`` and ``_reg`` do."""
    if not images:
        raise ValueError("no images to summarise")
    thresholds = images[0].thresholds
    for k, image in enumerate(images):
        if len(image.thresholds) != len(thresholds):
            raise ValueError(
                f"image {k + 1} has {len(image.thresholds)} sweep steps, the first has {len(thresholds)}"
            )
    summary = BsdsSummary(thresholds)
    if all(image.boundary is not None for image in images):
        _summarise_boundaries(summary, images)
    if all(image.cover is not None for image in images):
        _summarise_regions(summary, images)
    return summary


def _summarise_boundaries(summary: BsdsSummary, images: Sequence[BsdsImageCounts]) -> None:
    thresholds = summary.thresholds
    total = np.zeros((len(thresholds), 4))
    best_total = np.zeros(4)
    per_image = []
    for image in images:
        counts = np.asarray(image.boundary, np.float64)
        r = _ratio(counts[:, 0], counts[:, 1])
        p = _ratio(counts[:, 2], counts[:, 3])
        per_image.append(_best_f(thresholds, r, p))
        total += counts
        f = f_measure(r, p)
        # OIS pools the counts of each image's best step (the last one, on ties).
        best_total += counts[np.flatnonzero(f == f.max())[-1]]
    r = _ratio(total[:, 0], total[:, 1])
    p = _ratio(total[:, 2], total[:, 3])
    best_t, best_r, best_p, best_f = _best_f(thresholds, r, p)
    r_ois = best_total[0] / best_total[1] if best_total[1] else 0.0
    p_ois = best_total[2] / best_total[3] if best_total[3] else 0.0
    summary.boundary = {
        "ods_threshold": best_t,
        "ods_recall": best_r,
        "ods_precision": best_p,
        "ods_f": best_f,
        "ois_recall": float(r_ois),
        "ois_precision": float(p_ois),
        "ois_f": float(f_measure(r_ois, p_ois)),
        "ap": _average_precision(r, p),
    }
    summary.boundary_curve = np.stack([r, p, f_measure(r, p)], axis=1)
    summary.boundary_per_image = np.array(per_image)


def _average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the precision-recall curve, sampled at recall 0, 0.01, ..., 1 (0 outside the curve)."""
    unique_r, first = np.unique(recall, return_index=True)
    if len(unique_r) < 2:
        return 0.0
    grid = np.linspace(0, 1, 101)
    values = np.interp(grid, unique_r, precision[first], left=0.0, right=0.0)
    return float(values.sum() * 0.01)


def _summarise_regions(summary: BsdsSummary, images: Sequence[BsdsImageCounts]) -> None:
    thresholds = summary.thresholds
    total = np.zeros((len(thresholds), 4))
    best = np.zeros(4)
    best_cover = best_area = 0.0
    per_image = []
    ri_sum = np.zeros(len(thresholds))
    voi_sum = np.zeros(len(thresholds))
    ri_best = voi_best = 0.0
    for image in images:
        cover = np.asarray(image.cover)
        r = _ratio(cover[:, 0], cover[:, 1])
        p = _ratio(cover[:, 2], cover[:, 3])
        top = int(np.argmax(r))
        per_image.append((thresholds[top], r[top], p[top]))
        total += cover
        best += cover[np.flatnonzero(r == r.max())[-1]]
        best_cover += image.cover_best
        best_area += cover[0, 1]
        ri = np.asarray(image.rand_index)
        voi = np.asarray(image.variation_of_information)
        ri_sum += ri
        voi_sum += voi
        ri_best += ri.max()
        voi_best += voi.min()
    n = len(images)
    r = _ratio(total[:, 0], total[:, 1])
    top = int(np.argmax(r))
    summary.covering = {
        "ods_threshold": float(thresholds[top]),
        "ods": float(r[top]),
        "ois": float(best[0] / best[1]) if best[1] else 0.0,
        "best": float(best_cover / best_area) if best_area else 0.0,
    }
    summary.covering_curve = r
    summary.covering_per_image = np.array(per_image)
    ri_mean, voi_mean = ri_sum / n, voi_sum / n
    top_ri, top_voi = int(np.argmax(ri_mean)), int(np.argmin(voi_mean))
    summary.rand_voi = {
        "pri_ods_threshold": float(thresholds[top_ri]),
        "pri_ods": float(ri_mean[top_ri]),
        "pri_ois": float(ri_best / n),
        "voi_ods_threshold": float(thresholds[top_voi]),
        "voi_ods": float(voi_mean[top_voi]),
        "voi_ois": float(voi_best / n),
    }
    summary.rand_voi_curve = np.stack([ri_mean, voi_mean], axis=1)

