"""BSDS500 files: the ground truth (``groundTruth/<split>/<id>.mat``, several annotators) and
ultrametric contour maps at doubled resolution (``ucm2`` in a .mat file, as the benchmark reads
them), and soft boundary maps as PNG."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..groundtruth import BsdsGroundTruth
from ..result import Segmentation
from .formats import Format, register_format
from .limits import ImageReadError, check_decoded_size, require_regular_file

__all__ = ["BsdsGroundTruth", "read_boundary_png", "read_bsds_groundtruth", "read_bsds_segs", "read_ucm2",
           "write_boundary_png", "write_ucm2"]


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


def _parse_ucm2(path: str) -> np.ndarray | str:
    """The ``ucm2`` array of a .mat file (bounded before it loads), or why it cannot be read."""
    from scipy.io import loadmat, whosmat

    try:
        shapes = {name: shape for name, shape, _ in whosmat(path)}
        if "ucm2" not in shapes:
            return f"no ucm2 variable (it holds {sorted(shapes) or 'nothing'})"
        check_decoded_size(path, shapes["ucm2"], 8, what="ucm2 map")
        return np.asarray(loadmat(path, variable_names=["ucm2"])["ucm2"], np.float64)
    except ImageReadError as exc:
        return str(exc).removeprefix(f"{path}: ")
    except Exception as exc:  # scipy's MAT reader raises many types on a damaged file
        return f"{type(exc).__name__}: {exc}"


def _parse_segs(path: str) -> list[np.ndarray] | str:
    """The ``segs`` cell of a .mat file (one label image per scale), or why it cannot be read."""
    from scipy.io import loadmat, whosmat

    try:
        if "segs" not in {name for name, _, _ in whosmat(path)}:
            return "no segs variable"
        cell = loadmat(path, variable_names=["segs"])["segs"]
        return [np.asarray(entry).astype(np.int32) for entry in cell.ravel()]
    except Exception as exc:  # scipy's MAT reader raises many types on a damaged file
        return f"{type(exc).__name__}: {exc}"


def _parse_apart(path: Path, parse: Any = _parse) -> Any:
    """``parse`` (:func:`_parse`) in a helper process: SciPy's MAT reader can crash the process it
    runs in on a damaged file (make fuzz found such files), so it runs where a crash only costs
    the helper."""
    global _READER
    if _READER is None:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
        _READER = ProcessPoolExecutor(max_workers=1, mp_context=context)
    try:
        return _READER.submit(parse, str(path)).result()
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


def read_ucm2(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an ultrametric contour map at doubled resolution: the ``ucm2`` variable of a .mat file
    (BSDS's layout, (2H+1, 2W+1), see :meth:`segscope.hierarchy.Hierarchy.ucm2`)."""
    path = require_regular_file(path)
    found = _parse_apart(path.resolve(), _parse_ucm2)
    if isinstance(found, str):
        raise ValueError(f"{path}: not a ucm2 .mat file ({found})")
    if found.ndim != 2 or found.shape[0] % 2 == 0 or found.shape[1] % 2 == 0 or min(found.shape) < 3:
        raise ValueError(f"{path}: a ucm2 map has odd sides (2H+1, 2W+1), got shape {found.shape}")
    if not np.isfinite(found).all() or found.min() < 0:
        raise ValueError(f"{path}: a ucm2 map holds finite values of at least 0")
    return found


def read_bsds_segs(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Read the segmentations of one image at several scales: the ``segs`` cell of a .mat file,
    as the BSDS benchmark's ``segs`` inputs hold them (label images, one per scale)."""
    path = require_regular_file(path)
    found = _parse_apart(path.resolve(), _parse_segs)
    if isinstance(found, str):
        raise ValueError(f"{path}: not a BSDS segs .mat file ({found})")
    if not found or any(labels.ndim != 2 for labels in found):
        raise ValueError(f"{path}: a segs cell holds one 2-D label image per scale")
    return found


def write_ucm2(path: str | os.PathLike[str], ucm2: np.ndarray) -> None:
    """Write an ultrametric contour map at doubled resolution as a .mat file with a ``ucm2``
    variable, as the BSDS benchmark reads it (written atomically)."""
    import io

    from scipy.io import savemat

    ucm2 = np.asarray(ucm2, np.float64)
    if ucm2.ndim != 2 or ucm2.shape[0] % 2 == 0 or ucm2.shape[1] % 2 == 0:
        raise ValueError(f"{path}: a ucm2 map has odd sides (2H+1, 2W+1), got shape {ucm2.shape}")
    buffer = io.BytesIO()
    savemat(buffer, {"ucm2": ucm2}, do_compression=True)
    atomic_write_bytes(path, buffer.getvalue())


def write_boundary_png(path: str | os.PathLike[str], soft: np.ndarray) -> None:
    """Write a soft boundary map with values in [0, 1] as a 16-bit grey PNG (0..65535)."""
    from .images import imwrite

    soft = np.asarray(soft, np.float64)
    if soft.ndim != 2 or not np.isfinite(soft).all() or soft.min(initial=0) < 0 or soft.max(initial=0) > 1:
        raise ValueError(f"{path}: a soft boundary map is 2-D with values in [0, 1]")
    imwrite(path, np.round(soft * 65535).astype(np.uint16))


def read_boundary_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a soft boundary map PNG (8- or 16-bit grey, as the BSDS benchmark's ``png`` inputs) as
    float64 in [0, 1]: the values over the dtype's largest."""
    from .images import imread

    image = imread(path)
    if image.ndim != 2 or image.dtype.kind not in "u":
        raise ValueError(f"{path}: a soft boundary PNG is 8- or 16-bit grey, got {image.dtype} "
                         f"{image.shape}")
    return image.astype(np.float64) / np.iinfo(image.dtype).max


register_format(Format(
    "bsds", "BSDS500 ground truth, one .mat per image (read only)", suffixes=(".mat",),
    read_file=lambda path, context: read_bsds_groundtruth(path), task="regions", priority=4))
