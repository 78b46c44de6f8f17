"""The BSDS500 ground truth: ``groundTruth/<split>/<id>.mat`` files of several annotators."""

from __future__ import annotations

import os

import numpy as np

from ..groundtruth import BsdsGroundTruth
from ..result import Segmentation
from .formats import Format, register_format
from .limits import require_regular_file

__all__ = ["BsdsGroundTruth", "read_bsds_groundtruth"]


def read_bsds_groundtruth(path: str | os.PathLike[str]) -> BsdsGroundTruth:
    """Read a BSDS500 ``groundTruth/<split>/<id>.mat`` file (all annotators)."""
    from scipy.io import loadmat

    path = require_regular_file(path)
    segmentations, boundaries = [], []
    try:
        cell = loadmat(path)["groundTruth"]
        for k in range(cell.shape[1]):
            entry = cell[0, k]
            labels = np.asarray(entry["Segmentation"][0, 0]).astype(np.int32)
            segmentations.append(Segmentation.from_labels(labels, kind="regions"))
            boundaries.append(np.asarray(entry["Boundaries"][0, 0]).astype(bool))
    except Exception as exc:  # scipy's MAT reader raises many types on a damaged file
        raise ValueError(f"{path}: not a BSDS ground-truth .mat file ({type(exc).__name__}: {exc})") from None
    if not segmentations:
        raise ValueError(f"{path}: a BSDS ground-truth .mat file with no annotator")
    return BsdsGroundTruth(segmentations, boundaries)


register_format(Format(
    "bsds", "BSDS500 ground truth, one .mat per image (read only)", suffixes=(".mat",),
    read_file=lambda path, context: read_bsds_groundtruth(path), task="regions", priority=4))
