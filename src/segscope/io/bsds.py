"""The BSDS500 ground truth: ``groundTruth/<split>/<id>.mat`` files of several annotators."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np

from ..groundtruth import BsdsGroundTruth
from ..result import Segmentation
from .formats import Format, register_format
from .limits import require_regular_file

__all__ = ["BsdsGroundTruth", "read_bsds_groundtruth"]


def _parse(path: str) -> list[tuple[np.ndarray, np.ndarray]] | str:
    """Each annotator's (segmentation, boundaries) of a BSDS .mat, or why it cannot be read."""
    from scipy.io import loadmat

    try:
        cell = loadmat(path)["groundTruth"]
        found = []
        for k in range(cell.shape[1]):
            entry = cell[0, k]
            found.append((np.asarray(entry["Segmentation"][0, 0]).astype(np.int32),
                          np.asarray(entry["Boundaries"][0, 0]).astype(bool)))
        return found
    except Exception as exc:  # scipy's MAT reader raises many types on a damaged file
        return f"{type(exc).__name__}: {exc}"


_READER: ProcessPoolExecutor | None = None


def _parse_apart(path: Path) -> list[tuple[np.ndarray, np.ndarray]] | str:
    """:func:`_parse` in a helper process: SciPy's MAT reader can crash the process it runs in on
    a damaged file (make fuzz found such files), so it runs where a crash only costs the helper."""
    global _READER
    if _READER is None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        _READER = ProcessPoolExecutor(max_workers=1, mp_context=context)
    try:
        return _READER.submit(_parse, str(path)).result()
    except BrokenProcessPool:
        _READER = None
        return "reading it crashed SciPy's MAT reader"


def read_bsds_groundtruth(path: str | os.PathLike[str]) -> BsdsGroundTruth:
    """Read a BSDS500 ``groundTruth/<split>/<id>.mat`` file (all annotators)."""
    path = require_regular_file(path)
    found = _parse_apart(path.resolve())  # the helper process may have another working folder
    if isinstance(found, str):
        raise ValueError(f"{path}: not a BSDS ground-truth .mat file ({found})")
    if not found:
        raise ValueError(f"{path}: a BSDS ground-truth .mat file with no annotator")
    try:
        segmentations = [Segmentation.from_labels(labels, kind="regions") for labels, _ in found]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: a BSDS segmentation that is not a label image ({exc})") from None
    return BsdsGroundTruth(segmentations, [b for _, b in found])


register_format(Format(
    "bsds", "BSDS500 ground truth, one .mat per image (read only)", suffixes=(".mat",),
    read_file=lambda path, context: read_bsds_groundtruth(path), task="regions", priority=4))
