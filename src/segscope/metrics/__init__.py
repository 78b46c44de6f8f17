"""One metric suite for every task; counts first, then an explicit reduction.

* semantic: :func:`confusion_matrix`, :func:`semantic_counts`, :func:`semantic_scores`;
* boundaries: :func:`boundary_counts` (BSDS matching), :func:`boundary_iou`;
* regions: :func:`probabilistic_rand_index`, :func:`variation_of_information`,
  :func:`covering`, :func:`adjusted_rand_index`, and the BSDS protocol (:func:`bsds_image`);
* instances: :func:`coco_mask_ap` (equal to pycocotools), :func:`match_instances`;
* panoptic: :func:`panoptic_counts`, :func:`panoptic_quality`;
* surfaces, 2-D or 3-D with voxel spacing: :func:`surface_distances`, :func:`hausdorff_distance`
  (HD95), :func:`average_surface_distance` (ASSD);
* :func:`evaluate` and :class:`Evaluator` for all of them, returning a :class:`MetricReport`.
"""

from .boundaries import BoundaryCounts, boundary_counts, boundary_iou, correspond_pixels, label_boundaries
from .bsds import (
    BsdsImageCounts,
    BsdsSummary,
    bsds_image,
    bsds_summary,
    sweep_segmentations,
    sweep_soft_boundaries,
    sweep_ucm,
)
from .evaluate import TASKS, Evaluator, evaluate
from .instance import coco_mask_ap, instance_overlaps, match_instances
from .panoptic import PanopticCounts, panoptic_counts, panoptic_quality
from .regions import (
    adjusted_rand_index,
    contingency_table,
    covering,
    probabilistic_rand_index,
    rand_f_score,
    rand_index,
    variation_of_information,
)
from .report import MetricReport
from .semantic import SemanticCounts, confusion_matrix, semantic_counts, semantic_scores
from .surface import (
    SurfaceDistances,
    average_surface_distance,
    class_scores,
    hausdorff_distance,
    mean_over_cases,
    surface_distances,
)

__all__ = [
    "TASKS",
    "BoundaryCounts",
    "BsdsImageCounts",
    "BsdsSummary",
    "Evaluator",
    "MetricReport",
    "PanopticCounts",
    "SemanticCounts",
    "SurfaceDistances",
    "adjusted_rand_index",
    "average_surface_distance",
    "boundary_counts",
    "boundary_iou",
    "bsds_image",
    "bsds_summary",
    "class_scores",
    "coco_mask_ap",
    "confusion_matrix",
    "contingency_table",
    "correspond_pixels",
    "covering",
    "evaluate",
    "hausdorff_distance",
    "instance_overlaps",
    "label_boundaries",
    "match_instances",
    "mean_over_cases",
    "panoptic_counts",
    "panoptic_quality",
    "probabilistic_rand_index",
    "rand_f_score",
    "rand_index",
    "semantic_counts",
    "semantic_scores",
    "surface_distances",
    "sweep_segmentations",
    "sweep_soft_boundaries",
    "sweep_ucm",
    "variation_of_information",
]
