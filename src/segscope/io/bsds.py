"""The BSDS500 ground truth: ``groundTruth/<split>/<id>.mat`` files of several annotators."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..groundtruth import BsdsGroundTruth
from ..result import Segmentation
from .formats import Format, register_format

__all__ = ["BsdsGroundTruth", "read_bsds_groundtruth"]


def read_bsds_groundtruth(path: str | os.PathLike[str]) -> BsdsGroundTruth:
    """Read a BSDS500 ``groundTruth/<split>/<id>.mat`` file (all annotators)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        cell = loadmat(path)["groundTruth"]
    except (KeyError, ValueError, OSError, NotImplementedError) as exc:
        raise ValueError(f"{path}: not a BSDS ground-truth .mat file ({exc})") from exc
    segmentations, boundaries = [], []
    for k in range(cell.shape[1]):
        entry = cell[0, k]
        labels = np.asarray(entry["Segmentation"][0, 0]).astype(np.int32)
        segmentations.append(Segmentation.from_labels(labels, kind="regions"))
        boundaries.append(np.asarray(entry["Boundaries"][0, 0]).astype(bool))
    return BsdsGroundTruth(segmentations, boundaries)


register_format(Format(
    "bsds", "BSDS500 ground truth, one .mat per image (read only)", suffixes=(".mat",),
    read_file=lambda path, context: read_bsds_groundtruth(path), task="regions", priority=4))
